"""Both bus implementations honour one contract: ordered ids, resume, blocking reads."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hotline.bus import Bus, MemoryBus, RedisBus, id_key


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
