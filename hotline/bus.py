"""Events out: append-only streams that WebSocket clients read and resume.

A screen-pop or a wallboard frame must reach every API process, and a page that
reconnects must get what it missed. Redis Streams give both (XADD with an id, XREAD
from the last id seen). Without Redis, :class:`MemoryBus` keeps the same contract
inside one process, so the embedded first run behaves like production.

Stream names carry the audience: ``agent:<id>`` is read only by that agent's socket,
``supervisor`` only by supervisors. Ids are Redis-style ``<ms>-<seq>`` strings and
compare in order in both implementations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, cast

__all__ = ["DEFAULT_MAXLEN", "Bus", "BusMessage", "MemoryBus", "RedisBus", "id_key", "make_bus"]

log = logging.getLogger(__name__)

DEFAULT_MAXLEN = 1000  # per stream: enough for a page that was away a few minutes


@dataclass(frozen=True, slots=True)
class BusMessage:
    id: str
    data: dict[str, Any]


class Bus(Protocol):
    async def publish(self, stream: str, data: dict[str, Any]) -> str: ...

    async def read(
        self, stream: str, after: str | None, *, block_ms: int = 1000, count: int = 100
    ) -> list[BusMessage]:
        """Messages after id ``after`` (``None``: only messages published from now on)."""
        ...

    async def last_id(self, stream: str) -> str: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def id_key(message_id: str) -> tuple[int, int]:
    ms, _, seq = message_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)


class MemoryBus:
    """One process, bounded per stream, same id semantics as Redis Streams."""

    def __init__(self, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._streams: dict[str, deque[BusMessage]] = {}
        self._maxlen = maxlen
        self._last = (0, 0)
        self._changed = asyncio.Condition()

    def _next_id(self) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def publish(self, stream: str, data: dict[str, Any]) -> str:
        message = BusMessage(self._next_id(), data)
        self._streams.setdefault(stream, deque(maxlen=self._maxlen)).append(message)
        async with self._changed:
            self._changed.notify_all()
        return message.id

    def _after(self, stream: str, after: str, count: int) -> list[BusMessage]:
        key = id_key(after)
        items = self._streams.get(stream, ())
        return [m for m in items if id_key(m.id) > key][:count]

    async def last_id(self, stream: str) -> str:
        items = self._streams.get(stream)
        return items[-1].id if items else f"{self._last[0]}-{self._last[1]}"

    async def read(
        self, stream: str, after: str | None, *, block_ms: int = 1000, count: int = 100
    ) -> list[BusMessage]:
        if after is None:
            after = await self.last_id(stream)
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

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._streams.clear()


class RedisBus:
    """Redis Streams: every API process sees every message; clients resume by id."""

    def __init__(self, url: str, *, prefix: str = "hotline:", maxlen: int = DEFAULT_MAXLEN) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, decode_responses=True)
        self._prefix = prefix
        self._maxlen = maxlen

    async def publish(self, stream: str, data: dict[str, Any]) -> str:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return str(
            await self._redis.xadd(
                self._prefix + stream, {"d": payload}, maxlen=self._maxlen, approximate=True
            )
        )

    async def last_id(self, stream: str) -> str:
        info = await self._redis.xrevrange(self._prefix + stream, count=1)
        return str(info[0][0]) if info else "0-0"

    async def read(
        self, stream: str, after: str | None, *, block_ms: int = 1000, count: int = 100
    ) -> list[BusMessage]:
        key = self._prefix + stream
        reply = await self._redis.xread(
            {key: after if after is not None else "$"},
            count=count,
            block=block_ms if block_ms > 0 else None,
        )
        # redis-py types the reply for every protocol version at once; on RESP2 (ours) with
        # decode_responses=True it is [[stream, [(id, {field: value}), ...]], ...] or None.
        streams = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]] | None, reply)
        out: list[BusMessage] = []
        for _name, entries in streams or ():
            for message_id, fields in entries:
                try:
                    out.append(BusMessage(message_id, json.loads(fields["d"])))
                except (KeyError, ValueError):
                    log.warning("skipping malformed bus entry %s on %s", message_id, stream)
        return out

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), 0.5))
        except Exception:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def make_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else MemoryBus()
