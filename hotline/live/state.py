"""Live queue and agent state for the supervisor wallboard (sans-I/O, the h11 pattern).

:class:`LiveState` is fed the bridge's AMI events one at a time, in stream order, on the
bridge's single consumer, and answers each with the small :data:`Change` records the
supervisor WebSocket pushes. It never reads a socket or a clock: counters are dated by
``event.time`` (Asterisk's ``Timestamp``), and the only "now" it knows is the one the
caller passes to :meth:`LiveState.snapshot` and :meth:`LiveState.tick`. Replaying a
recorded stream therefore gives exactly the numbers the live run gave.

The metrics are those of docs/wallboard.md, and they must agree with the call log
(``calls/tracker``) and with Asterisk's own ``queue_log`` (``live/queue_log``): an
unanswered exit is settled by the rule all three share (:mod:`hotline.calls.outcomes`).
"Today" is the calendar day in ``timezone`` of the event that settles a call (answer,
abandon, …), so a wallboard in Shanghai resets at local midnight whatever the host's
zone is.

This module is the facade: it owns the clock, the day and the link, and dispatches each
event, as the typed value the call tracker reads too (:mod:`hotline.ami.typed`, parsed
once per event), to the part that owns its concern: waiting callers, exits and outcome
counters (:mod:`~hotline.live.queues`), agents (:mod:`~hotline.live.members`), the ``QueueStatus``
rebuild (:mod:`~hotline.live.sweep`) and the views (:mod:`~hotline.live.views`). The
change values (:mod:`~hotline.live.changes`) and the settings and enums
(:mod:`~hotline.live.model`) are re-exported here. Garbage never raises: events that
cannot be used are skipped and counted in :attr:`LiveState.stats`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from hotline.ami.events import AMIEvent
from hotline.ami.typed import (
    AgentCalled,
    AgentComplete,
    AgentConnect,
    AgentRingNoAnswer,
    Hangup,
    HotlineDisconnected,
    HotlineResync,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueMemberAdded,
    QueueMemberPause,
    QueueMemberRemoved,
    QueueMemberStatus,
    QueueResult,
    TypedEvent,
)
from hotline.live import sweep, views
from hotline.live.changes import (
    AbandonedCaller,
    AgentUpdated,
    CallerAbandoned,
    CallerLeft,
    CallerWaiting,
    Change,
    LinkChanged,
    QueueUpdated,
    StateReset,
)
from hotline.live.members import Roster
from hotline.live.model import (
    COUNTED_OUTCOMES,
    AgentState,
    Counters,
    QueueSettings,
    SkipReason,
)
from hotline.live.queues import QueueBook

__all__ = [
    "COUNTED_OUTCOMES",
    "AbandonedCaller",
    "AgentState",
    "AgentUpdated",
    "CallerAbandoned",
    "CallerLeft",
    "CallerWaiting",
    "Change",
    "LinkChanged",
    "LiveState",
    "QueueSettings",
    "QueueUpdated",
    "SkipReason",
    "StateReset",
]

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=TypedEvent)
_Handler = Callable[[Any, float, list[Change]], None]


def _route(
    cls: type[_E], handler: Callable[[_E, float, list[Change]], None]
) -> tuple[type[TypedEvent], _Handler]:
    """One dispatch entry; the type variable checks that the handler takes ``cls``."""
    return cls, handler


class LiveState:
    """Queues, waiting callers and agents as they are now, plus today's figures.

    ``feed`` never raises and returns the changes to push (usually one to three).
    ``snapshot(now)`` is pure: it may be called from another coroutine between events.
    """

    def __init__(
        self,
        *,
        queues: Mapping[str, QueueSettings] | None = None,
        default: QueueSettings | None = None,
        short_abandon_seconds: float = 5.0,
        timezone: str = "Asia/Shanghai",
        wrapup_pause_reasons: Iterable[str] = ("wrapup", "wrap-up", "wrap up", "acw"),
    ) -> None:
        self.timezone = ZoneInfo(timezone)
        self.connected = True
        self._counters = Counters()
        self._book = QueueBook(
            self._counters,
            configured=dict(queues or {}),
            default=default or QueueSettings(),
            short_abandon_seconds=short_abandon_seconds,
        )
        self._roster = Roster(self._counters, self._book, wrapup_pause_reasons=wrapup_pause_reasons)
        self._clock = 0.0  # the latest event time seen
        self._day_start = math.inf
        self._day_end = -math.inf
        self._day = ""
        self._events = 0
        book, roster = self._book, self._roster
        # One dispatch table, keyed by the typed event (hotline.ami.typed) each handler takes.
        self._handlers: dict[type[TypedEvent], _Handler] = dict(
            [
                _route(QueueCallerJoin, book.on_join),
                _route(QueueCallerAbandon, book.on_abandon),
                _route(QueueCallerLeave, book.on_leave),
                _route(AgentCalled, roster.on_agent_called),
                _route(AgentRingNoAnswer, roster.on_ring_no_answer),
                _route(AgentConnect, roster.on_connect),
                _route(AgentComplete, roster.on_complete),
                _route(QueueMemberStatus, roster.on_member),
                _route(QueueMemberAdded, roster.on_member),
                _route(QueueMemberPause, roster.on_member),
                _route(QueueMemberRemoved, roster.on_member_removed),
                _route(Hangup, book.on_hangup),
                _route(QueueResult, book.on_queue_result),
                _route(HotlineResync, self._on_resync),
                _route(HotlineDisconnected, self._on_disconnected),
            ]
        )
        self._names = frozenset(cls.EVENT for cls in self._handlers)

    # -- settings -------------------------------------------------------------------

    @property
    def default(self) -> QueueSettings:
        return self._book.default

    @property
    def configured(self) -> Mapping[str, QueueSettings]:
        return self._book.configured

    @property
    def short_abandon_seconds(self) -> float:
        return self._book.short_abandon_seconds

    @property
    def wrapup_pause_reasons(self) -> frozenset[str]:
        return self._roster.wrapup_pause_reasons

    # -- public API -----------------------------------------------------------------

    @property
    def handled_events(self) -> frozenset[str]:
        return self._names

    def feed(self, event: AMIEvent) -> list[Change]:
        """Apply one event; return what changed, each change once.

        Any event of a handled type moves the clock and may roll the day over, a
        ``UserEvent`` of a kind nobody handles (``IvrStep``…) included.
        """
        self._events += 1
        if event.name not in self._names:
            return []
        out: list[Change] = []
        try:
            typed = event.typed  # its time is the event's, already read
            t = self._time(event.time if typed is None else typed.time)
            self._roll(t, out)
            handler = None if typed is None else self._handlers.get(type(typed))
            if handler is not None:
                handler(typed, t, out)
        except Exception:  # a bug here must not stop the bridge's consumer
            log.exception("live state failed on %s", event.name)
            self._counters.skip(SkipReason.INTERNAL_ERROR)
        return out

    def tick(self, now: float) -> list[Change]:
        """Apply the passage of time: wrap-up windows ending, the day rolling over.

        Asterisk sends no event for either, so the consumer calls this about once a second.
        """
        out: list[Change] = []
        if not math.isfinite(now):
            return out
        self._roll(now, out)
        self._roster.tick(now, out)
        return out

    def apply_queue_status(
        self, items: Iterable[AMIEvent], now: float, *, complete: bool = True
    ) -> list[Change]:
        """Rebuild waiting callers and members from a ``QueueStatus`` reply (mark and sweep).

        Callers and members of a listed queue that the reply does not list are dropped
        without counting an outcome; with ``complete`` (an unfiltered QueueStatus) queues
        absent from the reply are swept too. See :mod:`hotline.live.sweep`.
        """
        out: list[Change] = [StateReset("queue_status")]
        try:
            sweep.apply_queue_status(self._roster, list(items), now, complete)
        except Exception:
            log.exception("live state failed on a QueueStatus reply")
            self._counters.skip(SkipReason.INTERNAL_ERROR)
        return out

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything, JSON-ready. Ratios are None (not 0) when nothing was counted yet."""
        fresh = now < self._day_end
        return {
            "at": now,
            "day": self._day if fresh else self._day_of(now)[0],
            "timezone": str(self.timezone),
            "connected": self.connected,
            "queues": {name: self.queue_view(name, now) for name in sorted(self._book.queues)},
            "agents": {i: self.agent_view(i, now) for i in sorted(self._roster.agents)},
            "abandoned": [a.as_dict() for a in reversed(self._book.abandoned)] if fresh else [],
            "stats": self.stats,
        }

    def queue_view(self, name: str, now: float) -> dict[str, Any] | None:
        return views.queue_view(self._roster, name, now, fresh=now < self._day_end)

    def agent_view(self, interface: str, now: float) -> dict[str, Any] | None:
        return views.agent_view(self._roster, interface, now, fresh=now < self._day_end)

    @property
    def stats(self) -> dict[str, int]:
        queues = self._book.queues
        return {
            "events": self._events,
            **self._counters.counts,
            "queues": len(queues),
            "agents": len(self._roster.agents),
            "waiting": sum(len(q.callers) for q in queues.values()),
            "pending_exits": len(self._book.exits),
        }

    # -- time -----------------------------------------------------------------------

    def _time(self, t: float) -> float:
        if not (math.isfinite(t) and t > 0):
            return self._clock  # no usable stamp: as late as the latest we saw
        if t > self._clock:
            self._clock = t
        return t

    def _day_of(self, t: float) -> tuple[str, float, float]:
        local = datetime.fromtimestamp(t, self.timezone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=1, hours=2)).replace(hour=0)  # DST-proof next midnight
        return start.date().isoformat(), start.timestamp(), end.timestamp()

    def _roll(self, t: float, out: list[Change]) -> None:
        """Start a new day when ``t`` passes midnight; late stamps never roll back."""
        if t < self._day_end or t <= 0:
            return
        first = self._day_end == -math.inf
        self._day, self._day_start, self._day_end = self._day_of(t)
        if first:
            return
        self._book.new_day()
        self._roster.new_day()
        out.append(StateReset("day"))

    # -- the link -------------------------------------------------------------------

    def _on_resync(self, event: HotlineResync, t: float, out: list[Change]) -> None:
        """``HotlineResync``: callers whose channel is gone hung up while we were away.

        They are counted as the tracker closes them (abandoned, or short), so the
        wallboard keeps agreeing with the call log. A resync without ``Uniqueids`` is
        refused: reading it as "nothing alive" would abandon every waiting caller.
        """
        if event.alive is None:
            return self._counters.skip(SkipReason.BAD_FIELD)
        self._counters.counts["resyncs"] += 1
        self._book.gone(event.alive, t, out)
        self.connected = True
        out.append(LinkChanged(True))
        out.append(StateReset("resync"))

    def _on_disconnected(self, event: HotlineDisconnected, t: float, out: list[Change]) -> None:
        """Keep everything: it is stale, not wrong, until the resync reconciles it."""
        self._counters.counts["disconnects"] += 1
        self.connected = False
        out.append(LinkChanged(False))
