"""Every setting of the Redis client is ours, and behaves as stated, on a real Redis.

With redis-py's defaults (5 s socket timeout, a pool of 100 that raises past it,
no health check) every page's blocking read was killed every 5 s and a process served
~100 pages. The values are pinned here (:class:`hotline.bus.RedisOptions`), and each one
that matters is also shown to hold against Redis on 127.0.0.1 (keys under a prefix of
this module's own).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from hotline.bus import RedisBus, RedisOptions
from hotline.bus.redis_streams import redis_client
from tests.support.fault_proxy import FaultProxy


def _prefix() -> str:
    return f"test-timeouts-{uuid.uuid4().hex[:8]}:"


def test_the_defaults_are_pinned() -> None:
    options = RedisOptions()
    assert options.socket_timeout == 2.0
    assert options.connect_timeout == 1.0
    assert options.max_connections == 32
    assert options.pool_timeout == 1.0
    assert options.retries == 1
    assert options.health_check_interval == 15
    assert options.readers == 8
    assert options.reader_block_ms == 5000
    assert options.reader_socket_timeout == 8.0
    assert options.last_id_batch == 500  # pages opening at once: one pipeline per 500
    # the one blocking read always returns before its socket would time out
    assert options.reader_block_ms / 1000 < options.reader_socket_timeout
    # a pooled read() blocks at most this long: below the command socket timeout
    assert options.read_block_cap_ms < options.socket_timeout * 1000


def test_a_block_at_or_above_the_socket_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="reader_block_ms"):
        RedisOptions(reader_block_ms=8000, reader_socket_timeout=8.0)
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisOptions(socket_timeout=0.5)
    with pytest.raises(ValueError, match="last_id_batch"):
        RedisOptions(last_id_batch=0)


def test_the_command_client_gets_every_option_and_the_url_cannot_override_them(
    redis_url: str,
) -> None:
    from redis.asyncio.connection import BlockingConnectionPool

    options = RedisOptions()
    client = redis_client(
        redis_url + "?socket_timeout=60&socket_connect_timeout=60&health_check_interval=0",
        options,
        reader=False,
    )
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    assert isinstance(pool, BlockingConnectionPool)  # waits pool_timeout, never "Too many"
    assert pool.max_connections == 32
    assert pool.timeout == 1.0
    assert kwargs["socket_timeout"] == 2.0
    assert kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["health_check_interval"] == 15
    assert kwargs["retry_on_timeout"] is False
    assert kwargs["socket_keepalive"] is True
    assert kwargs["retry"].get_retries() == 1


def test_the_reader_client_has_one_connection_whose_timeout_exceeds_its_block(
    redis_url: str,
) -> None:
    options = RedisOptions()
    client = redis_client(redis_url, options, reader=True)
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    assert pool.max_connections == 1
    assert kwargs["socket_timeout"] == 8.0
    assert kwargs["socket_timeout"] > options.reader_block_ms / 1000
    assert kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["health_check_interval"] == 0  # it never idles: a read is always blocked
    assert kwargs["retry"].get_retries() == 0  # its own loop reconnects (StreamReader.run)


# -- against Redis ----------------------------------------------------------------------------


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[RedisBus]:
    b = RedisBus(redis_url, prefix=_prefix())
    yield b
    await b.close()


async def test_a_long_read_is_capped_below_the_socket_timeout(bus: RedisBus) -> None:
    """The old pump asked for BLOCK 15000 on a 5 s socket: TimeoutError every time."""
    started = time.monotonic()
    assert await bus.read("agent:idle", None, block_ms=15000) == []
    elapsed = time.monotonic() - started
    assert bus.options.read_block_cap_ms / 1000 - 0.2 < elapsed < bus.options.socket_timeout
    assert bus.available


async def test_the_reader_blocks_again_and_again_without_a_timeout(redis_url: str) -> None:
    """A short block and socket timeout of the same proportion: a second of idle reads
    returns each block quietly; none fails, so the link is never marked down."""
    options = RedisOptions(reader_block_ms=200, reader_socket_timeout=0.5)
    bus = RedisBus(redis_url, prefix=_prefix(), options=options)
    sub = await bus.subscribe("agent:idle", None)
    try:
        reader = bus.reader_for("agent:idle")
        while reader.loops < 5:  # five blocks timed out on the server, none on the socket
            await asyncio.sleep(0.05)
        assert bus.available
        await bus.publish("agent:idle", {"probe": 1})
        assert [m.data for m in await asyncio.wait_for(sub.next(), 2)] == [{"probe": 1}]
    finally:
        sub.close()
        await bus.close()


async def test_a_stalled_redis_fails_a_command_within_the_socket_timeout(redis_url: str) -> None:
    """Timeouts are not retried: one socket timeout, not several, then ``available`` is
    false (what the pre-dial step checks)."""
    db = redis_url.rsplit("/", 1)[-1]
    with FaultProxy("127.0.0.1", 6379, name="redis-stall") as proxy:
        bus = RedisBus(f"redis://{proxy.host}:{proxy.port}/{db}", prefix=_prefix())
        try:
            await bus.publish("agent:x", {"n": 1})
            assert bus.available
            proxy.blackhole()
            started = time.monotonic()
            with pytest.raises(Exception) as raised:
                await bus.publish("agent:x", {"n": 2})
            elapsed = time.monotonic() - started
            assert "Timeout" in type(raised.value).__name__
            assert bus.options.socket_timeout - 0.2 < elapsed < bus.options.socket_timeout + 1
            assert not bus.available
            proxy.restore()
        finally:
            await bus.close()


async def test_a_refused_connection_fails_at_once_and_marks_the_bus_down() -> None:
    """No Redis listening: one quick retry (retries=1), then down; nothing waits."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = RedisBus(f"redis://127.0.0.1:{port}/0", prefix=_prefix())
    started = time.monotonic()
    try:
        with pytest.raises(Exception, match=r"refused|Connect"):
            await bus.publish("agent:x", {"n": 1})
        assert time.monotonic() - started < bus.options.connect_timeout
        assert not bus.available
    finally:
        await bus.close()


async def test_a_busy_pool_waits_pool_timeout_then_fails_instead_of_growing(
    redis_url: str,
) -> None:
    options = RedisOptions(max_connections=2, pool_timeout=0.3)
    bus = RedisBus(redis_url, prefix=_prefix(), options=options)
    try:
        held = [asyncio.create_task(bus.read(f"agent:{n}", None, block_ms=1200)) for n in (1, 2)]
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(Exception, match="No connection available"):
            await bus.last_id("agent:3")
        assert time.monotonic() - started < 0.3 + 0.3
        assert await asyncio.gather(*held) == [[], []]
        assert await bus.last_id("agent:3") == "0-0"  # free again
    finally:
        await bus.close()
