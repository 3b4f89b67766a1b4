"""A burst of token checks on a healthy database all pass (docs/access.md).

2,050 pages opening at once after a restart each need their token checked. Each check
used to be its own query on the probe's pool (4 connections, a 2 s deadline that counted
the wait for a connection and a thread too): ~1,100 of 2,050 were refused (1011) though
the database was fine. Checks that arrive together are now looked up together (one query
per batch, :class:`hotline.bus.batch.Batcher`), and only the database work is timed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from types import SimpleNamespace

from sqlalchemy import event, insert

from hotline.api.auth import Role, TokenCache, hash_token, verify_token
from hotline.api.deps import get_probe
from hotline.db.models import ApiToken
from hotline.db.session import make_engine, upgrade
from hotline.settings import load_settings

BURST = 1000
LATENCY_S = 0.01  # each statement: a healthy database 10 ms away (or busy)


def _connection(url: str) -> tuple[SimpleNamespace, object]:
    """What verify_token reads of a request: ``app.state`` as the app factory sets it."""
    engine = make_engine(url)
    settings = load_settings(database_url=url)
    state = SimpleNamespace(
        settings=settings,
        engine=engine,
        token_cache=TokenCache(ttl=settings.token_cache_ttl, size=settings.token_cache_size),
    )
    conn = SimpleNamespace(app=SimpleNamespace(state=state))

    @event.listens_for(get_probe(conn).engine, "before_cursor_execute")  # type: ignore[arg-type]
    def _far(*_: object) -> None:
        time.sleep(LATENCY_S)  # in the worker thread, as a network round trip would be

    return conn, engine


def _tokens(engine: object, count: int) -> dict[str, str]:
    """``count`` agent tokens (agent id → token), written in one statement."""
    tokens = {f"{5000 + n}": secrets.token_urlsafe(32) for n in range(count)}
    rows = [
        {"name": a, "token_hash": hash_token(t), "role": str(Role.AGENT), "agent_id": a}
        for a, t in tokens.items()
    ]
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(ApiToken), rows)
    return tokens


async def test_1000_distinct_tokens_checked_at_once_on_a_healthy_database_pass(
    sqlite_url: str,
) -> None:
    upgrade(sqlite_url)
    conn, engine = _connection(sqlite_url)
    tokens = _tokens(engine, BURST)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(verify_token(conn, t) for t in tokens.values()),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    took = time.perf_counter() - started
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of {BURST} failed: {failed[:3]!r}"
    assert [r.agent_id for r in results] == list(tokens)  # type: ignore[union-attr]
    assert len(conn.app.state.token_cache) == BURST
    assert took < 10, took
    # unknown and good tokens mixed in one burst: each gets its own answer
    mixed = ["x" * 43, *list(tokens.values())[:5], secrets.token_urlsafe(32)]
    answers = await asyncio.gather(*(verify_token(conn, t) for t in mixed))  # type: ignore[arg-type]
    assert answers[0] is None and answers[-1] is None
    assert [a.agent_id for a in answers[1:-1]] == list(tokens)[:5]  # type: ignore[union-attr]
    conn.app.state.probe.dispose()
    engine.dispose()  # type: ignore[attr-defined]
