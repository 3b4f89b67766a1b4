"""Live queue and agent state for the supervisor wallboard (sans-I/O, the h11 pattern).

:class:`LiveState` is fed the bridge's AMI events one at a time, in stream order, on the
bridge's single consumer, and answers each with the small :data:`Change` records the
supervisor WebSocket pushes. It never reads a socket or a clock: counters are dated by
``event.time`` (Asterisk's ``Timestamp``), and the only "now" it knows is the one the
caller passes to :meth:`LiveState.snapshot` and :meth:`LiveState.tick`. Replaying a
recorded stream therefore gives exactly the numbers the live run gave.

The metrics are DESIGN §4's, and they must agree with the call log (``calls/tracker``)
and with Asterisk's own ``queue_log`` (``live/queue_log``), so a few rules matter:

* ``QueueCallerAbandon`` is *not* an abandon: Asterisk raises it for timeouts,
  leave-empty and withdraw too. A caller who leaves a queue unanswered is held as an
  *exit* until something says why: the dialplan's ``UserEvent(QueueResult)`` status
  (TIMEOUT → timeout, FULL/LEAVEEMPTY/… → overflow, as the tracker reads it), a join to
  another queue (overflow), or the caller leg hanging up (abandon). An exit resolved by a
  hang-up with a wait under ``short_abandon_seconds`` is a short abandon.
* Short abandons are counted apart and kept out of the abandon rate *and* out of SL2
  (they are not "abandoned" calls in any ratio; they are usually misdials).
* "Today" is the calendar day in ``timezone`` of the event that settles a call (answer,
  abandon, …), so a wallboard in Shanghai resets at local midnight whatever the host's
  zone is.

Per-agent state is derived, not stored as a transition table: Asterisk reports device
state, ``InCall`` and per-queue pause separately and not always in the same order, so
the state is recomputed from those facts after every event (see :func:`_derive`).
Garbage never raises: events that cannot be used are skipped and counted in
:attr:`LiveState.stats`.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from hotline.ami.events import AMIEvent
from hotline.calls.records import Outcome
from hotline.calls.tracker import OVERFLOW_STATUSES

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

# The per-queue outcome counters, named as the call log names outcomes so that the
# wallboard, the call log and queue_log can be compared key by key.
COUNTED_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.ANSWERED,
    Outcome.ABANDONED,
    Outcome.SHORT_ABANDONED,
    Outcome.TIMEOUT,
    Outcome.OVERFLOW,
)
_GARBAGE = frozenset({"", "<unknown>", "<null>", "(null)", "<none>", "unknown"})
_NEVER_JOINED = frozenset({"FULL", "JOINEMPTY", "JOINUNAVAIL"})  # QueueResult with no join
_MAX_EXITS = 10_000  # callers out of a queue whose fate is not known yet
_MAX_ABANDONED = 1_000  # call-back list entries kept per day

# Asterisk device states (``enum ast_device_state``) as QueueMemberStatus reports them.
_DEV_UNKNOWN, _DEV_NOT_INUSE, _DEV_INUSE, _DEV_BUSY = 0, 1, 2, 3
_DEV_INVALID, _DEV_UNAVAILABLE, _DEV_RINGING, _DEV_RINGINUSE, _DEV_ONHOLD = 4, 5, 6, 7, 8
_DEV_ON_CALL = frozenset({_DEV_INUSE, _DEV_BUSY, _DEV_RINGINUSE, _DEV_ONHOLD})
_DEV_OFFLINE = frozenset({_DEV_INVALID, _DEV_UNAVAILABLE})


class AgentState(enum.StrEnum):
    """What a supervisor sees for an agent, most urgent first."""

    ON_CALL = "on_call"
    RINGING = "ringing"
    UNAVAILABLE = "unavailable"  # the phone is unregistered or invalid
    PAUSED = "paused"  # in every one of its queues; ``reason`` says why
    WRAP_UP = "wrap_up"  # after-call work: Asterisk's wrapuptime, or a wrap-up pause
    AVAILABLE = "available"
    LOGGED_OUT = "logged_out"  # in no queue any more; kept for today's figures


class SkipReason(enum.StrEnum):
    NO_QUEUE = "no_queue"
    NO_UNIQUEID = "no_uniqueid"
    NO_MEMBER = "no_member"
    UNKNOWN_CALLER = "unknown_caller"  # left a queue we never saw it join
    DUPLICATE = "duplicate"
    BAD_FIELD = "bad_field"
    OVERFLOWED_EXITS = "overflowed_exits"  # the unresolved-exit table was full
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Per-queue targets. ``wrapup_seconds`` is used when the member reports none."""

    service_level_seconds: float = 20.0
    target: float = 0.80
    wrapup_seconds: float = 0.0


# -- change records ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueUpdated:
    """A queue's figures changed: push ``queue_view(queue, now)``."""

    kind: ClassVar[str] = "queue"
    queue: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "queue": self.queue}


@dataclass(frozen=True, slots=True)
class AgentUpdated:
    """An agent's state or figures changed: push ``agent_view(interface, now)``."""

    kind: ClassVar[str] = "agent"
    interface: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "interface": self.interface}


@dataclass(frozen=True, slots=True)
class CallerWaiting:
    kind: ClassVar[str] = "caller.waiting"
    queue: str
    uniqueid: str
    position: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "queue": self.queue,
            "uniqueid": self.uniqueid,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class CallerLeft:
    """The caller is no longer waiting (answered, gone, or swept by a resync)."""

    kind: ClassVar[str] = "caller.left"
    queue: str
    uniqueid: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "queue": self.queue, "uniqueid": self.uniqueid}


@dataclass(frozen=True, slots=True)
class AbandonedCaller:
    """One entry of today's call-back list (real abandons only, not short ones)."""

    queue: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    customer_id: str | None
    joined_at: float | None
    abandoned_at: float
    wait: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "customer_id": self.customer_id,
            "joined_at": self.joined_at,
            "abandoned_at": self.abandoned_at,
            "wait": self.wait,
        }


@dataclass(frozen=True, slots=True)
class CallerAbandoned:
    kind: ClassVar[str] = "abandoned"
    caller: AbandonedCaller

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.caller.as_dict()}


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The AMI link dropped (figures freeze and may be stale) or came back."""

    kind: ClassVar[str] = "link"
    connected: bool

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": self.connected}


@dataclass(frozen=True, slots=True)
class StateReset:
    """Many things changed at once (``day``, ``resync``, ``queue_status``): push a snapshot."""

    kind: ClassVar[str] = "reset"
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason}


Change = (
    QueueUpdated
    | AgentUpdated
    | CallerWaiting
    | CallerLeft
    | CallerAbandoned
    | LinkChanged
    | StateReset
)


# -- internal state ---------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    """Counters over a period (today, or the process lifetime for Prometheus)."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_OUTCOMES, 0))
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    answered_wait: float = 0.0  # sum of waits of answered calls (ASA numerator)
    handled: int = 0  # AgentComplete count (AHT denominator)
    talk: float = 0.0  # AgentConnect → AgentComplete, customer hold included
    wrapup: float = 0.0


@dataclass(slots=True)
class _Caller:
    uniqueid: str
    linkedid: str
    queue: str
    position: int
    joined_at: float | None  # None when adopted from QueueStatus without a Wait
    number: str
    name: str
    customer_id: str | None


@dataclass(slots=True)
class _Exit:
    """A caller out of a queue unanswered (or about to be answered): fate pending."""

    caller: _Caller
    left_at: float
    hold_time: float | None  # QueueCallerAbandon HoldTime (s), if it came
    abandon_seen: bool = False
    leave_seen: bool = False


@dataclass(slots=True)
class _Queue:
    name: str
    settings: QueueSettings
    callers: dict[str, _Caller] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    today: _Tally = field(default_factory=_Tally)
    total: _Tally = field(default_factory=_Tally)


@dataclass(slots=True)
class _Membership:
    paused: bool = False
    reason: str = ""
    wrapup: float = 0.0  # member Wrapuptime (s); 0 = the queue's


@dataclass(slots=True)
class _Agent:
    interface: str
    name: str
    since: float
    state: AgentState = AgentState.LOGGED_OUT
    device: int = _DEV_UNKNOWN
    in_call: bool = False
    queues: dict[str, _Membership] = field(default_factory=dict)
    call_queue: str | None = None  # the queue of the call in progress
    call_uniqueid: str | None = None
    answered_at: float | None = None
    wrapup_until: float | None = None  # end of Asterisk's wrap-up window
    after_call_queue: str | None = None  # wrap-up time is charged to this queue
    today: _Tally = field(default_factory=_Tally)
    total: _Tally = field(default_factory=_Tally)


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and abs(number) < 1e12 else None


def _int(value: str | None, default: int = 0) -> int:
    number = _number(value)
    return int(number) if number is not None else default


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


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
        self.default = default or QueueSettings()
        self.configured = dict(queues or {})
        self.short_abandon_seconds = short_abandon_seconds
        self.timezone = ZoneInfo(timezone)
        self.wrapup_pause_reasons = frozenset(r.lower() for r in wrapup_pause_reasons)
        self.connected = True
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._exits: dict[str, _Exit] = {}
        self._abandoned: list[AbandonedCaller] = []
        self._clock = 0.0  # the latest event time seen
        self._day_start = math.inf
        self._day_end = -math.inf
        self._day = ""
        self._events = 0
        self._counts: dict[str, int] = {"skipped": 0, "resyncs": 0, "disconnects": 0}
        self._handlers = {
            "QueueCallerJoin": self._on_join,
            "QueueCallerAbandon": self._on_abandon,
            "QueueCallerLeave": self._on_leave,
            "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_ring_no_answer,
            "AgentConnect": self._on_connect,
            "AgentComplete": self._on_complete,
            "QueueMemberStatus": self._on_member,
            "QueueMemberAdded": self._on_member,
            "QueueMemberPause": self._on_member,
            "QueueMemberRemoved": self._on_member_removed,
            "Hangup": self._on_hangup,
            "UserEvent": self._on_user_event,
            "HotlineResync": self._on_resync,
            "HotlineDisconnected": self._on_disconnected,
        }

    # -- public API -----------------------------------------------------------------

    @property
    def handled_events(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def feed(self, event: AMIEvent) -> list[Change]:
        """Apply one event; return what changed, each change once."""
        self._events += 1
        handler = self._handlers.get(event.name)
        if handler is None:
            return []
        out: list[Change] = []
        try:
            t = self._time(event)
            self._roll(t, out)
            handler(event, t, out)
        except Exception:  # a bug here must not stop the bridge's consumer
            log.exception("live state failed on %s", event.name)
            self._skip(SkipReason.INTERNAL_ERROR)
        return out

    def tick(self, now: float) -> list[Change]:
        """Apply the passage of time: wrap-up windows ending, the day rolling over.

        Asterisk sends no event for either, so the consumer calls this about once a second.
        """
        out: list[Change] = []
        if not math.isfinite(now):
            return out
        self._roll(now, out)
        for agent in self._agents.values():
            if agent.wrapup_until is not None and agent.wrapup_until <= now:
                self._refresh(agent, now, out)
        return out

    def apply_queue_status(
        self, items: Iterable[AMIEvent], now: float, *, complete: bool = True
    ) -> list[Change]:
        """Rebuild waiting callers and members from a ``QueueStatus`` reply (mark and sweep).

        Callers and members of a listed queue that the reply does not list are dropped
        without counting an outcome: what happened to them while we were away is for the
        call log's resync to decide. With ``complete`` (an unfiltered QueueStatus) queues
        absent from the reply are swept too. Today's counters are kept: Asterisk's
        ``Completed``/``Abandoned`` are since its last reset, not per day.
        """
        out: list[Change] = [StateReset("queue_status")]
        try:
            self._apply_queue_status(list(items), now, complete)
        except Exception:
            log.exception("live state failed on a QueueStatus reply")
            self._skip(SkipReason.INTERNAL_ERROR)
        return out

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything, JSON-ready. Ratios are None (not 0) when nothing was counted yet."""
        return {
            "at": now,
            "day": self._day if now < self._day_end else self._day_of(now)[0],
            "timezone": str(self.timezone),
            "connected": self.connected,
            "queues": {name: self.queue_view(name, now) for name in sorted(self._queues)},
            "agents": {i: self.agent_view(i, now) for i in sorted(self._agents)},
            "abandoned": (
                [a.as_dict() for a in reversed(self._abandoned)] if now < self._day_end else []
            ),
            "stats": self.stats,
        }

    def queue_view(self, name: str, now: float) -> dict[str, Any] | None:
        queue = self._queues.get(name)
        if queue is None:
            return None
        settings = queue.settings
        today = queue.today if now < self._day_end else _Tally()
        counts = today.counts
        answered = counts[Outcome.ANSWERED]
        abandoned = counts[Outcome.ABANDONED]
        offered = answered + abandoned + counts[Outcome.TIMEOUT] + counts[Outcome.OVERFLOW]
        waiting = sorted(queue.callers.values(), key=lambda c: c.position)
        waits = [max(0.0, now - c.joined_at) for c in waiting if c.joined_at is not None]
        service_level = _ratio(today.answered_in_sl, answered)
        by_state = dict.fromkeys((str(s) for s in AgentState), 0)
        for interface in queue.members:
            agent = self._agents.get(interface)
            if agent is not None:
                by_state[str(self._effective(agent, now)[0])] += 1
        return {
            "name": name,
            "service_level_seconds": settings.service_level_seconds,
            "target": settings.target,
            "waiting": [
                {
                    "uniqueid": c.uniqueid,
                    "linkedid": c.linkedid,
                    "position": c.position,
                    "wait": None if c.joined_at is None else max(0.0, now - c.joined_at),
                    "caller_number": c.number,
                    "caller_name": c.name,
                    "customer_id": c.customer_id,
                }
                for c in waiting
            ],
            "waiting_count": len(waiting),
            "longest_wait": max(waits, default=0.0),
            "counts": {str(k): v for k, v in counts.items()},
            "answered_within_sl": today.answered_in_sl,
            "abandoned_within_sl": today.abandoned_in_sl,
            "service_level": service_level,
            "service_level2": _ratio(
                today.answered_in_sl + today.abandoned_in_sl, answered + abandoned
            ),
            "meets_target": None if service_level is None else service_level >= settings.target,
            "asa": _ratio(today.answered_wait, answered),
            "handled": today.handled,
            "aht": _ratio(today.talk + today.wrapup, today.handled),
            "abandon_rate": _ratio(abandoned, offered),
            "agents": by_state,
            "totals": _tally_dict(queue.total),
        }

    def agent_view(self, interface: str, now: float) -> dict[str, Any] | None:
        agent = self._agents.get(interface)
        if agent is None:
            return None
        state, since = self._effective(agent, now)
        today = agent.today if now < self._day_end else _Tally()
        return {
            "interface": interface,
            "name": agent.name,
            "state": str(state),
            "reason": self._pause_reason(agent)
            if state in (AgentState.PAUSED, AgentState.WRAP_UP)
            else None,
            "since": since,
            "time_in_state": max(0.0, now - since),
            "queues": sorted(agent.queues),
            "on_call_with": agent.call_uniqueid,
            "handled": today.handled,
            "talk_seconds": today.talk,
            "wrapup_seconds": today.wrapup,
            "aht": _ratio(today.talk + today.wrapup, today.handled),
            "totals": _tally_dict(agent.total),
        }

    @property
    def stats(self) -> dict[str, int]:
        return {
            "events": self._events,
            **self._counts,
            "queues": len(self._queues),
            "agents": len(self._agents),
            "waiting": sum(len(q.callers) for q in self._queues.values()),
            "pending_exits": len(self._exits),
        }

    # -- time -----------------------------------------------------------------------

    def _time(self, event: AMIEvent) -> float:
        t = event.time
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
        for queue in self._queues.values():
            queue.today = _Tally()
        for interface in [i for i, a in self._agents.items() if not a.queues]:
            del self._agents[interface]
        for agent in self._agents.values():
            agent.today = _Tally()
        self._abandoned = []
        out.append(StateReset("day"))

    # -- helpers --------------------------------------------------------------------

    def _skip(self, reason: SkipReason) -> None:
        counts = self._counts
        counts["skipped"] += 1
        key = "skipped." + reason
        counts[key] = counts.get(key, 0) + 1

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            settings = self.configured.get(name, self.default)
            queue = self._queues[name] = _Queue(name, settings)
        return queue

    def _agent(self, interface: str, name: str, t: float) -> _Agent:
        agent = self._agents.get(interface)
        if agent is None:
            agent = self._agents[interface] = _Agent(interface, name or interface, t)
        elif name and name not in _GARBAGE:
            agent.name = name
        return agent

    @staticmethod
    def _emit(out: list[Change], change: Change) -> None:
        if change not in out:
            out.append(change)

    def _record(self, queue: _Queue, outcome: Outcome, wait: float | None) -> None:
        within = wait is not None and wait <= queue.settings.service_level_seconds
        for tally in (queue.today, queue.total):
            tally.counts[outcome] += 1
            if outcome is Outcome.ANSWERED:
                tally.answered_wait += wait or 0.0
                tally.answered_in_sl += within
            elif outcome is Outcome.ABANDONED:
                tally.abandoned_in_sl += within

    # -- callers --------------------------------------------------------------------

    def _remove_caller(self, queue: _Queue, uniqueid: str, out: list[Change]) -> _Caller | None:
        """Take a caller off the waiting list; those behind it move up, as in Asterisk."""
        caller = queue.callers.pop(uniqueid, None)
        if caller is None:
            return None
        for other in queue.callers.values():
            if other.position > caller.position:
                other.position -= 1
        self._emit(out, CallerLeft(queue.name, uniqueid))
        self._emit(out, QueueUpdated(queue.name))
        return caller

    def _on_join(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        headers = event.headers
        name = headers.get("Queue", "")
        uniqueid = headers.get("Uniqueid", "")
        if name in _GARBAGE:
            return self._skip(SkipReason.NO_QUEUE)
        if uniqueid in _GARBAGE:
            return self._skip(SkipReason.NO_UNIQUEID)
        queue = self._queue(name)
        if uniqueid in queue.callers:
            return self._skip(SkipReason.DUPLICATE)
        previous = self._exits.pop(uniqueid, None)
        if previous is not None:  # it left another queue unanswered and came here: overflow
            self._settle(previous, Outcome.OVERFLOW, out)
        position = _int(headers.get("Position"), len(queue.callers) + 1)
        position = max(1, min(position, len(queue.callers) + 1))
        for other in queue.callers.values():
            if other.position >= position:
                other.position += 1
        number = headers.get("CallerIDNum", "")
        caller_name = headers.get("CallerIDName", "")
        queue.callers[uniqueid] = _Caller(
            uniqueid=uniqueid,
            linkedid=headers.get("Linkedid", "") or uniqueid,
            queue=name,
            position=position,
            joined_at=t,
            number="" if number in _GARBAGE else number,
            name="" if caller_name in _GARBAGE else caller_name,
            customer_id=event.var("CUSTOMER_ID") or None,
        )
        out.append(CallerWaiting(name, uniqueid, position))
        self._emit(out, QueueUpdated(name))

    def _leave(self, event: AMIEvent, t: float, out: list[Change], *, abandon: bool) -> None:
        """QueueCallerAbandon or QueueCallerLeave: out of ``Queue``; hold an exit until we
        learn why. Abandon comes first when unanswered, Leave alone when answered."""
        headers = event.headers
        queue = self._queues.get(headers.get("Queue", ""))
        uniqueid = headers.get("Uniqueid", "")
        caller = None if queue is None else self._remove_caller(queue, uniqueid, out)
        exit_ = self._exits.get(uniqueid)
        if caller is None:
            if exit_ is None or queue is None or exit_.caller.queue != queue.name:
                return self._skip(SkipReason.UNKNOWN_CALLER)
        else:
            if len(self._exits) >= _MAX_EXITS:
                del self._exits[next(iter(self._exits))]
                self._skip(SkipReason.OVERFLOWED_EXITS)
            exit_ = self._exits[uniqueid] = _Exit(caller, t, None)
        if abandon:
            if exit_.abandon_seen:
                return self._skip(SkipReason.DUPLICATE)
            exit_.abandon_seen = True
            exit_.hold_time = _number(headers.get("HoldTime"))
        else:
            if exit_.leave_seen:
                return self._skip(SkipReason.DUPLICATE)
            exit_.leave_seen = True

    def _on_abandon(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        self._leave(event, t, out, abandon=True)

    def _on_leave(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        self._leave(event, t, out, abandon=False)

    def _wait(self, exit_: _Exit) -> float | None:
        joined = exit_.caller.joined_at
        if joined is not None:
            return max(0.0, exit_.left_at - joined)
        return exit_.hold_time

    def _settle(self, exit_: _Exit, outcome: Outcome, out: list[Change]) -> None:
        """Count an unanswered exit; a hang-up (ABANDONED) may turn out short."""
        caller = exit_.caller
        queue = self._queue(caller.queue)
        wait = self._wait(exit_)
        if outcome is Outcome.ABANDONED and (wait or 0.0) < self.short_abandon_seconds:
            outcome = Outcome.SHORT_ABANDONED
        self._record(queue, outcome, wait)
        self._emit(out, QueueUpdated(queue.name))
        if outcome is Outcome.ABANDONED:
            entry = AbandonedCaller(
                queue=queue.name,
                uniqueid=caller.uniqueid,
                linkedid=caller.linkedid,
                caller_number=caller.number,
                caller_name=caller.name,
                customer_id=caller.customer_id,
                joined_at=caller.joined_at,
                abandoned_at=exit_.left_at,
                wait=wait or 0.0,
            )
            if len(self._abandoned) >= _MAX_ABANDONED:
                del self._abandoned[0]
            self._abandoned.append(entry)
            out.append(CallerAbandoned(entry))

    def _on_hangup(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        """The caller leg is gone: a pending exit was an abandon (the tracker agrees)."""
        uniqueid = event.headers.get("Uniqueid", "")
        exit_ = self._exits.pop(uniqueid, None)
        if exit_ is not None:
            self._settle(exit_, Outcome.ABANDONED, out)
            return
        for queue in self._queues.values():  # Hangup before the queue's own events
            if uniqueid in queue.callers:
                caller = self._remove_caller(queue, uniqueid, out)
                if caller is not None:
                    self._settle(_Exit(caller, t, None), Outcome.ABANDONED, out)
                return

    def _on_user_event(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        """``UserEvent(QueueResult,Queue: q,Status: ${QUEUESTATUS})`` after ``Queue()``."""
        headers = event.headers
        if headers.get("UserEvent") != "QueueResult":
            return
        status = headers.get("Status", "").strip().upper()
        uniqueid = headers.get("Uniqueid", "")
        name = headers.get("Queue", "").strip()
        if not status or uniqueid in _GARBAGE:
            return self._skip(SkipReason.BAD_FIELD)
        exit_ = self._exits.get(uniqueid)
        if exit_ is not None and name in (exit_.caller.queue, ""):
            if status == "TIMEOUT":
                outcome = Outcome.TIMEOUT
            elif status in OVERFLOW_STATUSES:
                outcome = Outcome.OVERFLOW
            else:
                outcome = Outcome.ABANDONED
            del self._exits[uniqueid]
            self._settle(exit_, outcome, out)
        elif status in _NEVER_JOINED and name not in _GARBAGE:
            queue = self._queue(name)
            self._record(queue, Outcome.OVERFLOW, None)
            self._emit(out, QueueUpdated(name))

    # -- agents ---------------------------------------------------------------------

    def _member_agent(self, event: AMIEvent, t: float, *, member_of: bool = False) -> _Agent | None:
        """The agent an event names; ``member_of``: the event proves it is in ``Queue``
        (AgentCalled/Connect/Complete), which matters when the stream began mid-day."""
        headers = event.headers
        interface = headers.get("Interface") or headers.get("Location") or ""
        if interface in _GARBAGE:
            self._skip(SkipReason.NO_MEMBER)
            return None
        agent = self._agent(interface, headers.get("MemberName") or headers.get("Name", ""), t)
        name = headers.get("Queue", "")
        if member_of and name not in _GARBAGE and name not in agent.queues:
            agent.queues[name] = _Membership()
            self._queue(name).members.add(interface)
        return agent

    def _on_agent_called(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        agent = self._member_agent(event, t, member_of=True)
        if agent is not None:
            agent.device = _DEV_RINGING  # QueueMemberStatus follows and confirms it
            self._refresh(agent, t, out)

    def _on_ring_no_answer(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        agent = self._member_agent(event, t)
        if agent is not None:
            if agent.device == _DEV_RINGING:
                agent.device = _DEV_NOT_INUSE
            self._refresh(agent, t, out)

    def _on_connect(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        headers = event.headers
        name = headers.get("Queue", "")
        uniqueid = headers.get("Uniqueid", "")
        if name in _GARBAGE:
            return self._skip(SkipReason.NO_QUEUE)
        queue = self._queue(name)
        hold = _number(headers.get("HoldTime"))
        exit_ = self._exits.pop(uniqueid, None)
        caller = self._remove_caller(queue, uniqueid, out)  # AgentConnect before Leave
        if exit_ is not None and exit_.caller.queue == name:
            joined = exit_.caller.joined_at
            wait = hold if joined is None else max(0.0, t - joined)
        elif caller is not None and caller.joined_at is not None:
            wait = max(0.0, t - caller.joined_at)
        else:
            wait = hold  # joined before our stream began
        self._record(queue, Outcome.ANSWERED, wait)
        self._emit(out, QueueUpdated(name))
        agent = self._member_agent(event, t, member_of=True)
        if agent is not None:
            agent.call_queue = name
            agent.call_uniqueid = uniqueid or None
            agent.answered_at = t
            agent.after_call_queue = None  # any wrap-up of the previous call is over
            self._refresh(agent, t, out)

    def _on_complete(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        headers = event.headers
        name = headers.get("Queue", "")
        if name in _GARBAGE:
            return self._skip(SkipReason.NO_QUEUE)
        agent = self._member_agent(event, t, member_of=True)
        if agent is None:
            return
        talk_time = _number(headers.get("TalkTime"))
        talk = None
        if agent.answered_at is not None and agent.call_uniqueid in (headers.get("Uniqueid"), None):
            talk = t - agent.answered_at
        # TalkTime is whole seconds; keep the stamps' precision when they agree (tracker rule).
        if talk is None or (talk_time is not None and abs(talk - talk_time) > 1.0):
            talk = talk_time or 0.0
        queue = self._queue(name)
        for tally in (queue.today, queue.total, agent.today, agent.total):
            tally.handled += 1
            tally.talk += talk
        agent.call_queue = agent.call_uniqueid = agent.answered_at = None
        agent.after_call_queue = name
        membership = agent.queues.get(name)
        window = membership.wrapup if membership and membership.wrapup else 0.0
        window = window or queue.settings.wrapup_seconds
        agent.wrapup_until = t + window if window > 0 else None
        self._emit(out, QueueUpdated(name))
        self._emit(out, AgentUpdated(agent.interface))
        self._refresh(agent, t, out)

    def _on_member(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        """QueueMemberStatus/Added/Pause: per-queue membership plus device facts."""
        headers = event.headers
        name = headers.get("Queue", "")
        if name in _GARBAGE:
            return self._skip(SkipReason.NO_QUEUE)
        agent = self._member_agent(event, t)
        if agent is None:
            return
        self._update_member(agent, self._queue(name), headers)
        self._refresh(agent, t, out)
        self._emit(out, QueueUpdated(name))

    def _update_member(self, agent: _Agent, queue: _Queue, headers: Mapping[str, str]) -> None:
        membership = agent.queues.get(queue.name)
        if membership is None:
            membership = agent.queues[queue.name] = _Membership()
        queue.members.add(agent.interface)
        if "Paused" in headers:
            membership.paused = headers["Paused"].strip() == "1"
            membership.reason = headers.get("PausedReason", "").strip()
        if "Wrapuptime" in headers:
            membership.wrapup = float(_int(headers.get("Wrapuptime")))
        if "Status" in headers:
            status = _int(headers.get("Status"), -1)
            if 0 <= status <= _DEV_ONHOLD:
                agent.device = status
            else:
                self._skip(SkipReason.BAD_FIELD)
        if "InCall" in headers:
            agent.in_call = headers["InCall"].strip() == "1"

    def _on_member_removed(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        name = event.headers.get("Queue", "")
        agent = self._member_agent(event, t)
        if agent is None:
            return
        agent.queues.pop(name, None)
        queue = self._queues.get(name)
        if queue is not None:
            queue.members.discard(agent.interface)
            self._emit(out, QueueUpdated(name))
        self._refresh(agent, t, out)

    def _pause_reason(self, agent: _Agent) -> str | None:
        reasons = [m.reason for m in agent.queues.values() if m.paused and m.reason]
        return reasons[0] if reasons else None

    def _derive(self, agent: _Agent, t: float) -> AgentState:
        """The state a supervisor should see, from the facts Asterisk reported."""
        if not agent.queues:
            return AgentState.LOGGED_OUT
        if agent.call_queue is not None or agent.in_call or agent.device in _DEV_ON_CALL:
            return AgentState.ON_CALL
        if agent.device == _DEV_RINGING:
            return AgentState.RINGING
        if agent.device in _DEV_OFFLINE:
            return AgentState.UNAVAILABLE
        if all(m.paused for m in agent.queues.values()):
            reason = (self._pause_reason(agent) or "").lower()
            return AgentState.WRAP_UP if reason in self.wrapup_pause_reasons else AgentState.PAUSED
        if agent.wrapup_until is not None and t < agent.wrapup_until:
            return AgentState.WRAP_UP
        return AgentState.AVAILABLE

    def _effective(self, agent: _Agent, now: float) -> tuple[AgentState, float]:
        """State and since at ``now`` without mutating: a wrap-up window may have ended."""
        if (
            agent.state is AgentState.WRAP_UP
            and agent.wrapup_until is not None
            and agent.wrapup_until <= now
        ):
            state = self._derive(agent, now)
            if state is not AgentState.WRAP_UP:
                return state, max(agent.since, agent.wrapup_until)
        return agent.state, agent.since

    def _refresh(self, agent: _Agent, t: float, out: list[Change]) -> None:
        """Recompute the agent's state; charge a finished wrap-up to AHT."""
        if agent.wrapup_until is not None and agent.wrapup_until <= t:
            end = agent.wrapup_until
            agent.wrapup_until = None
            if agent.state is AgentState.WRAP_UP:
                state = self._derive(agent, t)
                if state is not AgentState.WRAP_UP:  # a wrap-up pause carries on
                    self._change_state(agent, state, max(agent.since, end))
        state = self._derive(agent, t)
        if state is not agent.state:
            self._change_state(agent, state, t)
        self._emit(out, AgentUpdated(agent.interface))

    def _change_state(self, agent: _Agent, state: AgentState, at: float) -> None:
        if agent.state is AgentState.WRAP_UP and agent.after_call_queue is not None:
            spent = max(0.0, at - agent.since)
            queue = self._queues.get(agent.after_call_queue)
            tallies = [agent.today, agent.total]
            if queue is not None:
                tallies += [queue.today, queue.total]
            for tally in tallies:
                tally.wrapup += spent
            agent.after_call_queue = None
        agent.state = state
        agent.since = at

    # -- resync ---------------------------------------------------------------------

    def _on_resync(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        """``HotlineResync``: callers whose channel is gone hung up while we were away.

        They are counted as the tracker closes them (abandoned, or short), so the
        wallboard keeps agreeing with the call log. A resync without ``Uniqueids`` is
        refused: reading it as "nothing alive" would abandon every waiting caller.
        """
        raw = event.headers.get("Uniqueids")
        if raw is None:
            return self._skip(SkipReason.BAD_FIELD)
        self._counts["resyncs"] += 1
        alive = set(raw.split())
        for uniqueid in [u for u in self._exits if u not in alive]:
            self._settle(self._exits.pop(uniqueid), Outcome.ABANDONED, out)
        for queue in self._queues.values():
            for uniqueid in [u for u in queue.callers if u not in alive]:
                caller = self._remove_caller(queue, uniqueid, out)
                if caller is not None:
                    self._settle(_Exit(caller, t, None), Outcome.ABANDONED, out)
        self.connected = True
        out.append(LinkChanged(True))
        out.append(StateReset("resync"))

    def _on_disconnected(self, event: AMIEvent, t: float, out: list[Change]) -> None:
        """Keep everything: it is stale, not wrong, until the resync reconciles it."""
        self._counts["disconnects"] += 1
        self.connected = False
        out.append(LinkChanged(False))

    def _apply_queue_status(self, items: list[AMIEvent], now: float, complete: bool) -> None:
        listed: dict[str, tuple[dict[str, AMIEvent], dict[str, AMIEvent]]] = {}
        for item in items:
            name = item.headers.get("Queue", "")
            if item.name not in ("QueueParams", "QueueMember", "QueueEntry"):
                continue
            if name in _GARBAGE:
                self._skip(SkipReason.NO_QUEUE)
                continue
            members, entries = listed.setdefault(name, ({}, {}))
            queue = self._queue(name)
            if item.name == "QueueParams":
                level = _number(item.headers.get("ServiceLevel"))
                if name not in self.configured and level:
                    queue.settings = QueueSettings(
                        level, self.default.target, self.default.wrapup_seconds
                    )
            elif item.name == "QueueMember":
                interface = item.headers.get("Location") or item.headers.get("Interface") or ""
                if interface in _GARBAGE:
                    self._skip(SkipReason.NO_MEMBER)
                    continue
                members[interface] = item
            else:
                key = item.headers.get("Uniqueid") or item.headers.get("Channel") or ""
                if key in _GARBAGE:
                    self._skip(SkipReason.NO_UNIQUEID)
                    continue
                entries[key] = item
        sweep = self._queues if complete else {n: self._queues[n] for n in listed}
        scratch: list[Change] = []
        for name, queue in sweep.items():
            members, entries = listed.get(name, ({}, {}))
            for uniqueid in [u for u in queue.callers if u not in entries]:
                del queue.callers[uniqueid]
            for key, item in entries.items():
                self._adopt_entry(queue, key, item, now)
            for interface in [i for i in queue.members if i not in members]:
                queue.members.discard(interface)
                agent = self._agents.get(interface)
                if agent is not None:
                    agent.queues.pop(name, None)
            for interface, item in members.items():
                name_ = item.headers.get("Name") or item.headers.get("MemberName", "")
                agent = self._agent(interface, name_, now)
                self._update_member(agent, queue, item.headers)
        for agent in self._agents.values():
            self._refresh(agent, now, scratch)

    def _adopt_entry(self, queue: _Queue, key: str, item: AMIEvent, now: float) -> None:
        headers = item.headers
        position = _int(headers.get("Position"), len(queue.callers) + 1)
        caller = queue.callers.get(key)
        if caller is not None:
            caller.position = position
            return
        wait = _number(headers.get("Wait"))
        number = headers.get("CallerIDNum") or headers.get("CallerID", "")
        caller_name = headers.get("CallerIDName", "")
        queue.callers[key] = _Caller(
            uniqueid=key,
            linkedid=key,  # QueueEntry carries no Linkedid; the caller leg's is its own
            queue=queue.name,
            position=position,
            joined_at=None if wait is None else now - wait,
            number="" if number in _GARBAGE else number,
            name="" if caller_name in _GARBAGE else caller_name,
            customer_id=None,
        )


def _tally_dict(tally: _Tally) -> dict[str, Any]:
    return {
        "counts": {str(k): v for k, v in tally.counts.items()},
        "answered_within_sl": tally.answered_in_sl,
        "abandoned_within_sl": tally.abandoned_in_sl,
        "answered_wait_seconds": tally.answered_wait,
        "handled": tally.handled,
        "talk_seconds": tally.talk,
        "wrapup_seconds": tally.wrapup,
    }
