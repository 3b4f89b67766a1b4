"""Many concurrent look-ups by key, answered by one call per batch.

A burst of pages (2,050 after a restart, docs/benchmarks.md) asks the same questions at once: is
this token valid, what is this stream's last id. One round trip each queued them behind a
small pool whose wait counted against their deadline, and about half were refused on a
healthy database and Redis (docs/benchmarks.md, "Pages on one process"). A
:class:`Batcher` takes the keys asked for while the previous batch was in flight and
answers them with one call (one ``SELECT … IN``, one pipeline): the work per burst grows
with the number of batches, not of pages, and each batch's own deadline times only its
own work.

Used by the bus (:meth:`hotline.bus.RedisBus.last_id`) and the token check
(:func:`hotline.api.auth.verify_token`, through :meth:`hotline.api.deps.DatabaseProbe.batcher`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from itertools import islice
from typing import Any, Generic, TypeVar

__all__ = ["Batcher"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Every waiter may have gone (a client that left): the exception is still retrieved.
    if not future.cancelled():
        future.exception()


class Batcher(Generic[K, V]):
    """``await batcher.get(key)``: ``fetch(keys)[key]``, or None when the mapping lacks it.

    One batch is in flight at a time, of at most ``max_batch`` keys; the same key asked
    twice meanwhile is fetched once. When a batch fails, every key waiting (in it and
    queued behind it) gets that exception: against a hung backend each would otherwise
    wait a whole deadline of its own for the same answer, so a failure costs a caller at
    most one deadline, as it did with a round trip each. A waiter that is cancelled does
    not cancel the others' answer. Used from one event loop at a time; a batcher moved to
    another loop (a test's) starts afresh.
    """

    def __init__(
        self, fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]], *, max_batch: int = 500
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.batches = 0  # calls of fetch: what a burst cost
        self._fetch = fetch
        self._futures: dict[K, asyncio.Future[V | None]] = {}  # queued or in flight
        self._queue: dict[K, None] = {}  # not yet sent, in order of asking
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._task = loop, None
            self._futures.clear()
            self._queue.clear()
        future = self._futures.get(key)
        if future is None:
            future = self._futures[key] = loop.create_future()
            future.add_done_callback(_retrieve)
            self._queue[key] = None
            if self._task is None or self._task.done():
                self._task = loop.create_task(self._drain(), name="batcher")
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._queue:
                keys = list(islice(self._queue, self.max_batch))
                for key in keys:
                    del self._queue[key]
                self.batches += 1
                try:
                    found = await self._fetch(keys)
                except Exception as exc:
                    waiting = list(self._futures.values())
                    self._futures.clear()
                    self._queue.clear()
                    for future in waiting:
                        if not future.done():
                            future.set_exception(exc)
                    return
                for key in keys:
                    future = self._futures.pop(key)
                    if not future.done():
                        future.set_result(found.get(key))
        finally:  # cancelled (the app stopping): nobody is left waiting forever
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()
            self._queue.clear()
