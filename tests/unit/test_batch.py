"""The batcher behind the token check and ``last_id`` (hotline/bus/batch.py): keys asked
together are fetched together, each once; a failure reaches every waiter at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

import pytest

from hotline.bus import RedisBus, RedisOptions
from hotline.bus.batch import Batcher


class Backend:
    """Records each fetch; answers ``key * 2`` for even keys, nothing for odd ones."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def fetch(self, keys: list[int]) -> Mapping[int, int]:
        self.calls.append(list(keys))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {k: k * 2 for k in keys if k % 2 == 0}


async def test_keys_asked_together_are_one_fetch_each_key_once() -> None:
    backend = Backend()
    batcher = Batcher(backend.fetch, max_batch=100)
    got = await asyncio.gather(*(batcher.get(k) for k in [2, 3, 4, 2, 4]))
    assert got == [4, None, 8, 4, 8]
    assert backend.calls == [[2, 3, 4]]


async def test_a_burst_is_split_into_batches_of_at_most_max_batch() -> None:
    backend = Backend()
    batcher = Batcher(backend.fetch, max_batch=300)
    got = await asyncio.gather(*(batcher.get(k) for k in range(1000)))
    assert got == [k * 2 if k % 2 == 0 else None for k in range(1000)]
    assert [len(c) for c in backend.calls] == [300, 300, 300, 100]
    assert batcher.batches == 4


async def test_keys_asked_while_a_batch_is_in_flight_go_in_the_next_one() -> None:
    backend = Backend()
    backend.gate = asyncio.Event()
    batcher = Batcher(backend.fetch)
    first = asyncio.ensure_future(batcher.get(2))
    while not backend.calls:
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(batcher.get(k)) for k in (2, 4, 6)]  # 2: in flight
    backend.gate.set()
    assert await first == 4 and [await t for t in later] == [4, 8, 12]
    assert backend.calls == [[2], [4, 6]]


async def test_a_failed_batch_fails_every_waiter_at_once_then_recovers() -> None:
    backend = Backend()
    backend.gate = asyncio.Event()
    batcher = Batcher(backend.fetch)
    first = asyncio.ensure_future(batcher.get(2))
    while not backend.calls:
        await asyncio.sleep(0)
    queued = [asyncio.ensure_future(batcher.get(k)) for k in (4, 6)]
    backend.error = TimeoutError()
    backend.gate.set()
    for task in (first, *queued):
        with pytest.raises(TimeoutError):
            await task
    assert backend.calls == [[2]]  # the queued ones did not wait a deadline of their own
    backend.error = None
    assert await batcher.get(4) == 8


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    backend = Backend()
    backend.gate = asyncio.Event()
    batcher = Batcher(backend.fetch)
    leaving = asyncio.ensure_future(batcher.get(2))
    staying = asyncio.ensure_future(batcher.get(2))
    while not backend.calls:
        await asyncio.sleep(0)
    leaving.cancel()
    backend.gate.set()
    assert await staying == 4
    assert leaving.cancelled()


def test_a_batcher_moved_to_another_loop_starts_afresh() -> None:
    backend = Backend()
    batcher = Batcher(backend.fetch)
    assert asyncio.run(batcher.get(2)) == 4
    assert asyncio.run(batcher.get(4)) == 8
    with pytest.raises(ValueError):
        Batcher(backend.fetch, max_batch=0)


async def test_1000_pages_asking_last_id_at_once_share_a_few_pipelines(redis_url: str) -> None:
    """Each page opening asks its stream's last id; one pooled round trip each waited past
    ``pool_timeout`` in a burst (docs/benchmarks.md). A pool of two still answers a thousand."""
    bus = RedisBus(
        redis_url,
        prefix=f"test-batch-{uuid.uuid4().hex[:8]}:",
        options=RedisOptions(max_connections=2, last_id_batch=250),
    )
    try:
        published = {f"agent:{n}": await bus.publish(f"agent:{n}", {"n": n}) for n in range(10)}
        streams = [f"agent:{n}" for n in range(1000)]
        got = await asyncio.gather(*(bus.last_id(s) for s in streams))
        assert got[:10] == list(published.values())
        assert set(got[10:]) == {"0-0"}
        assert bus._last_ids.batches <= 1 + 1000 // 250
    finally:
        await bus.close()
