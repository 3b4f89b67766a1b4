"""Both bus implementations honour one contract: ordered ids, resume, blocking reads."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from hotline.bus import (
    Bus,
    Fanout,
    MemoryBus,
    RedisBus,
    RedisOptions,
    SubscriptionDropped,
    id_key,
)


@pytest.fixture(params=["memory", "redis"])
async def bus(request) -> Bus:
    if request.param == "memory":
        yield MemoryBus(maxlen=50)
        return
    url = request.getfixturevalue("redis_url")
    b = RedisBus(url, prefix=f"test-{uuid.uuid4().hex[:8]}:", maxlen=50)
    yield b
    await b.close()


async def test_resume_from_an_id_gets_exactly_what_was_missed(bus: Bus) -> None:
    first = await bus.publish("agent:1001", {"n": 1})
    await bus.publish("agent:1001", {"n": 2, "name": "张伟"})
    await bus.publish("agent:1001", {"n": 3})
    got = await bus.read("agent:1001", first, block_ms=0)
    assert [m.data for m in got] == [{"n": 2, "name": "张伟"}, {"n": 3}]
    assert id_key(first) < id_key(got[0].id) < id_key(got[1].id)


async def test_streams_are_separate(bus: Bus) -> None:
    await bus.publish("agent:1001", {"for": "1001"})
    await bus.publish("agent:1002", {"for": "1002"})
    got = await bus.read("agent:1002", "0-0", block_ms=0)
    assert [m.data for m in got] == [{"for": "1002"}]


async def test_a_blocking_read_wakes_on_publish(bus: Bus) -> None:
    start = await bus.last_id("supervisor")
    reader = asyncio.create_task(bus.read("supervisor", start, block_ms=3000))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await bus.publish("supervisor", {"queue": "wu"})
    got = await asyncio.wait_for(reader, 2)
    assert [m.data for m in got] == [{"queue": "wu"}]


async def test_read_from_now_skips_the_past(bus: Bus) -> None:
    await bus.publish("supervisor", {"old": True})
    got = await bus.read("supervisor", None, block_ms=100)
    assert got == []


async def test_a_timed_out_read_returns_nothing(bus: Bus) -> None:
    assert await bus.read("agent:nobody", None, block_ms=50) == []


async def test_streams_are_bounded(bus: Bus) -> None:
    for n in range(200):
        await bus.publish("agent:busy", {"n": n})
    got = await bus.read("agent:busy", "0-0", block_ms=0, count=1000)
    assert 50 <= len(got) < 200  # Redis trims approximately
    assert got[-1].data == {"n": 199}


# -- subscriptions: what every socket uses (one reader per process, fanned out) ------------


async def test_subscribe_from_now_gets_only_what_follows(bus: Bus) -> None:
    await bus.publish("agent:s1", {"old": True})
    sub = await bus.subscribe("agent:s1", None)
    try:
        await bus.publish("agent:s1", {"n": 1})
        got = await asyncio.wait_for(sub.next(), 5)
        assert [m.data for m in got] == [{"n": 1}]
    finally:
        sub.close()


async def test_subscribe_from_an_id_gets_what_was_missed_then_what_follows(bus: Bus) -> None:
    first = await bus.publish("agent:s2", {"n": 1})
    await bus.publish("agent:s2", {"n": 2})
    sub = await bus.subscribe("agent:s2", first)
    try:
        got = [m.data for m in await asyncio.wait_for(sub.next(), 5)]
        await bus.publish("agent:s2", {"n": 3})
        while len(got) < 2:
            got += [m.data for m in await asyncio.wait_for(sub.next(), 5)]
        assert got == [{"n": 2}, {"n": 3}]
    finally:
        sub.close()


async def test_every_subscriber_gets_each_message_once_and_only_its_streams(bus: Bus) -> None:
    subs = {a: await bus.subscribe(f"agent:{a}", None) for a in ("a", "b", "c")}
    twin = await bus.subscribe("agent:a", None)
    try:
        for a in ("c", "a", "b"):
            await bus.publish(f"agent:{a}", {"for": a})
        for a, sub in subs.items():
            assert [m.data for m in await asyncio.wait_for(sub.next(), 5)] == [{"for": a}]
        assert [m.data for m in await asyncio.wait_for(twin.next(), 5)] == [{"for": "a"}]
        await bus.publish("agent:a", {"n": 2})
        assert [m.data for m in await asyncio.wait_for(twin.next(), 5)] == [{"n": 2}]
        assert [m.data for m in await asyncio.wait_for(subs["a"].next(), 5)] == [{"n": 2}]
    finally:
        for sub in (*subs.values(), twin):
            sub.close()


async def test_a_closed_subscription_leaves_the_fanout_and_ends_its_reader(bus: Bus) -> None:
    fanout: Fanout = bus.fanout  # type: ignore[attr-defined]
    before = len(fanout)
    sub = await bus.subscribe("agent:gone", None)
    waiting = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    assert len(fanout) == before + 1
    sub.close()
    with pytest.raises(SubscriptionDropped):
        await asyncio.wait_for(waiting, 2)
    assert len(fanout) == before


async def test_a_subscriber_that_stops_reading_is_dropped_and_the_others_are_not(
    bus: Bus,
) -> None:
    stalled = await bus.subscribe("agent:flood", None)
    reading = await bus.subscribe("agent:flood", None)
    limit = stalled._limit
    got: list[int] = []

    async def read() -> None:
        while len(got) < limit + 20:
            got.extend(m.data["n"] for m in await reading.next())

    reader = asyncio.create_task(read())
    try:
        for n in range(limit + 20):
            await bus.publish("agent:flood", {"n": n})
            await asyncio.sleep(0)  # the reading socket runs alongside, as a page does
        await asyncio.wait_for(reader, 10)
        assert got == list(range(limit + 20))  # in order, none lost, never held back
        assert "queued" in await asyncio.wait_for(stalled.wait_closed(), 5)
        with pytest.raises(SubscriptionDropped):
            await stalled.next()
    finally:
        reader.cancel()
        stalled.close()
        reading.close()


# -- Redis only: the one reader of a process -----------------------------------------------


@pytest.fixture
async def redis_bus(redis_url: str) -> AsyncIterator[RedisBus]:
    b = RedisBus(redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}:", maxlen=50)
    yield b
    await b.close()


async def test_a_few_readers_serve_every_stream(redis_bus: RedisBus) -> None:
    """500 subscriptions, a few blocking XREADs: the readers' connections and at most a
    few pooled ones, never one per subscriber (with redis-py's defaults a process served
    ~100 sockets)."""
    import redis.asyncio as redis

    subs = [await redis_bus.subscribe(f"agent:{n}", None) for n in range(500)]
    try:
        await redis_bus.publish("agent:437", {"n": 437})
        got = await asyncio.wait_for(subs[437].next(), 5)
        assert [m.data for m in got] == [{"n": 437}]
        assert all(s.pending == 0 for s in subs)
        pool = redis_bus._redis.connection_pool
        assert len(pool._in_use_connections) + len(pool._available_connections) <= 4
        admin = redis.Redis.from_url(redis_bus.url)
        try:
            readers = [c for c in await admin.client_list() if c.get("cmd") == "xread"]
        finally:
            await admin.aclose()
        assert readers  # the one blocked XREAD is on the server
    finally:
        for sub in subs:
            sub.close()


async def test_a_malformed_entry_is_skipped_without_spinning_the_reader(
    redis_bus: RedisBus,
) -> None:
    sub = await redis_bus.subscribe("agent:bad", None)
    try:
        await redis_bus._redis.xadd(redis_bus.prefix + "agent:bad", {"d": "not json"})
        await redis_bus._redis.xadd(redis_bus.prefix + "agent:bad", {"x": "no d"})
        await redis_bus._redis.xadd(redis_bus.prefix + "agent:bad", {"d": "[1, 2]"})
        await redis_bus.publish("agent:bad", {"ok": True})
        got = await asyncio.wait_for(sub.next(), 5)
        assert [m.data for m in got] == [{"ok": True}]
        reader = redis_bus.reader_for("agent:bad")
        loops = reader.loops
        await asyncio.sleep(0.3)  # a cursor stuck before the bad entries would loop hot
        assert reader.loops - loops <= 1
    finally:
        sub.close()


async def test_the_reader_survives_a_cut_link_and_loses_nothing(redis_url: str) -> None:
    """Messages published while the reader's link is down arrive once it is back."""
    from tests.support.fault_proxy import FaultProxy

    direct = RedisBus(redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}:", maxlen=50)
    host, port, db = "127.0.0.1", 6379, redis_url.rsplit("/", 1)[-1]
    with FaultProxy(host, port, name="redis-proxy") as proxy:
        options = RedisOptions(backoff_min=0.05, backoff_max=0.2)
        via = RedisBus(
            f"redis://{proxy.host}:{proxy.port}/{db}",
            prefix=direct.prefix,
            maxlen=50,
            options=options,
        )
        sub = await via.subscribe("agent:cut", None)
        try:
            await direct.publish("agent:cut", {"n": 0})
            assert [m.data for m in await asyncio.wait_for(sub.next(), 5)] == [{"n": 0}]
            proxy.cut()
            for n in (1, 2, 3):
                await direct.publish("agent:cut", {"n": n})
            deadline = time.monotonic() + 5
            while via.available and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not via.available  # the reader saw the cut
            assert sub.pending == 0 and not sub.closed
            proxy.restore()
            got: list[int] = []
            while len(got) < 3:
                got += [m.data["n"] for m in await asyncio.wait_for(sub.next(), 5)]
            assert got == [1, 2, 3]
            assert via.available
        finally:
            sub.close()
            await via.close()
            await direct.close()


async def test_a_newcomer_does_not_wait_for_the_blocked_read(redis_bus: RedisBus) -> None:
    """The reader blocks 5 s; a stream that joins its share mid-block is read at once."""
    first = await redis_bus.subscribe("agent:early", None)
    reader = redis_bus.reader_for("agent:early")
    stream = next(f"agent:late{n}" for n in range(1000) if reader.owns(f"agent:late{n}"))
    try:
        while reader._reading is None:  # the read is blocked on the server
            await asyncio.sleep(0.005)
        late = await redis_bus.subscribe(stream, None)
        started = time.perf_counter()
        await redis_bus.publish(stream, {"n": 1})
        got = await asyncio.wait_for(late.next(), 4)
        assert [m.data for m in got] == [{"n": 1}]
        assert time.perf_counter() - started < 1.0
        late.close()
    finally:
        first.close()


async def test_the_streams_are_shared_among_a_few_readers(redis_bus: RedisBus) -> None:
    """Each stream has one reader; 2,000 streams spread over all of them, none doubled."""
    readers = {id(redis_bus.reader_for(f"agent:{n}")) for n in range(2000)}
    assert len(readers) == redis_bus.options.readers
    for n in range(200):
        owners = [r for r in redis_bus._readers if r.owns(f"agent:{n}")]
        assert owners == [redis_bus.reader_for(f"agent:{n}")]
