"""Pushing the screen-pop, and holding the phone until the page has it.

AMI ``AgentCalled`` arrives a fraction of a millisecond *after* the agent's phone got
its INVITE, and a pop that merely races the INVITE came first on about half the calls
(docs/benchmarks.md, "Screen-pop lead time"). To be first every time, the queue's
pre-dial step on the member channel calls our FastAGI ``prering`` route, which pushes the
pop and waits until the agent's page acknowledges it, with a short bound after which the
phone rings anyway (counted in ``stats``). The pop's payload is prepared when the caller is
identified, long before any agent is chosen, so the pre-dial step only publishes.

``PopPublisher`` is I/O at the edge (bus, database via an injected loader); the
decisions about *when* a pop stops being true live in :mod:`screenpop.pops`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hotline.bus import Bus
from hotline.types import ack_stream
from screenpop.pops import Push, PushType

log = logging.getLogger(__name__)

CustomerLoader = Callable[[int], Awaitable[dict[str, Any] | None]]
MAX_REMEMBERED = 10_000
MIN_PUSH_BUDGET = 0.25
"""Seconds the pre-dial push itself may take when ``ack_timeout`` is shorter (even 0)."""


@dataclass(slots=True)
class CallContext:
    """What identification learnt about a caller; kept per Linkedid until the call ends."""

    linkedid: str
    caller_number: str = ""
    caller_e164: str | None = None
    caller_name: str = ""
    customer_id: int | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    dialect: str | None = None
    queue: str | None = None
    ivr_path: list[str] = field(default_factory=list)
    arrived_at: float = field(default_factory=time.time)
    customer: dict[str, Any] | None = None  # filled by prepare()


@dataclass(slots=True)
class PopStats:
    pushed: int = 0
    acked: int = 0
    ack_timeouts: int = 0
    fallback_pushes: int = 0  # AgentCalled without a pre-dial pop (no b(), or bus down)
    bus_skips: int = 0  # pre-dial steps that rang at once: the bus was down or stalled
    ack_waits_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        waits = sorted(self.ack_waits_ms)
        p = (lambda q: round(waits[min(len(waits) - 1, int(q * len(waits)))], 2)) if waits else None
        return {
            "pushed": self.pushed,
            "acked": self.acked,
            "ack_timeouts": self.ack_timeouts,
            "fallback_pushes": self.fallback_pushes,
            "bus_skips": self.bus_skips,
            "ack_wait_ms_p50": p(0.5) if p else None,
            "ack_wait_ms_p99": p(0.99) if p else None,
        }


class PopPublisher:
    def __init__(
        self, bus: Bus, load_customer: CustomerLoader | None = None, *, ack_timeout: float = 0.5
    ) -> None:
        self.bus = bus
        self.load_customer = load_customer
        self.ack_timeout = ack_timeout
        self.stats = PopStats()
        self._contexts: OrderedDict[str, CallContext] = OrderedDict()
        self._pushed: set[tuple[str, str]] = set()

    # -- identification -------------------------------------------------------------
    async def prepare(self, context: CallContext) -> None:
        """Remember the caller and load the customer record now, before any agent rings."""
        if context.customer_id is not None and self.load_customer is not None:
            try:
                context.customer = await self.load_customer(context.customer_id)
            except Exception as exc:
                log.warning(
                    "linkedid=%s customer load failed: %s", context.linkedid, type(exc).__name__
                )
        self._contexts[context.linkedid] = context
        self._contexts.move_to_end(context.linkedid)
        while len(self._contexts) > MAX_REMEMBERED:
            self._contexts.popitem(last=False)

    def context(self, linkedid: str) -> CallContext:
        return self._contexts.get(linkedid) or CallContext(linkedid=linkedid)

    def routed(
        self, linkedid: str, *, dialect: str, queue: str | None, chosen_at_menu: bool
    ) -> None:
        """Note the routing decision on the prepared pop: the page shows the dialect and
        queue, and a dialect the caller chose at the menu joins the IVR path. A call never
        prepared (identify did not run) keeps no context."""
        context = self._contexts.get(linkedid)
        if context is None:
            return
        context.dialect, context.queue = dialect, queue
        if chosen_at_menu:
            context.ivr_path.append(f"dialect:{dialect}")

    def forget(self, linkedid: str) -> None:
        self._contexts.pop(linkedid, None)
        self._pushed = {k for k in self._pushed if k[0] != linkedid}

    def payload(self, linkedid: str, queue: str | None = None) -> dict[str, Any]:
        c = self.context(linkedid)
        return {
            "type": str(PushType.SCREENPOP),
            "linkedid": linkedid,
            "caller_number": c.caller_number,
            "caller_e164": c.caller_e164,
            "caller_name": c.caller_name,
            "customer": c.customer,
            "candidates": c.candidates if c.customer is None else [],
            "dialect": c.dialect,
            "queue": queue or c.queue,
            "wait_seconds": round(max(0.0, time.time() - c.arrived_at), 1),
            "ivr_path": c.ivr_path,
            "pushed_at": time.time(),
        }

    # -- the pre-dial step -------------------------------------------------------------
    async def pop_and_wait(self, linkedid: str, agent: str, queue: str | None = None) -> bool:
        """Push the pop to ``agent`` and wait for its page's ack (bounded). True if acked.

        The caller's phone waits on this, so the bus never holds it longer than the ack
        timeout: a bus known to be down (``Bus.available``) is skipped at once, and one
        that stalls is given up at the deadline. The pop is then left to the AMI
        ``AgentCalled`` fallback (:meth:`publish`), which sees it was never pushed here.
        """
        if not self.bus.available:
            self.stats.bus_skips += 1
            log.info("linkedid=%s agent=%s bus down; ringing at once", linkedid, agent)
            return False
        stream = ack_stream(linkedid)
        started = time.perf_counter()
        deadline = started + self.ack_timeout
        try:
            async with asyncio.timeout(max(self.ack_timeout, MIN_PUSH_BUDGET)):
                cursor = await self.bus.last_id(stream)
                await self.bus.publish(f"agent:{agent}", self.payload(linkedid, queue))
                self._pushed.add((linkedid, agent))
                self.stats.pushed += 1
                while (remaining := deadline - time.perf_counter()) > 0:
                    block_ms = max(1, int(remaining * 1000))
                    for message in await self.bus.read(stream, cursor, block_ms=block_ms):
                        cursor = message.id
                        if message.data.get("agent") == agent:
                            self.stats.acked += 1
                            self.stats.ack_waits_ms.append((time.perf_counter() - started) * 1000)
                            del self.stats.ack_waits_ms[:-10_000]
                            return True
        except TimeoutError:
            pass  # the bus stalled: counted below, as not pushed or not acknowledged
        except Exception as exc:  # the bus failed: ring now, AgentCalled pops later
            self.stats.bus_skips += 1
            log.warning(
                "linkedid=%s agent=%s pre-dial pop failed (%s); ringing at once",
                linkedid,
                agent,
                type(exc).__name__,
            )
            return False
        if (linkedid, agent) not in self._pushed:
            self.stats.bus_skips += 1
            log.warning("linkedid=%s agent=%s bus stalled; ringing at once", linkedid, agent)
            return False
        self.stats.ack_timeouts += 1
        log.info(
            "linkedid=%s agent=%s pop not acknowledged in %.0f ms; ringing anyway",
            linkedid,
            agent,
            self.ack_timeout * 1000,
        )
        return False

    # -- follow-ups from AMI -------------------------------------------------------------
    async def publish(self, push: Push) -> None:
        if push.type is PushType.SCREENPOP:
            if (push.linkedid, push.agent) in self._pushed:
                return  # the pre-dial step already popped it
            self.stats.fallback_pushes += 1
            self._pushed.add((push.linkedid, push.agent))
            await self.bus.publish(push.stream, self.payload(push.linkedid, push.data.get("queue")))
            return
        await self.bus.publish(push.stream, push.message())
        if push.type is PushType.ENDED:
            self.forget(push.linkedid)


class PushQueue:
    """Publishes pushes in the order the AMI consumer produced them, off its path."""

    def __init__(self, publisher: PopPublisher) -> None:
        self.publisher = publisher
        self._queue: asyncio.Queue[Push | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def put(self, push: Push) -> None:
        self._queue.put_nowait(push)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pop-pushes")

    async def _run(self) -> None:
        while (push := await self._queue.get()) is not None:
            try:
                await self.publisher.publish(push)
            except Exception as exc:
                log.warning(
                    "push %s to agent %s failed: %s", push.type, push.agent, type(exc).__name__
                )

    async def stop(self) -> None:
        if self._task is not None:
            self._queue.put_nowait(None)
            await asyncio.wait_for(self._task, timeout=5)
