"""The blocking XREADs of a process, over every stream its sockets subscribed to.

Sockets used to hold a pooled connection each for their own blocking XREAD, killed every
5 s by the client's socket timeout, and ~100 per process at most (docs/benchmarks.md,
"Pages on one process"). Here a reader task reads its share of the subscribed streams in
one command (XREAD takes many keys) on a connection of its own and hands the messages to
:class:`hotline.bus.base.Fanout`.

A process has a few readers (``RedisOptions.readers``, 8), each with a fixed share of the
streams (:func:`shard_of`), not one: Redis re-runs a blocked XREAD in full, every key of
it, each time one of its keys gets a message, and with all 2,000 agent streams in one
XREAD that was ~6 ms of Redis per pop, which every pop then waited behind (p50 13 ms,
p99 31 ms; docs/benchmarks.md, "Pages on one process"). Eight shares of ~250 keys cost
an eighth of that per pop, on eight connections per process whatever the page count.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from hotline.bus.base import BusMessage, Fanout, id_key

if TYPE_CHECKING:
    from hotline.bus.redis_streams import RedisBus

__all__ = ["StreamReader", "shard_of", "stop_task"]

log = logging.getLogger(__name__)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


@functools.lru_cache(maxsize=65536)
def shard_of(stream: str, shards: int) -> int:
    """Which of a process's ``shards`` readers reads ``stream``: stable, spread evenly."""
    return zlib.crc32(stream.encode()) % shards if shards > 1 else 0


async def stop_task(task: asyncio.Task[None], *, tries: int = 20, wait: float = 0.25) -> None:
    """Cancel ``task`` until it ends: redis-py 8 can swallow a cancellation that lands while
    it connects (seen on the reader closed right after its first subscription), and a task
    left running would keep the process's loop, and a test's, from ending."""
    for _ in range(tries):
        if task.done():
            break
        task.cancel()
        await asyncio.wait({task}, timeout=wait)
    if task.done() and not task.cancelled():
        with contextlib.suppress(BaseException):
            task.result()  # retrieved: no "exception was never retrieved" at exit


class StreamReader:
    """Reads its share of the subscribed streams in one blocking XREAD; fans out what comes.

    The command is packed here, not by redis-py: with 2,000 streams redis-py spends ~3 ms
    packing 4,000 arguments on every read (docs/benchmarks.md, "Pages on one process"),
    while the stream names change only when a socket comes or goes.

    A subscription to a stream the blocked read does not cover (or from an older id)
    writes to this process's wake stream, which the read also covers, so it returns at
    once and the next read includes the newcomer: joining costs about a millisecond
    instead of up to a block. Cursors are concrete ids, never ``$``, so a message
    published between two reads is read by the second; after an outage each stream
    resumes from where its subscribers are, and nothing is lost.
    """

    def __init__(
        self, bus: RedisBus, fanout: Fanout, client: Any, *, index: int = 0, shards: int = 1
    ) -> None:
        self.index, self.shards = index, shards
        self._bus = bus
        self._fanout = fanout
        self._redis = client  # a pool of one connection, never shared (redis_client)
        self._wake_key = f"{bus.prefix}wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"
        self._reading: dict[str, str] | None = None  # streams of the read in flight
        self._keys: tuple[tuple[str, ...], bytes] = ((), b"")
        self.loops = 0  # reads that returned: one per wake, batch or block timeout
        self.task: asyncio.Task[None] | None = None
        self._waking: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs
        self._closing = False

    def owns(self, stream: str) -> bool:
        """Whether ``stream`` is this reader's share (:func:`shard_of`)."""
        return shard_of(stream, self.shards) == self.index

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self.run(), name="bus-reader")

    def joined(self, stream: str, cursor: str) -> None:
        """Wake the blocked read if it does not cover ``stream`` from ``cursor``."""
        reading = self._reading
        if reading is None:
            return  # not blocked: the next read picks the stream up
        covered = reading.get(stream)
        if covered is not None and id_key(covered) <= id_key(cursor):
            return
        self._reading = None  # one wake per read
        task = asyncio.create_task(self._wake(), name="bus-reader-wake")
        self._waking.add(task)
        task.add_done_callback(self._waking.discard)

    async def _wake(self) -> None:
        try:
            async with self._bus._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1)
                pipe.expire(self._wake_key, 3600)
                await pipe.execute()
        except Exception as exc:  # the read itself will fail and back off
            log.debug("bus reader wake failed: %s", type(exc).__name__)

    def _command(self, cursors: dict[str, str]) -> bytes:
        streams = tuple(cursors)
        if self._keys[0] != streams:
            prefix = self._bus.prefix
            self._keys = (streams, b"".join(_bulk((prefix + s).encode()) for s in streams))
        ids = b"".join(_bulk(c.encode()) for c in cursors.values())
        head = [b"XREAD", b"COUNT", b"100", b"BLOCK", b"%d" % self._bus.options.reader_block_ms]
        parts = b"".join(_bulk(p) for p in head)
        n = len(head) + 1 + 2 * (len(streams) + 1)
        return b"".join(
            (
                b"*%d\r\n" % n,
                parts,
                _bulk(b"STREAMS"),
                self._keys[1],
                _bulk(self._wake_key.encode()),
                ids,
                _bulk(self._wake_cursor.encode()),
            )
        )

    async def _read(self, conn: Any, cursors: dict[str, str]) -> list[Any]:
        self._reading = cursors  # before the first await: a join from now on is seen
        try:
            await conn.send_packed_command(self._command(cursors), check_health=False)
            reply = await conn.read_response()
        finally:
            self._reading = None
        return cast(list[Any], reply or [])

    def _dispatch(self, reply: Iterable[Any]) -> None:
        prefix_len = len(self._bus.prefix)
        for key, entries in reply:
            if key == self._wake_key:
                self._wake_cursor = entries[-1][0]
                continue
            messages: list[BusMessage] = []
            for message_id, fields in entries:
                found = dict(zip(fields[::2], fields[1::2], strict=False))
                try:
                    data = json.loads(found["d"])
                except (KeyError, ValueError, TypeError):
                    data = None
                if isinstance(data, dict):  # a frame is an object: the pump adds its id
                    messages.append(BusMessage(message_id, data))
                else:
                    log.warning("skipping malformed bus entry %s on %s", message_id, key)
            if entries:  # every entry read moves the cursors, malformed ones included
                self._fanout.deliver(key[prefix_len:], messages, upto=entries[-1][0])

    async def run(self) -> None:
        options = self._bus.options
        backoff = options.backoff_min
        down_since: float | None = None
        last_log = 0.0
        conn = self._redis.connection_pool.make_connection()  # connects on first send
        try:
            while not self._closing:
                cursors = self._fanout.cursors(self.owns)
                if not cursors:
                    self._fanout.changed.clear()
                    await self._fanout.changed.wait()
                    continue
                self._fanout.changed.clear()
                try:
                    reply = await self._read(conn, cursors)
                except Exception as exc:
                    await conn.disconnect()
                    now = time.monotonic()
                    self._bus._failed(exc)
                    if down_since is None:
                        down_since = last_log = now
                        log.warning(
                            "bus reader: Redis unreachable (%s); %d sockets stay open, "
                            "retrying with back-off up to %.1f s",
                            type(exc).__name__,
                            len(self._fanout),
                            options.backoff_max,
                        )
                    elif now - last_log >= 30:
                        last_log = now
                        log.warning(
                            "bus reader: Redis still unreachable after %.0f s (%s)",
                            now - down_since,
                            type(exc).__name__,
                        )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, options.backoff_max)
                    continue
                if down_since is not None:
                    log.warning(
                        "bus reader: Redis back after %.1f s; %d streams resume from their ids",
                        time.monotonic() - down_since,
                        len(cursors),
                    )
                    down_since = None
                self._bus._succeeded()
                backoff = options.backoff_min
                self.loops += 1
                self._dispatch(reply)
        finally:
            await conn.disconnect()

    async def close(self) -> None:
        self._closing = True
        if self.task is not None:
            await stop_task(self.task)
        for task in list(self._waking):
            await stop_task(task)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._bus._redis.delete(self._wake_key), 0.5)
        await self._redis.aclose()
