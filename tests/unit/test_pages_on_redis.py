"""Pages on one process with Redis: idle sockets stay up, and hundreds fit
(docs/benchmarks.md, "Pages on one process").

The API is served for real (uvicorn on a thread, real WebSockets, Redis on 127.0.0.1) and
a bus in the test's own loop publishes, as the call service in another process would.
Before the one reader per process, each page held a pooled connection for a blocking
XREAD (BLOCK 15000 on a 5 s socket timeout): an idle page was torn down every 5 s, and
past ~100 pages the pool raised ``Too many connections``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

import pytest

from tests.support.pages import Pages, publisher


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("hotline")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def pages(sqlite_url: str, redis_url: str, request: pytest.FixtureRequest) -> Iterator[Pages]:
    agents = getattr(request, "param", 1)
    with Pages(sqlite_url, redis_url, agents=agents) as served:
        yield served


async def _hello(ws: object) -> dict[str, object]:
    frame: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[attr-defined]
    return frame


async def test_an_idle_agent_page_gets_a_probe_published_15_s_after_it_connected(
    pages: Pages, redis_url: str, warnings: _Warnings
) -> None:
    import websockets

    agent = pages.agent_ids()[0]
    bus = await publisher(redis_url, pages.prefix)
    try:
        async with websockets.connect(pages.ws_url("/ws/agent", pages.tokens[agent])) as ws:
            assert (await _hello(ws))["type"] == "hello"
            opened = time.monotonic()
            # Idle for longer than any timeout the page's path ever had (5 s socket,
            # 15 s block): nothing to await but the time itself.
            await asyncio.sleep(15.5)
            await bus.publish(f"agent:{agent}", {"type": "probe", "n": 1})
            frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
            assert frame["type"] == "probe" and frame["n"] == 1
            assert time.monotonic() - opened > 15
    finally:
        await bus.close()
    assert not [line for line in warnings.lines if "socket ended" in line]


@pytest.mark.parametrize("pages", [300], indirect=True)
async def test_300_agent_pages_on_one_process_all_get_their_hello_and_their_pops(
    pages: Pages, redis_url: str, warnings: _Warnings
) -> None:
    import websockets

    agents = pages.agent_ids()
    assert len(agents) == 300
    sockets = [
        websockets.connect(pages.ws_url("/ws/agent", pages.tokens[a]), open_timeout=20)
        for a in agents
    ]
    opened = await asyncio.gather(*sockets, return_exceptions=True)
    bus = await publisher(redis_url, pages.prefix)
    try:
        failed = [o for o in opened if isinstance(o, BaseException)]
        assert not failed, f"{len(failed)} of 300 did not open: {failed[:3]}"
        hellos = await asyncio.gather(*(_hello(ws) for ws in opened), return_exceptions=True)
        got = [h for h in hellos if isinstance(h, dict) and h.get("type") == "hello"]
        assert len(got) == 300, [h for h in hellos if not isinstance(h, dict)][:3]
        # every page gets its own pop, and only its own
        for n, agent in enumerate(agents):
            await bus.publish(f"agent:{agent}", {"type": "screenpop", "linkedid": f"L{n}"})
        frames = await asyncio.gather(
            *(asyncio.wait_for(ws.recv(), 10) for ws in opened), return_exceptions=True
        )
        linked = [json.loads(f)["linkedid"] if isinstance(f, str) else f for f in frames]
        assert linked == [f"L{n}" for n in range(300)]
        # no page holds a connection: 300 idle pages, none in use, the pool within its bound
        pool = pages.bus._redis.connection_pool
        assert len(pool._in_use_connections) == 0
        assert len(pool._available_connections) <= pages.bus.options.max_connections
    finally:
        await bus.close()
        await asyncio.gather(
            *(ws.close() for ws in opened if not isinstance(ws, BaseException)),
            return_exceptions=True,
        )
    assert not [line for line in warnings.lines if "socket ended" in line]


BURST = 1000


@pytest.mark.parametrize("pages", [BURST], indirect=True)
async def test_a_burst_of_1000_agent_pages_and_10_supervisors_all_get_their_hello(
    pages: Pages, warnings: _Warnings
) -> None:
    """All at once, as after a restart: each token distinct and unchecked, each agent
    stream new to the process. Before batching, the token checks timed out queueing for
    the probe's pool (1011) and ``last_id`` for a pooled Redis connection."""
    import websockets

    urls = [pages.ws_url("/ws/agent", pages.tokens[a]) for a in pages.agent_ids()]
    urls += [pages.ws_url("/ws/supervisor", pages.supervisor) for _ in range(10)]

    async def page(url: str) -> tuple[object, dict[str, object] | BaseException]:
        try:
            ws = await websockets.connect(url, open_timeout=30)
        except Exception as exc:
            return None, exc
        try:
            return ws, await _hello(ws)
        except Exception as exc:
            return ws, exc

    started = time.perf_counter()
    opened = await asyncio.gather(*(page(u) for u in urls))
    took = time.perf_counter() - started
    try:
        firsts = [first for _, first in opened]
        failed = [f for f in firsts if not isinstance(f, dict)]
        assert not failed, f"{len(failed)} of {len(urls)} got no hello: {failed[:3]!r}"
        kinds = [f["type"] for f in firsts if isinstance(f, dict)]
        assert kinds == ["hello"] * BURST + ["snapshot"] * 10
        print(f"{len(urls)} pages opened in {took:.1f} s")
    finally:
        await asyncio.gather(
            *(ws.close() for ws, _ in opened if ws is not None),  # type: ignore[attr-defined]
            return_exceptions=True,
        )
    assert not [line for line in warnings.lines if "cannot check API token" in line]
