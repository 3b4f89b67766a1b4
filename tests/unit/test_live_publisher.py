"""LivePublisher: frames in order with whole views, throttled snapshots that carry their own
stream id, the stored snapshot (memory and Redis), and a bus that fails or falls behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hotline.ami.events import AMIEvent
from hotline.bus import Bus, BusMessage, MemoryBus, RedisBus
from hotline.live.changes import Change, LinkChanged, StateReset
from hotline.live.publisher import LivePublisher, get_snapshot, set_snapshot
from hotline.live.state import LiveState
from hotline.types import SUPERVISOR_STREAM

T0 = 1_772_413_200.0  # 2026-03-02 09:00 Asia/Shanghai
Q = "cantonese"


def ev(name: str, t: float, **headers: str) -> AMIEvent:
    return AMIEvent(name=name, headers={"Event": name, "Timestamp": f"{T0 + t:.6f}", **headers})


def join(t: float, uid: str, number: str = "13800000000") -> AMIEvent:
    return ev(
        "QueueCallerJoin",
        t,
        Uniqueid=uid,
        Linkedid=uid,
        Queue=Q,
        Position="1",
        CallerIDNum=number,
        CallerIDName="客户",
    )


def abandon(t: float, uid: str) -> list[AMIEvent]:
    return [
        ev("QueueCallerAbandon", t, Uniqueid=uid, Queue=Q, HoldTime="30"),
        ev("QueueCallerLeave", t, Uniqueid=uid, Queue=Q, Count="0"),
        ev("Hangup", t + 0.1, Uniqueid=uid, Linkedid=uid, Cause="16"),
    ]


def feed(pub: LivePublisher, events: list[AMIEvent], now: float) -> None:
    for event in events:
        pub.on_changes(pub.state.feed(event), now)


async def frames(bus: Bus, after: str = "0-0") -> list[BusMessage]:
    return await bus.read(SUPERVISOR_STREAM, after, block_ms=0, count=1000)


async def test_a_waiting_caller_becomes_frames_with_whole_views_then_a_snapshot() -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState())
    feed(pub, [join(0, "c1")], T0 + 1)
    await pub.drain()
    sent = [m.data for m in await frames(bus)]
    assert [f["type"] for f in sent] == ["caller.waiting", "queue", "snapshot"]
    waiting = sent[0]
    assert waiting["queue"] == Q and waiting["position"] == 1 and waiting["at"] == T0 + 1
    assert waiting["caller"]["caller_number"] == "13800000000"
    assert waiting["caller"]["wait"] == pytest.approx(1.0)
    assert sent[1]["view"]["waiting_count"] == 1
    assert sent[2]["snapshot"]["queues"][Q]["waiting_count"] == 1
    assert all("kind" not in f for f in sent)


async def test_abandon_frame_carries_the_call_back_entry() -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState())
    feed(pub, [join(0, "c1"), *abandon(30, "c1")], T0 + 31)
    await pub.drain()
    abandoned = [m.data for m in await frames(bus) if m.data["type"] == "abandoned"]
    assert len(abandoned) == 1
    assert abandoned[0]["linkedid"] == "c1" and abandoned[0]["wait"] == pytest.approx(30)


async def test_snapshots_are_throttled_and_a_tick_sends_the_one_owed() -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState(), min_interval=0.5)
    feed(pub, [join(0, "c1")], T0)
    feed(pub, [join(0.1, "c2")], T0 + 0.1)
    feed(pub, [join(0.2, "c3")], T0 + 0.2)
    await pub.drain()
    snaps = [m.data for m in await frames(bus) if m.data["type"] == "snapshot"]
    assert len(snaps) == 1  # the first; c2 and c3 only as frames so far
    pub.tick(T0 + 0.4)
    await pub.drain()
    assert sum(m.data["type"] == "snapshot" for m in await frames(bus)) == 1
    pub.tick(T0 + 0.6)
    pub.tick(T0 + 1.6)  # nothing changed since: no frame
    await pub.drain()
    snaps = [m.data for m in await frames(bus) if m.data["type"] == "snapshot"]
    assert len(snaps) == 2
    assert snaps[-1]["snapshot"]["queues"][Q]["waiting_count"] == 3


@pytest.mark.parametrize("change", [StateReset("queue_status"), LinkChanged(False)])
async def test_reset_or_link_change_forces_a_snapshot_inside_the_interval(change: Change) -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState(), min_interval=10)
    feed(pub, [join(0, "c1")], T0)
    pub.on_changes([change], T0 + 0.1)
    await pub.drain()
    types = [m.data["type"] for m in await frames(bus)]
    assert types.count("snapshot") == 2
    assert types[-2:] == [change.kind, "snapshot"]


async def test_the_stored_snapshot_carries_its_own_frame_id() -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState(), min_interval=10)
    feed(pub, [join(0, "c1")], T0)
    feed(pub, [join(1, "c2")], T0 + 1)  # a frame after the snapshot, no new snapshot
    await pub.drain()
    record = await get_snapshot(bus)
    assert record is not None
    everything = await frames(bus)
    snapshot_frame = next(m for m in everything if m.data["type"] == "snapshot")
    assert record["id"] == snapshot_frame.id
    assert record["snapshot"]["queues"][Q]["waiting_count"] == 1
    after = [m.data["type"] for m in await frames(bus, record["id"])]
    assert after == ["caller.waiting", "queue"]  # exactly what the snapshot lacks


async def test_idle_publisher_refreshes_the_store_without_frames() -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState(), refresh_interval=5)
    feed(pub, [join(0, "c1")], T0)
    await pub.drain()
    count = len(await frames(bus))
    pub.tick(T0 + 2)
    pub.tick(T0 + 6)
    await pub.drain()
    assert len(await frames(bus)) == count
    record = await get_snapshot(bus)
    assert record is not None and record["at"] == T0 + 6
    assert record["id"] == (await frames(bus))[-1].id


async def test_no_snapshot_is_stored_before_the_publisher_runs() -> None:
    assert await get_snapshot(MemoryBus()) is None


class FlakyBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.fail_next = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def publish(self, stream: str, data: dict[str, Any]) -> str:
        await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("redis down")
        return await super().publish(stream, data)


async def test_a_failed_publish_is_counted_and_owes_pages_a_snapshot() -> None:
    bus = FlakyBus()
    pub = LivePublisher(bus, LiveState(), min_interval=10)
    feed(pub, [join(0, "c1")], T0)
    await pub.drain()
    bus.fail_next = 1
    feed(pub, [join(1, "c2")], T0 + 1)  # caller.waiting lost
    await pub.drain()
    assert pub.stats["publish_failures"] == 1
    assert pub.publish_snapshot(T0 + 1.1)  # inside min_interval, yet due
    await pub.drain()
    last = (await frames(bus))[-1].data
    assert last["type"] == "snapshot" and last["snapshot"]["queues"][Q]["waiting_count"] == 2


async def test_a_bus_that_falls_behind_drops_frames_not_the_consumer() -> None:
    bus = FlakyBus()
    bus.gate.clear()
    pub = LivePublisher(bus, LiveState(), min_interval=10, max_pending=3)
    feed(pub, [join(i, f"c{i}") for i in range(10)], T0 + 10)  # returns at once
    assert pub.pending == 3 and pub.stats["dropped"] > 0
    bus.gate.set()
    await pub.drain()
    assert pub.publish_snapshot(T0 + 10.1)
    await pub.drain()
    last = (await frames(bus))[-1].data
    assert last["snapshot"]["queues"][Q]["waiting_count"] == 10


async def test_stop_publishes_what_is_queued() -> None:
    bus = MemoryBus()
    pub = LivePublisher(bus, LiveState())
    feed(pub, [join(0, "c1")], T0)
    await pub.stop()
    assert len(await frames(bus)) == 3


async def test_redis_store_round_trip_and_publisher(redis_url: str) -> None:
    bus = RedisBus(redis_url)
    try:
        assert await get_snapshot(bus) is None
        await set_snapshot(bus, {"id": "1-0", "at": 1.0, "snapshot": {"queues": {"粤语": {}}}})
        stored = await get_snapshot(bus)
        assert stored is not None and stored["snapshot"]["queues"] == {"粤语": {}}
        pub = LivePublisher(bus, LiveState())
        feed(pub, [join(0, "c1")], T0)
        await pub.drain()
        record = await get_snapshot(bus)
        last = (await bus.read(SUPERVISOR_STREAM, "0-0", block_ms=0))[-1]
        assert record is not None and record["id"] == last.id and last.data["type"] == "snapshot"
        await pub.stop()
    finally:
        await bus.close()
