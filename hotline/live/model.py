"""The live state's records: settings, tallies, waiting callers, pending exits, agents.

Plain mutable records shared by the parts of :class:`~hotline.live.state.LiveState`
(:mod:`~hotline.live.queues`, :mod:`~hotline.live.members`, :mod:`~hotline.live.sweep`,
:mod:`~hotline.live.views`); none of them reads an event. The values that leave the
package (:class:`QueueSettings`, :class:`AgentState`, :class:`SkipReason`) are re-exported
by :mod:`hotline.live.state`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from hotline.calls.records import Outcome
from hotline.types import NO_VALUE

__all__ = [
    "COUNTED_OUTCOMES",
    "GARBAGE",
    "Agent",
    "AgentState",
    "Caller",
    "Counters",
    "Device",
    "Exit",
    "Membership",
    "Queue",
    "QueueSettings",
    "SkipReason",
    "Tally",
    "ratio",
]

# The per-queue outcome counters, named as the call log names outcomes so that the
# wallboard, the call log and queue_log can be compared key by key.
COUNTED_OUTCOMES: tuple[Outcome, ...] = (
    Outcome.ANSWERED,
    Outcome.ABANDONED,
    Outcome.SHORT_ABANDONED,
    Outcome.TIMEOUT,
    Outcome.OVERFLOW,
)

# What Asterisk writes where it has no value, and "unknown": never a queue, channel or
# member name. Wider than hotline.ami.typed.known(), which keeps "unknown".
GARBAGE: Final = NO_VALUE | {"unknown"}


class AgentState(enum.StrEnum):
    """What a supervisor sees for an agent, most urgent first."""

    ON_CALL = "on_call"
    RINGING = "ringing"
    UNAVAILABLE = "unavailable"  # the phone is unregistered or invalid
    PAUSED = "paused"  # in every one of its queues; ``reason`` says why
    WRAP_UP = "wrap_up"  # after-call work: Asterisk's wrapuptime, or a wrap-up pause
    AVAILABLE = "available"
    LOGGED_OUT = "logged_out"  # in no queue any more; kept for today's figures


class Device(enum.IntEnum):
    """Asterisk's device states (``enum ast_device_state``), as QueueMemberStatus numbers them."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


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


class Counters:
    """The counters ``LiveState.stats`` reports, shared by every part that skips events.

    Skips are counted twice: in ``skipped`` and in ``skipped.<reason>``, the latter only
    once one happened (so a clean replay's stats stay short).
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"skipped": 0, "resyncs": 0, "disconnects": 0}

    def skip(self, reason: SkipReason) -> None:
        counts = self.counts
        counts["skipped"] += 1
        key = "skipped." + reason
        counts[key] = counts.get(key, 0) + 1


@dataclass(slots=True)
class Tally:
    """Counters over a period (today, or the process lifetime for Prometheus)."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_OUTCOMES, 0))
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    answered_wait: float = 0.0  # sum of waits of answered calls (ASA numerator)
    handled: int = 0  # AgentComplete count (AHT denominator)
    talk: float = 0.0  # AgentConnect → AgentComplete, customer hold included
    wrapup: float = 0.0


@dataclass(slots=True)
class Caller:
    uniqueid: str
    linkedid: str
    queue: str
    position: int
    joined_at: float | None  # None when adopted from QueueStatus without a Wait
    number: str
    name: str
    customer_id: str | None


@dataclass(slots=True)
class Exit:
    """A caller out of a queue unanswered (or about to be answered): fate pending."""

    caller: Caller
    left_at: float
    hold_time: float | None  # QueueCallerAbandon HoldTime (s), if it came
    abandon_seen: bool = False
    leave_seen: bool = False

    @property
    def wait(self) -> float | None:
        """Join to exit by our stamps; Asterisk's HoldTime when the join was not seen."""
        joined = self.caller.joined_at
        if joined is not None:
            return max(0.0, self.left_at - joined)
        return self.hold_time


@dataclass(slots=True)
class Queue:
    name: str
    settings: QueueSettings
    callers: dict[str, Caller] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)
    today: Tally = field(default_factory=Tally)
    total: Tally = field(default_factory=Tally)


@dataclass(slots=True)
class Membership:
    paused: bool = False
    reason: str = ""
    wrapup: float = 0.0  # member Wrapuptime (s); 0 = the queue's


@dataclass(slots=True)
class Agent:
    interface: str
    name: str
    since: float
    state: AgentState = AgentState.LOGGED_OUT
    device: Device = Device.UNKNOWN
    in_call: bool = False
    queues: dict[str, Membership] = field(default_factory=dict)
    call_queue: str | None = None  # the queue of the call in progress
    call_uniqueid: str | None = None
    answered_at: float | None = None
    wrapup_until: float | None = None  # end of Asterisk's wrap-up window
    after_call_queue: str | None = None  # wrap-up time is charged to this queue
    today: Tally = field(default_factory=Tally)
    total: Tally = field(default_factory=Tally)


def ratio(num: float, den: float) -> float | None:
    """A rate, or None (not 0) when nothing was counted yet."""
    return num / den if den else None
