"""The pre-dial step never holds a caller on a bus that is down (docs/reliability.md).

Before: ``prering`` waited on Redis until the client's 5 s timeout, so a Redis outage
added 5 s to every call. Now a bus known to be down is skipped at once, a bus that stalls
is given up at the ack deadline, and the pop is left to the AMI fallback.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from hotline.bus import MemoryBus, RedisBus
from screenpop.pops import Push, PushType
from screenpop.push import CallContext, PopPublisher
from tests.support.fault_proxy import FaultProxy

ACK_TIMEOUT = 0.5


class DownBus(MemoryBus):
    """A bus whose link is known to be down; anything that reaches it would hang."""

    up = False

    @property
    def available(self) -> bool:
        return self.up

    async def publish(self, stream: str, data: dict) -> str:  # type: ignore[override]
        if not self.up:
            await asyncio.sleep(30)
        return await super().publish(stream, data)

    async def last_id(self, stream: str) -> str:
        if not self.up:
            await asyncio.sleep(30)
        return await super().last_id(stream)


async def test_a_bus_known_down_is_skipped_at_once_and_the_pop_takes_the_fallback() -> None:
    bus = DownBus()
    publisher = PopPublisher(bus, ack_timeout=ACK_TIMEOUT)
    await publisher.prepare(CallContext(linkedid="L1", caller_number="13800000000"))
    started = time.perf_counter()
    assert await publisher.pop_and_wait("L1", "1001", "mandarin") is False
    assert time.perf_counter() - started < ACK_TIMEOUT / 10
    assert publisher.stats.bus_skips == 1 and publisher.stats.pushed == 0
    # AgentCalled follows: the pop was never pushed, so the fallback pushes it
    bus.up = True
    cursor = await bus.last_id("agent:1001")
    await publisher.publish(Push("1001", PushType.SCREENPOP, "L1", {"queue": "mandarin"}))
    assert publisher.stats.fallback_pushes == 1
    got = await bus.read("agent:1001", cursor, block_ms=0)
    assert [(m.data["type"], m.data["linkedid"]) for m in got] == [("screenpop", "L1")]


async def test_a_stalled_redis_holds_the_phone_no_longer_than_the_ack_timeout(
    redis_url: str,
) -> None:
    db = redis_url.rsplit("/", 1)[-1]
    with FaultProxy("127.0.0.1", 6379, name="redis-prering") as proxy:
        bus = RedisBus(f"redis://{proxy.host}:{proxy.port}/{db}", prefix=f"t-{uuid.uuid4().hex}:")
        publisher = PopPublisher(bus, ack_timeout=ACK_TIMEOUT)
        try:
            assert await publisher.pop_and_wait("L0", "1001") is False  # up: no page acks
            assert publisher.stats.ack_timeouts == 1
            proxy.blackhole()  # Redis frozen (SIGSTOP): connections hang, nothing fails
            started = time.perf_counter()
            assert await publisher.pop_and_wait("L1", "1001") is False
            first = time.perf_counter() - started
            assert first < ACK_TIMEOUT + 0.2  # was the client's socket timeout (5 s)
            deadline = time.monotonic() + 5
            while bus.available and time.monotonic() < deadline:  # the health PING notices
                await asyncio.sleep(0.05)
            assert not bus.available
            started = time.perf_counter()
            assert await publisher.pop_and_wait("L2", "1001") is False
            assert time.perf_counter() - started < 0.05  # known down: skipped at once
            assert publisher.stats.bus_skips == 2
            assert publisher.stats.pushed == 1  # only L0 went out; L1 and L2 fall back
            proxy.restore()
        finally:
            await bus.close()
