"""Redis Streams: every API process sees every message; clients resume by id.

Every setting of the client is explicit (:class:`RedisOptions`). Commands share a small
pool; the sockets' blocking reads are the process's few readers
(:class:`hotline.bus.reader.StreamReader`, each over a share of the streams).
``available`` follows the link (a bounded PING once a second and every command's
outcome) so a caller on a deadline, such as the pre-dial step, can skip a bus that is
down instead of waiting on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hotline.bus.base import DEFAULT_MAXLEN, BusMessage, Fanout, Subscription
from hotline.bus.batch import Batcher
from hotline.bus.reader import StreamReader, shard_of, stop_task

__all__ = ["RedisBus", "RedisOptions", "redis_client"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Every setting of the Redis client, explicit; pinned by tests/unit/test_redis_timeouts.py.

    The library's defaults (redis-py 8: 5 s socket timeout, a pool of 100 that raises past
    it, no health check) killed every idle page every 5 s and capped a process at ~100
    pages (docs/benchmarks.md). Commands are short (XADD, XREVRANGE, GET/SET, a bounded XREAD) and
    share a small pool; each of the ``readers`` blocking readers (:mod:`hotline.bus.reader`
    says why a few, not one) has a connection of its own whose socket timeout exceeds its
    block time.
    """

    socket_timeout: float = 2.0  # commands; a blocking read() is clamped below it
    connect_timeout: float = 1.0
    max_connections: int = 32
    pool_timeout: float = 1.0  # waiting for a free pooled connection, then ConnectionError
    retries: int = 1  # once, on a dropped connection only: a timeout is not retried
    retry_backoff: float = 0.05
    health_check_interval: int = 15  # seconds idle before a pooled connection is PINGed
    readers: int = 8  # blocking readers per process, each over a share of the streams
    reader_block_ms: int = 5000
    reader_socket_timeout: float = 8.0
    backoff_min: float = 0.1  # the reader's reconnect back-off, doubled up to backoff_max
    backoff_max: float = 2.0
    watch_interval: float = 1.0  # the health PING that keeps `available` true to the link
    watch_timeout: float = 0.5
    # last_id of many streams asked at once (a burst of pages opening) goes in pipelines of
    # this many XREVRANGEs: one pooled connection per batch, not one per page
    last_id_batch: int = 500

    def __post_init__(self) -> None:
        if self.reader_block_ms / 1000 >= self.reader_socket_timeout:
            raise ValueError("reader_block_ms must stay below reader_socket_timeout")
        if self.readers < 1:
            raise ValueError("readers must be at least 1")
        if self.last_id_batch < 1:
            raise ValueError("last_id_batch must be at least 1")
        if self.socket_timeout <= 0.5:
            raise ValueError("socket_timeout must exceed 0.5 s (reads block up to 0.5 s less)")

    @property
    def read_block_cap_ms(self) -> int:
        """The longest block a pooled read() may ask for: below the command socket timeout."""
        return int(self.socket_timeout * 1000) - 500


def redis_client(url: str, options: RedisOptions, *, reader: bool) -> Any:
    """A client with every timeout, the pool, retries and health checks set here.

    Options in the URL's query string are overridden: these values are the tested ones.
    """
    import redis.asyncio as redis
    from redis.asyncio.connection import BlockingConnectionPool, parse_url
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff, NoBackoff

    kwargs: dict[str, Any] = dict(parse_url(url))
    kwargs.update(
        decode_responses=True,
        protocol=2,  # RESP2 replies: the shapes parsed here and in hotline.live.publisher
        socket_connect_timeout=options.connect_timeout,
        socket_keepalive=True,
        health_check_interval=0 if reader else options.health_check_interval,
        retry_on_timeout=False,
    )
    if reader:  # one connection, its own reconnect loop (StreamReader.run)
        kwargs.update(socket_timeout=options.reader_socket_timeout, retry=Retry(NoBackoff(), 0))
        pool = BlockingConnectionPool(max_connections=1, timeout=options.pool_timeout, **kwargs)
    else:
        backoff = ExponentialBackoff(cap=options.retry_backoff * 4, base=options.retry_backoff)
        kwargs.update(
            socket_timeout=options.socket_timeout,
            retry=Retry(backoff, options.retries, supported_errors=(RedisConnectionError,)),
        )
        pool = BlockingConnectionPool(
            max_connections=options.max_connections, timeout=options.pool_timeout, **kwargs
        )
    return redis.Redis.from_pool(pool)


class RedisBus:
    """Redis Streams: every API process sees every message; clients resume by id."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hotline:",
        maxlen: int = DEFAULT_MAXLEN,
        options: RedisOptions | None = None,
    ) -> None:
        self.url = url
        self.options = options or RedisOptions()
        self.prefix = self._prefix = prefix
        self._redis = redis_client(url, self.options, reader=False)
        self._maxlen = maxlen
        self.fanout = Fanout(limit=2 * maxlen + 200)  # XADD's MAXLEN ~ keeps up to ~100 more
        self._readers: list[StreamReader] = []
        self._last_ids = Batcher(self._last_ids_of, max_batch=self.options.last_id_batch)
        self._watch: asyncio.Task[None] | None = None
        self._down_since: float | None = None

    # -- health: `available` follows the link, so a caller on a deadline can skip it --
    @property
    def available(self) -> bool:
        return self._down_since is None

    def _failed(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("bus: Redis unavailable (%s)", type(exc).__name__)

    def _succeeded(self) -> None:
        if self._down_since is not None:
            log.warning("bus: Redis available again after %.1f s", self._since_down())
            self._down_since = None

    def _since_down(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def _watching(self) -> None:
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_link(), name="bus-watch")

    async def _watch_link(self) -> None:
        """PING once a second (bounded): a stalled Redis shows within about a second."""
        while True:
            ok = await self.ping()
            if ok:
                self._succeeded()
            else:
                self._failed(TimeoutError())
            await asyncio.sleep(self.options.watch_interval)

    async def _call(self, coro: Any) -> Any:
        self._watching()
        try:
            result = await coro
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._failed(exc)
            raise
        self._succeeded()
        return result

    # -- the Bus contract --
    async def publish(self, stream: str, data: dict[str, Any]) -> str:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        xadd = self._redis.xadd(
            self._prefix + stream, {"d": payload}, maxlen=self._maxlen, approximate=True
        )
        return str(await self._call(xadd))

    async def last_id(self, stream: str) -> str:
        """The stream's newest id (``0-0`` when empty). Asked by every page as it opens:
        the streams asked together share one pipeline (:class:`hotline.bus.batch.Batcher`),
        so a burst of 2,000 pages is a few round trips, not 2,000 waits for the pool."""
        return await self._last_ids.get(stream) or "0-0"

    async def _last_ids_of(self, streams: list[str]) -> dict[str, str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrevrange(self._prefix + stream, count=1)
            replies = await self._call(pipe.execute())
        return {s: str(info[0][0]) for s, info in zip(streams, replies, strict=True) if info}

    async def subscribe(self, stream: str, after: str | None) -> Subscription:
        cursor = after if after is not None else await self.last_id(stream)
        reader = self.reader_for(stream)
        self._watching()
        reader.start()
        subscription = self.fanout.add(stream, cursor)
        reader.joined(stream, cursor)
        return subscription

    def reader_for(self, stream: str) -> StreamReader:
        """The reader whose share ``stream`` is; the readers are made on first use."""
        if not self._readers:
            shards = self.options.readers
            self._readers = [
                StreamReader(
                    self,
                    self.fanout,
                    redis_client(self.url, self.options, reader=True),
                    index=n,
                    shards=shards,
                )
                for n in range(shards)
            ]
        return self._readers[shard_of(stream, len(self._readers))]

    async def read(
        self, stream: str, after: str | None, *, block_ms: int = 1000, count: int = 100
    ) -> list[BusMessage]:
        """One read on a pooled connection, its block capped below the socket timeout
        (``RedisOptions.read_block_cap_ms``): callers that wait longer loop."""
        key = self._prefix + stream
        block = min(block_ms, self.options.read_block_cap_ms)
        reply = await self._call(
            self._redis.xread(
                {key: after if after is not None else "$"},
                count=count,
                block=block if block > 0 else None,
            )
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
            return bool(await asyncio.wait_for(self._redis.ping(), self.options.watch_timeout))
        except Exception:
            return False

    async def close(self) -> None:
        self.fanout.close()
        if self._watch is not None:
            await stop_task(self._watch)
        for reader in self._readers:
            await reader.close()
        await self._redis.aclose()
