"""The HTTP API: access rules on every route, the call list, health and error shapes."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from hotline.api.app import create_app
from hotline.api.auth import (
    Principal,
    Role,
    create_token,
    effective_routes,
    guards_of,
    require,
    require_websocket,
    revoke_token,
)
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.db import Customer, CustomerPhone
from hotline.settings import load_settings

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class FakeService:
    connected: bool = True
    calls: list[str] = field(default_factory=list)

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    def ami_status(self) -> dict[str, object]:
        return {"connected": self.connected, "host": "127.0.0.1:5038"}


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    tokens: dict[str, str]

    def get(self, path: str, who: str | None = "supervisor", **params: object):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, headers=headers, params=params)


def _extra_routes(app: FastAPI) -> None:
    """Routes only tests have, to exercise roles the production routes do not need yet."""

    @app.get("/api/test/admin-only", dependencies=[Depends(require(Role.ADMIN))])
    def admin_only() -> dict[str, str]:
        return {"ok": "admin"}

    @app.get("/api/test/supervisor")
    def supervisor(
        principal: Annotated[Principal, Depends(require(Role.SUPERVISOR))],
    ) -> dict[str, str]:
        return {"role": principal.role}

    @app.websocket("/ws/test", dependencies=[Depends(require_websocket(Role.AGENT))])
    async def ws_test(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"role": websocket.state.principal.role})
        await websocket.close()


def make_api(db_url: str, **settings: object) -> Iterator[Api]:
    service = settings.pop("service", None)
    app = create_app(load_settings(database_url=db_url, **settings), service=service)
    _extra_routes(app)
    with TestClient(app) as client:
        engine = app.state.engine
        tokens = {
            "agent": create_token(engine, role=Role.AGENT, name="Agent 1001", agent_id="1001"),
            "agent2": create_token(engine, role=Role.AGENT, name="Agent 1002", agent_id="1002"),
            "supervisor": create_token(engine, role=Role.SUPERVISOR, name="Sup"),
            "admin": create_token(engine, role=Role.ADMIN, name="Root"),
            "revoked": create_token(engine, role=Role.ADMIN, name="Old"),
        }
        assert revoke_token(engine, tokens["revoked"])
        yield Api(client=client, app=app, tokens=tokens)


@pytest.fixture
def api(db_url) -> Iterator[Api]:
    yield from make_api(db_url)


@pytest.fixture
def calls(api) -> dict[str, int]:
    """Five calls: two for agent 1001, one for 1002, one abandoned, one IVR-only."""
    engine = api.app.state.engine
    with Session(engine) as session, session.begin():
        customer = Customer(name="陈小明", tier="vip3")
        session.add(customer)
        session.flush()
        session.add(CustomerPhone(customer_id=customer.id, e164="+8613800138000"))
        customer_id = customer.id

    def record(n: int, **values: object) -> CallRecord:
        return CallRecord(linkedid=f"call-{n}", arrived_at=T0 + n * 3600, **values)  # type: ignore[arg-type]

    CallLogWriter(engine).write(
        [
            record(1, outcome=Outcome.ANSWERED, agent="1001", caller_number="13800138000"),
            record(2, outcome=Outcome.ANSWERED, agent="1002", caller_number="13912345678"),
            record(3, outcome=Outcome.ABANDONED, caller_number="13800138000"),
            record(4, outcome=Outcome.ANSWERED, agent="1001", caller_number="020-8888-6666"),
            record(5, outcome=Outcome.IVR_ONLY, caller_number="anonymous"),
        ]
    )
    return {"customer_id": customer_id}


def linkedids(response) -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["items"])
    return [item["linkedid"] for item in body["items"]]


# -- access rules -------------------------------------------------------------------


def test_every_api_and_websocket_route_requires_a_token(api) -> None:
    checked = []
    for route in effective_routes(api.app.routes):
        path = getattr(route, "path", "")
        if path.startswith(("/api", "/ws")):
            assert guards_of(route), f"{path} has no require(...) dependency"
            checked.append(path)
    assert "/api/calls" in checked
    assert "/api/health" in checked


def test_the_route_walk_catches_an_unguarded_route(api) -> None:
    @api.app.get("/api/test/forgot")
    def forgot() -> None: ...

    unguarded = [r.path for r in effective_routes(api.app.routes) if not guards_of(r)]
    assert "/api/test/forgot" in unguarded


@pytest.mark.parametrize("path", ["/api/calls", "/api/health"])
def test_no_token_is_401_with_bearer_challenge(api, path) -> None:
    response = api.get(path, who=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error_id"] == "not-authenticated"
    assert set(response.json()) == {"error_id", "message", "details"}


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token", "Bearer " + "x" * 5000, "Basic dXNlcjpwYXNz", "Bearer"]
)
def test_bad_token_is_401(api, authorization) -> None:
    response = api.client.get("/api/calls", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_401(api) -> None:
    assert api.get("/api/calls", who="revoked").status_code == 401


def test_query_token_is_refused_on_http_routes(api) -> None:
    response = api.client.get("/api/calls", params={"token": api.tokens["admin"]})
    assert response.status_code == 401


def test_wrong_role_is_403_and_roles_nest(api) -> None:
    assert api.get("/api/test/admin-only", who="supervisor").status_code == 403
    assert api.get("/api/test/admin-only", who="agent").status_code == 403
    assert api.get("/api/test/admin-only", who="admin").status_code == 200
    forbidden = api.get("/api/test/supervisor", who="agent")
    assert forbidden.status_code == 403
    assert forbidden.json()["error_id"] == "forbidden"
    assert api.get("/api/test/supervisor", who="supervisor").json() == {"role": "supervisor"}
    assert api.get("/api/test/supervisor", who="admin").json() == {"role": "admin"}


def test_websocket_takes_the_token_from_the_query_string(api) -> None:
    with api.client.websocket_connect(f"/ws/test?token={api.tokens['agent']}") as ws:
        assert ws.receive_json() == {"role": "agent"}
    for url in ("/ws/test", "/ws/test?token=wrong", f"/ws/test?token={api.tokens['revoked']}"):
        with pytest.raises(WebSocketDisconnect) as info, api.client.websocket_connect(url):
            pass
        assert info.value.code == 1008


def test_database_outage_during_auth_is_503_not_401(api) -> None:
    from hotline.db import make_engine

    working = api.app.state.engine
    api.app.state.engine = make_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/x")
    try:
        response = api.get("/api/calls")
    finally:
        api.app.state.engine.dispose()
        api.app.state.engine = working
    assert response.status_code == 503
    assert response.json()["error_id"] == "database-unavailable"


def test_agent_token_needs_an_agent_id(api) -> None:
    with pytest.raises(ValueError, match="agent_id"):
        create_token(api.app.state.engine, role="agent", name="nobody")


def test_tokens_are_stored_hashed(api) -> None:
    from sqlalchemy import select

    from hotline.db import ApiToken

    with Session(api.app.state.engine) as session:
        stored = set(session.scalars(select(ApiToken.token_hash)))
    assert not stored & set(api.tokens.values())
    assert all(len(h) == 64 for h in stored)


# -- /api/calls ---------------------------------------------------------------------


def test_calls_newest_first(api, calls) -> None:
    assert linkedids(api.get("/api/calls")) == [f"call-{n}" for n in (5, 4, 3, 2, 1)]


def test_agents_see_only_their_own_calls(api, calls) -> None:
    assert linkedids(api.get("/api/calls", who="agent")) == ["call-4", "call-1"]
    assert linkedids(api.get("/api/calls", who="agent2")) == ["call-2"]
    assert len(linkedids(api.get("/api/calls", who="admin"))) == 5


def test_filter_by_customer(api, calls) -> None:
    found = linkedids(api.get("/api/calls", customer_id=calls["customer_id"]))
    assert found == ["call-3", "call-1"]
    assert linkedids(api.get("/api/calls", customer_id=calls["customer_id"] + 1)) == []


@pytest.mark.parametrize("number", ["13800138000", "+86 138 0013 8000", "0086-13800138000"])
def test_filter_by_number_in_any_form(api, calls, number) -> None:
    assert linkedids(api.get("/api/calls", number=number)) == ["call-3", "call-1"]


def test_filter_by_landline_and_by_unparseable_number(api, calls) -> None:
    assert linkedids(api.get("/api/calls", number="+86 20 8888 6666")) == ["call-4"]
    assert linkedids(api.get("/api/calls", number="anonymous")) == ["call-5"]


def test_filter_by_since_outcome_and_limit(api, calls) -> None:
    assert linkedids(api.get("/api/calls", since="2026-01-01T03:00:00Z")) == [
        "call-5",
        "call-4",
        "call-3",
    ]
    # 11:00 in Beijing is 03:00 UTC; a naive time means UTC.
    assert len(linkedids(api.get("/api/calls", since="2026-01-01T11:00:00+08:00"))) == 3
    assert len(linkedids(api.get("/api/calls", since="2026-01-01T03:00:00"))) == 3
    assert linkedids(api.get("/api/calls", outcome="abandoned")) == ["call-3"]
    assert linkedids(api.get("/api/calls", limit=2)) == ["call-5", "call-4"]
    answered = api.get("/api/calls", outcome="answered", since="2026-01-01T02:00:00Z")
    assert linkedids(answered) == ["call-4", "call-2"]


def test_call_fields_in_the_response(api, calls) -> None:
    item = api.get("/api/calls", number="13800138000", limit=1).json()["items"][0]
    assert item["outcome"] == "abandoned"
    assert item["customer_id"] == calls["customer_id"]
    assert item["arrived_at"].startswith("2026-01-01T03:00:00")
    assert item["arrived_at"].endswith(("Z", "+00:00"))
    assert item["queues"] == [] and item["notes"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"since": "yesterday"},
        {"since": "2026-13-45T00:00:00"},
        {"outcome": "lost"},
        {"customer_id": -1},
        {"customer_id": "abc"},
        {"customer_id": 10**20},
        {"number": "1" * 500},
    ],
)
def test_malformed_params_are_422_in_the_error_shape(api, params) -> None:
    response = api.get("/api/calls", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_id"] == "invalid-request"
    assert body["details"]["errors"]


def test_unknown_route_uses_the_error_shape(api) -> None:
    response = api.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error_id"] == "not-found"


def test_openapi_is_published_with_stable_operation_ids(api) -> None:
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert spec["paths"]["/api/calls"]["get"]["operationId"] == "calls-list"
    assert spec["paths"]["/api/health"]["get"]["operationId"] == "health-show"


# -- /api/health --------------------------------------------------------------------


def test_health_without_bridge_or_redis(api) -> None:
    body = api.get("/api/health", who="agent").json()
    assert body["status"] == "degraded"
    assert body["ami"] == {"connected": False, "detail": "bridge not running"}
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is None


def test_health_reports_redis_down_without_leaking_the_url(db_url) -> None:
    port = closed_port()
    redis_url = f"redis://:hunter2secret@127.0.0.1:{port}/0"
    for api in make_api(db_url, redis_url=redis_url, service=FakeService()):
        response = api.get("/api/health", who="agent")
        body = response.json()
        assert body["status"] == "degraded"
        assert body["database"]["ok"] is True
        assert body["redis"]["ok"] is False
        assert body["ami"]["connected"] is True
        assert "hunter2secret" not in response.text
        assert f":{port}" not in response.text


def test_health_is_bounded_when_redis_hangs(db_url) -> None:
    """A Redis that accepts the connection but never answers must not hang the probe."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever replies
        port = silent.getsockname()[1]
        for api in make_api(db_url, redis_url=f"redis://127.0.0.1:{port}/0"):
            started = time.monotonic()
            body = api.get("/api/health").json()
            assert time.monotonic() - started < 2.5
            assert body["redis"]["ok"] is False
            assert body["database"]["ok"] is True


def test_health_ok_with_everything_up(db_url, redis_url) -> None:
    service = FakeService()
    for api in make_api(db_url, redis_url=redis_url, service=service):
        body = api.get("/api/health", who="agent").json()
        assert body["status"] == "ok", body
        assert body["redis"]["ok"] is True
        assert service.calls == ["start"]
    assert service.calls == ["start", "stop"]


def test_health_with_a_disconnected_bridge_is_degraded(db_url) -> None:
    for api in make_api(db_url, service=FakeService(connected=False)):
        body = api.get("/api/health").json()
        assert body["status"] == "degraded"
        assert body["ami"]["connected"] is False
