"""Events out: append-only streams that WebSocket clients read and resume.

A screen-pop or a wallboard frame must reach every API process, and a page that
reconnects must get what it missed. Redis Streams give both (XADD with an id, XREAD
from the last id seen). Without Redis, :class:`MemoryBus` keeps the same contract
inside one process, so the embedded first run behaves like production.

Stream names carry the audience: ``agent:<id>`` is read only by that agent's socket,
``supervisor`` only by supervisors. Ids are Redis-style ``<ms>-<seq>`` strings and
compare in order in both implementations.

Sockets do not read the bus themselves: :meth:`Bus.subscribe` joins the process's
:class:`Fanout`, fed by a few readers per process (Redis: a blocking XREAD over each
reader's share of the subscribed streams, :mod:`hotline.bus.reader`; in process:
``publish`` itself), never by a connection per socket, into
bounded per-subscription queues (docs/benchmarks.md, "Pages on one process").

    base.py           the contract, ids, subscriptions and the fan-out
    memory.py         MemoryBus
    redis_streams.py  RedisBus and every setting of its client (RedisOptions)
    reader.py         the blocking readers of a process
    batch.py          look-ups asked together answered together (last ids, token checks)
"""

from __future__ import annotations

from hotline.bus.base import (
    DEFAULT_MAXLEN,
    Bus,
    BusMessage,
    Fanout,
    Subscription,
    SubscriptionDropped,
    id_key,
)
from hotline.bus.memory import MemoryBus
from hotline.bus.redis_streams import RedisBus, RedisOptions

__all__ = [
    "DEFAULT_MAXLEN",
    "Bus",
    "BusMessage",
    "Fanout",
    "MemoryBus",
    "RedisBus",
    "RedisOptions",
    "Subscription",
    "SubscriptionDropped",
    "id_key",
    "make_bus",
]


def make_bus(redis_url: str | None, options: RedisOptions | None = None) -> Bus:
    """Redis when a URL is configured, else the in-process bus."""
    return RedisBus(redis_url, options=options) if redis_url else MemoryBus()
