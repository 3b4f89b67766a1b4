"""The bus inside one process: the embedded first run behaves like production.

Same ids (``<ms>-<seq>``), same bounded streams and the same fan-out as Redis, so a page
and a test see one contract.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from hotline.bus.base import DEFAULT_MAXLEN, BusMessage, Fanout, Subscription, id_key

__all__ = ["MemoryBus"]


class MemoryBus:
    """One process, bounded per stream, same id semantics as Redis Streams."""

    def __init__(self, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._streams: dict[str, deque[BusMessage]] = {}
        self._maxlen = maxlen
        self._last = (0, 0)
        self._changed = asyncio.Condition()
        self.fanout = Fanout(limit=2 * maxlen)

    def _next_id(self) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def publish(self, stream: str, data: dict[str, Any]) -> str:
        message = BusMessage(self._next_id(), data)
        self._streams.setdefault(stream, deque(maxlen=self._maxlen)).append(message)
        self.fanout.deliver(stream, (message,))
        async with self._changed:
            self._changed.notify_all()
        return message.id

    def _after(self, stream: str, after: str, count: int) -> list[BusMessage]:
        key = id_key(after)
        items = self._streams.get(stream, ())
        return [m for m in items if id_key(m.id) > key][:count]

    def _last_id(self, stream: str) -> str:
        items = self._streams.get(stream)
        return items[-1].id if items else f"{self._last[0]}-{self._last[1]}"

    async def last_id(self, stream: str) -> str:
        return self._last_id(stream)

    async def subscribe(self, stream: str, after: str | None) -> Subscription:
        # No await between joining and catching up: nothing published can fall between.
        cursor = after if after is not None else self._last_id(stream)
        subscription = self.fanout.add(stream, cursor)
        subscription.offer(self._after(stream, cursor, self._maxlen))
        return subscription

    async def read(
        self, stream: str, after: str | None, *, block_ms: int = 1000, count: int = 100
    ) -> list[BusMessage]:
        if after is None:
            after = self._last_id(stream)
        found = self._after(stream, after, count)
        if found or block_ms <= 0:
            return found
        deadline = time.monotonic() + block_ms / 1000
        async with self._changed:
            while not (found := self._after(stream, after, count)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    break
        return found

    @property
    def available(self) -> bool:
        return True

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self.fanout.close()
        self._streams.clear()
