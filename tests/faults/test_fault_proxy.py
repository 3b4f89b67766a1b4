"""The fault proxy does what the fault suite says it does (no lab needed): it forwards, a
cut resets open connections and refuses new ones, a blackhole holds every byte until
restored, and restore brings the link back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.fault_proxy import FaultProxy


@pytest.fixture
async def echo() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


async def _roundtrip(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


async def test_forwards(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        assert await _roundtrip(proxy.port, b"hello") == b"hello"
        assert proxy.stats.bytes_up == 5


async def test_cut_resets_open_connections_and_refuses_new_ones(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"x"
        await asyncio.to_thread(proxy.cut)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 2)
        writer.close()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await _roundtrip(proxy.port, b"again")
        assert proxy.stats.reset == 1 and proxy.stats.refused >= 1
        await asyncio.to_thread(proxy.restore)
        assert await _roundtrip(proxy.port, b"back") == b"back"


async def test_blackhole_holds_bytes_until_restored(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"a")
        assert await asyncio.wait_for(reader.readexactly(1), 2) == b"a"
        await asyncio.to_thread(proxy.blackhole)
        writer.write(b"held")
        await writer.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 0.5)
        fresh = asyncio.create_task(_roundtrip(proxy.port, b"new", timeout=5))
        await asyncio.sleep(0.3)
        assert not fresh.done()  # a new connection gets no answer either
        await asyncio.to_thread(proxy.restore)
        assert await asyncio.wait_for(reader.readexactly(4), 2) == b"held"
        assert await fresh == b"new"
        writer.close()
