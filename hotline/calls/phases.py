"""Where a call is now, and what moves it: the call tracker's state machine as one table.

The phase is what the tracker needs to tell a duplicate from news (a second
``QueueCallerJoin`` while queued) and a direct answer from a queue member's ringing
ending (a ``DialEnd`` while queued). Every change of phase goes through
:data:`TRANSITIONS`; a pair it does not list leaves the phase as it is (a caller leg
answered again, a queue leave after an agent answered).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

__all__ = ["TRANSITIONS", "CallPhase", "Step", "advance"]


class CallPhase(enum.StrEnum):
    """Where a call is now; drives duplicate detection and what a resync close means."""

    RINGING = "ringing"  # the caller leg exists but Asterisk has not answered it
    IVR = "ivr"  # answered, not (yet) in a queue
    QUEUED = "queued"
    LEFT_QUEUE = "left_queue"  # left a queue unanswered; the dialplan decides what next
    CONNECTED = "connected"  # an agent answered


class Step(enum.StrEnum):
    """What happened to a call, as far as its phase is concerned."""

    CALLER_UP = "caller_up"  # Asterisk answered the caller leg
    JOINED = "joined"  # QueueCallerJoin, or a resync found the caller waiting in Queue()
    LEFT = "left"  # QueueCallerLeave or QueueCallerAbandon
    RESULT = "result"  # the dialplan's QueueResult: Queue() has returned
    ANSWERED = "answered"  # AgentConnect, the account manager's DialEnd, or a merge


_EVERY = tuple(CallPhase)

TRANSITIONS: Final[Mapping[tuple[CallPhase, Step], CallPhase]] = {
    (CallPhase.RINGING, Step.CALLER_UP): CallPhase.IVR,
    **{(phase, Step.JOINED): CallPhase.QUEUED for phase in _EVERY},
    (CallPhase.QUEUED, Step.LEFT): CallPhase.LEFT_QUEUE,
    **{
        (phase, Step.RESULT): CallPhase.LEFT_QUEUE
        for phase in _EVERY
        if phase is not CallPhase.CONNECTED  # the answered call's own Queue() returning
    },
    **{(phase, Step.ANSWERED): CallPhase.CONNECTED for phase in _EVERY},
}


def advance(phase: CallPhase, step: Step) -> CallPhase:
    """The phase after ``step``; unchanged when the table has no such transition."""
    return TRANSITIONS.get((phase, step), phase)
