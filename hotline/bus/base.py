"""The bus's contract and its fan-out: one read of a stream, many subscribers.

:class:`Bus` is what the rest of Hotline sees (:mod:`hotline.bus` re-exports it). A socket
does not read the bus itself: it subscribes, and its :class:`Subscription` is fed by
whatever reads the stream for the whole process (the Redis reader, or
:class:`hotline.bus.memory.MemoryBus`'s publish), through one :class:`Fanout`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DEFAULT_MAXLEN",
    "Bus",
    "BusMessage",
    "Fanout",
    "Subscription",
    "SubscriptionDropped",
    "id_key",
]

DEFAULT_MAXLEN = 1000  # per stream: enough for a page that was away a few minutes


@dataclass(frozen=True, slots=True)
class BusMessage:
    id: str
    data: dict[str, Any]


class SubscriptionDropped(Exception):
    """The subscriber fell a whole stream behind; it must reconnect and resume by id."""


class Bus(Protocol):
    async def publish(self, stream: str, data: dict[str, Any]) -> str: ...

    async def read(
        self, stream: str, after: str | None, *, block_ms: int = 1000, count: int = 100
    ) -> list[BusMessage]:
        """Messages after id ``after`` (``None``: only messages published from now on)."""
        ...

    async def subscribe(self, stream: str, after: str | None) -> Subscription:
        """Every message of ``stream`` after id ``after`` (``None``: from now on), pushed."""
        ...

    async def last_id(self, stream: str) -> str: ...

    @property
    def available(self) -> bool:
        """False while the bus is known to be unreachable: callers on a deadline skip it."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def id_key(message_id: str) -> tuple[int, int]:
    ms, _, seq = message_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)


# -- fan-out: one read, many subscribers ---------------------------------------------------


class Subscription:
    """One socket's view of one stream: its cursor and a bounded queue of what is due.

    The queue holds references to messages shared by every subscriber, so its bound is
    about lag, not memory: it is twice the stream's length, so a page resuming from the
    oldest id still kept always fits, and only a socket that stopped reading while a whole
    stream went by overflows. That one is dropped (:class:`SubscriptionDropped`) and the
    others never wait for it.
    """

    def __init__(self, fanout: Fanout, stream: str, cursor: str, limit: int) -> None:
        self.stream = stream
        self.cursor = cursor  # the last id queued
        self._key = id_key(cursor)
        self._fanout = fanout
        self._limit = limit
        self._pending: deque[BusMessage] = deque()
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self.dropped: str | None = None
        self.closed = False

    def offer(self, messages: Sequence[BusMessage], upto: str | None = None) -> None:
        """Queue the messages after this subscription's cursor (a shared read may repeat).

        ``upto`` is the last id the read covered, when it skipped entries (malformed ones):
        the cursor moves past them too, or the next read would return them again at once.
        """
        if self.closed:
            return
        fresh = [m for m in messages if id_key(m.id) > self._key]
        if upto is not None and id_key(upto) > self._key:
            self.cursor, self._key = upto, id_key(upto)
        if not fresh:
            return
        if id_key(fresh[-1].id) > self._key:
            self.cursor, self._key = fresh[-1].id, id_key(fresh[-1].id)
        if len(self._pending) + len(fresh) > self._limit:
            self.dropped = f"{len(self._pending) + len(fresh)} messages queued"
            self._pending.clear()
            self.close()
            return
        self._pending.extend(fresh)
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def next(self) -> list[BusMessage]:
        """Wait for the next batch, in id order; raise once dropped or closed."""
        while not self._pending:
            if self.closed:
                raise SubscriptionDropped(self.dropped or "closed")
            self._ready.clear()
            await self._ready.wait()
        batch = list(self._pending)
        self._pending.clear()
        return batch

    async def wait_closed(self) -> str:
        """Return (the reason) once this subscription is dropped or closed."""
        await self._ended.wait()
        return self.dropped or "closed"

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fanout.remove(self)
            self._ready.set()
            self._ended.set()


class Fanout:
    """Subscriptions by stream; hands each read (or publish) to all of a stream's."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._streams: dict[str, set[Subscription]] = {}
        self.changed = asyncio.Event()  # a subscription joined: the reader re-reads its keys

    def add(self, stream: str, cursor: str) -> Subscription:
        subscription = Subscription(self, stream, cursor, self.limit)
        self._streams.setdefault(stream, set()).add(subscription)
        self.changed.set()
        return subscription

    def remove(self, subscription: Subscription) -> None:
        subs = self._streams.get(subscription.stream)
        if subs is not None:
            subs.discard(subscription)
            if not subs:
                del self._streams[subscription.stream]

    def deliver(self, stream: str, messages: Sequence[BusMessage], upto: str | None = None) -> None:
        for subscription in list(self._streams.get(stream, ())):
            subscription.offer(messages, upto)

    def cursors(self, owns: Callable[[str], bool] | None = None) -> dict[str, str]:
        """Per stream (those ``owns`` accepts), the oldest cursor among its subscriptions:
        where one read must start."""
        return {
            stream: min((s.cursor for s in subs), key=id_key)
            for stream, subs in self._streams.items()
            if owns is None or owns(stream)
        }

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._streams.values())

    def close(self) -> None:
        for subs in list(self._streams.values()):
            for subscription in list(subs):
                subscription.close()
