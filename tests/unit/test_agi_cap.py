"""The FastAGI connection cap (docs/access.md, "FastAGI"): idle connections beyond
``max_sessions`` are closed at once and the log says so, naming the cap and its setting;
a flood logs one warning per interval, not one per connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from ivr_flows import server as agi_server
from ivr_flows.server import AGIServer, SessionOutcome

DEADLINE = 5.0
CAP = 3
EXTRA = 4


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the socket (EOF or reset) within ``within`` seconds."""
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_idle_connections_over_the_cap_are_closed_with_a_log_line(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="ivr_flows.server")
    outcomes: list[SessionOutcome] = []
    server = AGIServer(
        {}, port=0, max_sessions=CAP, header_timeout=30.0,
        on_session_end=lambda report: outcomes.append(report.outcome),
    )  # fmt: skip
    await server.start()
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(CAP + EXTRA):  # idle: no agi_* block is ever sent
            conns.append(await asyncio.open_connection("127.0.0.1", server.port))
        async with asyncio.timeout(DEADLINE):
            while len(outcomes) < EXTRA:
                await asyncio.sleep(0.01)
        closed = await asyncio.gather(
            *(_closed_by_server(reader, 0.3 if i < CAP else DEADLINE)
              for i, (reader, _w) in enumerate(conns))
        )  # fmt: skip
        assert closed == [False] * CAP + [True] * EXTRA  # the first CAP are held, idle
        assert outcomes == [SessionOutcome.BUSY] * EXTRA
        assert server.stats()["busy"] == EXTRA
        warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(warnings) == 1, warnings  # rate-limited: one line for the flood
        assert f"the cap is {CAP}" in warnings[0]
        assert "HOTLINE_AGI_MAX_SESSIONS" in warnings[0]
        assert f"{CAP} sessions live" in warnings[0]
    finally:
        for _reader, writer in conns:
            writer.close()
        await server.stop()


async def test_a_slot_frees_when_an_idle_connection_times_out(caplog) -> None:
    server = AGIServer({}, port=0, max_sessions=1, header_timeout=0.2)
    await server.start()
    try:
        first = await asyncio.open_connection("127.0.0.1", server.port)
        assert await _closed_by_server(first[0], DEADLINE)  # header timeout
        second = await asyncio.open_connection("127.0.0.1", server.port)
        # the slot is free again: the second is held (not refused) until its own timeout
        assert not await _closed_by_server(second[0], 0.1)
        second[1].close()
        assert server.stats()["busy"] == 0
    finally:
        await server.stop()


async def test_the_refusal_warning_repeats_after_the_interval(caplog, monkeypatch) -> None:
    caplog.set_level(logging.WARNING, logger="ivr_flows.server")
    monkeypatch.setattr(agi_server, "REFUSAL_LOG_INTERVAL", 0.0)
    server = AGIServer({}, port=0, max_sessions=1, header_timeout=30.0)
    await server.start()
    conns = []
    try:
        conns.append(await asyncio.open_connection("127.0.0.1", server.port))
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            conns.append((reader, writer))
            assert await _closed_by_server(reader, DEADLINE)
        warnings = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(warnings) == 2
    finally:
        for _reader, writer in conns:
            with contextlib.suppress(Exception):
                writer.close()
        await server.stop()


@pytest.mark.parametrize("cap", [1, 256])
def test_the_cap_is_a_constructor_setting(cap: int) -> None:
    assert AGIServer({}, max_sessions=cap).max_sessions == cap
