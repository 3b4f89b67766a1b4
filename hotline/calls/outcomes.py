"""How an unanswered queue exit is classified: one rule for the call log and the wallboard.

The call tracker (:mod:`hotline.calls.tracker`), the live queue state (:mod:`hotline.live`)
and the ``queue_log`` recount (:mod:`hotline.live.queue_log`) must agree call for call,
or the wallboard and the call log disagree (docs/wallboard.md checks the three against
each other on the lab). So the rule is written once, here.

Asterisk raises ``QueueCallerAbandon`` for timeouts, leave-empty and withdraw as well as
for a caller who hung up, so the event alone says nothing: what decides is the
``QUEUESTATUS`` the dialplan reports after ``Queue()`` returns (a ``QueueResult``
UserEvent, docs/call-log.md). A caller whose line went while still queued has no status:
that is a real abandon, and a short one when the wait was under the threshold.
"""

from __future__ import annotations

from typing import Final

from hotline.calls.records import Outcome

__all__ = ["OVERFLOW_STATUSES", "TIMEOUT_STATUS", "is_short", "unanswered"]

TIMEOUT_STATUS: Final = "TIMEOUT"
"""``QUEUESTATUS`` when the queue's own timeout sent the caller on: not an abandon."""

OVERFLOW_STATUSES: Final = frozenset(
    {"FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "WITHDRAW"}
)
"""``QUEUESTATUS`` values meaning the queue could not take, or gave away, the caller."""


def is_short(wait: float | None, short_abandon_seconds: float) -> bool:
    """An abandon counted apart (and out of the abandon rate): a known wait under the threshold.

    An unknown wait is not short: a caller is never dropped from the abandon rate on a
    guess.
    """
    return wait is not None and wait < short_abandon_seconds


def unanswered(status: str | None, wait: float | None, short_abandon_seconds: float) -> Outcome:
    """The outcome of a queue exit no agent answered, from ``QUEUESTATUS`` and the wait."""
    if status == TIMEOUT_STATUS:
        return Outcome.TIMEOUT
    if status in OVERFLOW_STATUSES:
        return Outcome.OVERFLOW
    return Outcome.SHORT_ABANDONED if is_short(wait, short_abandon_seconds) else Outcome.ABANDONED
