"""The API through a database outage (docs/access.md): ``/api/health`` answers within a
second and names what is down; token checks survive a short outage from the bounded
token cache, and a revoked token is refused at most ``HOTLINE_TOKEN_CACHE_TTL`` later.

The PostgreSQL outages are real: the app reaches PostgreSQL through a
:class:`~tests.support.fault_proxy.FaultProxy`, ``blackhole`` (a hung server: the TCP
connection stays, no byte comes back) or ``cut`` (connections reset and refused).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import make_url

from hotline.api.app import create_app
from hotline.api.auth import (
    TOKEN_CHECK_TIMEOUT_S,
    Principal,
    Role,
    TokenCache,
    create_token,
    hash_token,
    revoke_token,
)
from hotline.db.models import ApiToken
from hotline.db.session import make_engine
from hotline.settings import load_settings
from tests.support.fault_proxy import FaultProxy

HEALTH_BOUND_S = 1.0
TOKEN_CHECK_BOUND_S = TOKEN_CHECK_TIMEOUT_S + 0.5  # an uncached token while the database hangs
TTL = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    tokens: dict[str, str]
    clock: FakeClock

    def get(self, path: str, who: str = "supervisor"):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})


def _api(url: str) -> Iterator[Api]:
    app = create_app(load_settings(database_url=url, token_cache_ttl=TTL))
    clock = FakeClock()
    app.state.token_cache = TokenCache(ttl=TTL, size=100, clock=clock)
    with TestClient(app) as client:
        engine = app.state.engine
        tokens = {
            "supervisor": create_token(engine, role=Role.SUPERVISOR, name="S"),
            "other": create_token(engine, role=Role.SUPERVISOR, name="T"),
            "agent": create_token(engine, role=Role.AGENT, name="A", agent_id="1001"),
        }
        yield Api(client, app, tokens, clock)


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, FaultProxy]]:
    url = make_url(pg_url)
    with FaultProxy(url.host or "127.0.0.1", url.port or 5432, name="pg") as proxy:
        proxied = url.set(host=proxy.host, port=proxy.port)
        yield proxied.render_as_string(hide_password=False), proxy
        proxy.restore()  # let the app's shutdown close its connections


@pytest.fixture
def pg_api(proxied_pg: tuple[str, FaultProxy]) -> Iterator[tuple[Api, FaultProxy]]:
    url, proxy = proxied_pg
    for api in _api(url):
        yield api, proxy


def timed(api: Api, path: str, who: str = "supervisor"):
    started = time.perf_counter()
    response = api.get(path, who)
    return response, time.perf_counter() - started


# -- health --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["blackhole", "cut"])
def test_health_answers_within_a_second_with_postgresql_hung_or_down(pg_api, fault) -> None:
    api, proxy = pg_api
    assert api.get("/api/calls").status_code == 200  # the token is checked and cached
    getattr(proxy, fault)()
    response, took = timed(api, "/api/health")
    assert took < HEALTH_BOUND_S, took
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert "database" in body["down"]
    assert body["database"]["ok"] is False
    assert body["database"]["backend"] == "postgresql"
    assert "redis" not in body["down"]  # not configured is not down
    # concurrent askers share one probe: still bounded
    again, took = timed(api, "/api/health")
    assert again.status_code == 200 and took < HEALTH_BOUND_S
    proxy.restore()


def test_health_reports_the_database_back_after_the_outage(pg_api) -> None:
    api, proxy = pg_api
    api.get("/api/calls")
    proxy.cut()
    assert "database" in api.get("/api/health").json()["down"]
    proxy.restore()
    deadline = time.monotonic() + 10
    while "database" in api.get("/api/health").json()["down"]:
        assert time.monotonic() < deadline, "health never saw the database back"
        time.sleep(0.2)


def test_health_with_the_sqlite_file_gone(sqlite_url, tmp_path) -> None:
    for api in _api(sqlite_url):
        api.get("/api/calls")
        api.app.state.engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.sqlite3'}")
        response, took = timed(api, "/api/health")
        assert took < HEALTH_BOUND_S
        assert response.json()["down"] == ["ami", "database"]  # no service: AMI is down too
        assert response.json()["database"]["ok"] is False


# -- token checks through an outage -------------------------------------------------------


def test_a_cached_token_survives_a_hung_database_until_the_ttl(pg_api) -> None:
    api, proxy = pg_api
    assert api.get("/api/calls").status_code == 200  # verified at clock 1000
    proxy.blackhole()
    api.clock.now += TTL - 1
    response, took = timed(api, "/api/health")
    assert response.status_code == 200 and took < HEALTH_BOUND_S
    # past the TTL the token must be checked again, and the database cannot say:
    # a 503 the page retries, never a 401 that would log every agent out
    api.clock.now += 1
    response, took = timed(api, "/api/health")
    assert response.status_code == 503, response.text
    assert response.json()["error_id"] == "database-unavailable"
    assert took < TOKEN_CHECK_BOUND_S
    # a token never seen before the outage: the same 503, bounded
    response, took = timed(api, "/api/health", who="other")
    assert response.status_code == 503 and took < TOKEN_CHECK_BOUND_S
    proxy.restore()
    assert api.get("/api/health").status_code == 200


def test_an_unknown_token_during_an_outage_is_not_a_401(pg_api) -> None:
    api, proxy = pg_api
    proxy.cut()
    response = api.client.get("/api/health", headers={"Authorization": "Bearer " + "x" * 43})
    assert response.status_code == 503


def test_a_token_revoked_elsewhere_is_refused_at_most_ttl_later(db_url) -> None:
    for api in _api(db_url):
        assert api.get("/api/calls").status_code == 200  # cached at clock 1000
        # another process revokes it: this process's cache does not know
        with api.app.state.engine.begin() as conn:
            conn.execute(
                update(ApiToken)
                .where(ApiToken.token_hash == hash_token(api.tokens["supervisor"]))
                .values(revoked=True)
            )
        api.clock.now += TTL - 0.001
        assert api.get("/api/calls").status_code == 200  # within the stated TTL
        api.clock.now += 0.001
        response = api.get("/api/calls")
        assert response.status_code == 401, response.text  # at the TTL, never later
        assert api.get("/api/calls").status_code == 401  # and not cached as good again


def test_a_token_revoked_in_this_process_is_refused_at_once(db_url) -> None:
    for api in _api(db_url):
        assert api.get("/api/calls").status_code == 200
        assert revoke_token(api.app.state.engine, api.tokens["supervisor"])
        assert api.get("/api/calls").status_code == 401


def test_the_ttl_is_not_sliding() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl=10, size=10, clock=clock)
    who = Principal(token_id=1, name="x", role=Role.ADMIN)
    cache.put("h", who)
    for _ in range(9):
        clock.now += 1
        assert cache.get("h") is who  # reads do not extend it
    clock.now += 1
    assert cache.get("h") is None


def test_the_cache_is_bounded_and_ttl_zero_caches_nothing() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl=10, size=3, clock=clock)
    for n in range(5):
        cache.put(f"h{n}", Principal(token_id=n, name="x", role=Role.AGENT, agent_id="1"))
    assert len(cache) == 3
    assert cache.get("h0") is None and cache.get("h4") is not None
    off = TokenCache(ttl=0, size=3, clock=clock)
    off.put("h", Principal(token_id=1, name="x", role=Role.ADMIN))
    assert off.get("h") is None


def test_the_settings_state_the_ttl_and_docs_say_it() -> None:
    from pathlib import Path

    default = load_settings().token_cache_ttl
    docs = (Path(__file__).parents[2] / "docs" / "access.md").read_text()
    assert "HOTLINE_TOKEN_CACHE_TTL" in docs
    assert f"{default:g} s" in docs
