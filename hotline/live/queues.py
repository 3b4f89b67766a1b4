"""Waiting callers, pending exits and per-queue outcome counters.

A caller who leaves a queue unanswered is held as an :class:`~hotline.live.model.Exit`
until something says why: ``QueueCallerAbandon`` alone does not, because Asterisk raises
it for timeouts, leave-empty and withdraw too. The dialplan's ``QueueResult`` status, a
join to another queue (overflow) or the caller leg hanging up (abandon) settle it, by the
rule the call log uses (:func:`hotline.calls.outcomes.unanswered`), so that the wallboard
and the call log count every call alike. Answers are counted here too; the agent side of
``AgentConnect``/``AgentComplete`` is :mod:`hotline.live.members`.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from hotline.ami.typed import (
    Hangup,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueResult,
)
from hotline.calls.outcomes import unanswered
from hotline.calls.records import Outcome
from hotline.live.changes import (
    AbandonedCaller,
    CallerAbandoned,
    CallerLeft,
    CallerWaiting,
    Change,
    QueueUpdated,
    emit,
)
from hotline.live.model import (
    GARBAGE,
    Caller,
    Counters,
    Exit,
    Queue,
    QueueSettings,
    SkipReason,
    Tally,
)

__all__ = ["QueueBook"]

# QueueResult statuses of a caller that Queue() refused: no join, no exit, still an overflow.
_NEVER_JOINED = frozenset({"FULL", "JOINEMPTY", "JOINUNAVAIL"})
_MAX_EXITS = 10_000  # callers out of a queue whose fate is not known yet
_MAX_ABANDONED = 1_000  # call-back list entries kept per day


class QueueBook:
    """The queues, their waiting callers, the exits pending a fate and today's call-back list."""

    def __init__(
        self,
        counters: Counters,
        *,
        configured: Mapping[str, QueueSettings],
        default: QueueSettings,
        short_abandon_seconds: float,
    ) -> None:
        self.counters = counters
        self.configured = configured
        self.default = default
        self.short_abandon_seconds = short_abandon_seconds
        self.queues: dict[str, Queue] = {}
        self.exits: dict[str, Exit] = {}
        self.abandoned: list[AbandonedCaller] = []

    def queue(self, name: str) -> Queue:
        """The queue called ``name``, created with its configured (or default) settings."""
        queue = self.queues.get(name)
        if queue is None:
            settings = self.configured.get(name, self.default)
            queue = self.queues[name] = Queue(name, settings)
        return queue

    def new_day(self) -> None:
        for queue in self.queues.values():
            queue.today = Tally()
        self.abandoned = []

    def record(self, queue: Queue, outcome: Outcome, wait: float | None) -> None:
        within = wait is not None and wait <= queue.settings.service_level_seconds
        for tally in (queue.today, queue.total):
            tally.counts[outcome] += 1
            if outcome is Outcome.ANSWERED:
                tally.answered_wait += wait or 0.0
                tally.answered_in_sl += within
            elif outcome is Outcome.ABANDONED:
                tally.abandoned_in_sl += within

    def remove_caller(self, queue: Queue, uniqueid: str, out: list[Change]) -> Caller | None:
        """Take a caller off the waiting list; those behind it move up, as in Asterisk."""
        caller = queue.callers.pop(uniqueid, None)
        if caller is None:
            return None
        for other in queue.callers.values():
            if other.position > caller.position:
                other.position -= 1
        emit(out, CallerLeft(queue.name, uniqueid))
        emit(out, QueueUpdated(queue.name))
        return caller

    # -- settling exits -------------------------------------------------------------

    def close(self, exit_: Exit, status: str | None, out: list[Change]) -> None:
        """An unanswered exit's fate is known: ``status`` is QUEUESTATUS, None for a hang-up."""
        wait = exit_.wait
        self._count(exit_, unanswered(status, wait, self.short_abandon_seconds), wait, out)

    def _count(self, exit_: Exit, outcome: Outcome, wait: float | None, out: list[Change]) -> None:
        caller = exit_.caller
        queue = self.queue(caller.queue)
        self.record(queue, outcome, wait)
        emit(out, QueueUpdated(queue.name))
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
            if len(self.abandoned) >= _MAX_ABANDONED:
                del self.abandoned[0]
            self.abandoned.append(entry)
            out.append(CallerAbandoned(entry))

    def answer(
        self, name: str, uniqueid: str, hold: float | None, t: float, out: list[Change]
    ) -> None:
        """The queue side of ``AgentConnect``: count the answer with the caller's wait.

        The wait is ours (join to connect) when we saw the join, else Asterisk's HoldTime.
        AgentConnect may come before the caller's QueueCallerLeave, so the caller may
        still be listed as waiting.
        """
        queue = self.queue(name)
        exit_ = self.exits.pop(uniqueid, None)
        caller = self.remove_caller(queue, uniqueid, out)
        if exit_ is not None and exit_.caller.queue == name:
            joined = exit_.caller.joined_at
            wait = hold if joined is None else max(0.0, t - joined)
        elif caller is not None and caller.joined_at is not None:
            wait = max(0.0, t - caller.joined_at)
        else:
            wait = hold  # joined before our stream began
        self.record(queue, Outcome.ANSWERED, wait)
        emit(out, QueueUpdated(name))

    def gone(self, alive: Set[str], t: float, out: list[Change]) -> None:
        """Callers and pending exits whose channel is not ``alive`` hung up: settle them."""
        for uniqueid in [u for u in self.exits if u not in alive]:
            self.close(self.exits.pop(uniqueid), None, out)
        for queue in self.queues.values():
            for uniqueid in [u for u in queue.callers if u not in alive]:
                caller = self.remove_caller(queue, uniqueid, out)
                if caller is not None:
                    self.close(Exit(caller, t, None), None, out)

    # -- events ---------------------------------------------------------------------

    def on_join(self, event: QueueCallerJoin, t: float, out: list[Change]) -> None:
        name = event.queue
        uniqueid = event.uniqueid
        position = event.position
        number = event.caller_id_num
        caller_name = event.caller_id_name
        if name in GARBAGE:
            return self.counters.skip(SkipReason.NO_QUEUE)
        if uniqueid in GARBAGE:
            return self.counters.skip(SkipReason.NO_UNIQUEID)
        queue = self.queue(name)
        if uniqueid in queue.callers:
            return self.counters.skip(SkipReason.DUPLICATE)
        previous = self.exits.pop(uniqueid, None)
        if previous is not None:  # it left another queue unanswered and came here: overflow
            self._count(previous, Outcome.OVERFLOW, previous.wait, out)
        last = len(queue.callers) + 1
        position = max(1, min(last if position is None else position, last))
        for other in queue.callers.values():
            if other.position >= position:
                other.position += 1
        queue.callers[uniqueid] = Caller(
            uniqueid=uniqueid,
            linkedid=event.linkedid or uniqueid,
            queue=name,
            position=position,
            joined_at=t,
            number="" if number in GARBAGE else number,
            name="" if caller_name in GARBAGE else caller_name,
            customer_id=event.customer_id or None,
        )
        out.append(CallerWaiting(name, uniqueid, position))
        emit(out, QueueUpdated(name))

    def on_abandon(self, event: QueueCallerAbandon, t: float, out: list[Change]) -> None:
        self._leave(event.queue, event.uniqueid, event.hold_time, t, out, abandon=True)

    def on_leave(self, event: QueueCallerLeave, t: float, out: list[Change]) -> None:
        self._leave(event.queue, event.uniqueid, None, t, out, abandon=False)

    def _leave(
        self,
        name: str,
        uniqueid: str,
        hold_time: float | None,
        t: float,
        out: list[Change],
        *,
        abandon: bool,
    ) -> None:
        """QueueCallerAbandon or QueueCallerLeave: out of queue ``name``; hold an exit until
        we learn why. Abandon comes first when unanswered, Leave alone when answered."""
        queue = self.queues.get(name)
        caller = None if queue is None else self.remove_caller(queue, uniqueid, out)
        exit_ = self.exits.get(uniqueid)
        if caller is None:
            if exit_ is None or queue is None or exit_.caller.queue != queue.name:
                return self.counters.skip(SkipReason.UNKNOWN_CALLER)
        else:
            if len(self.exits) >= _MAX_EXITS:
                del self.exits[next(iter(self.exits))]
                self.counters.skip(SkipReason.OVERFLOWED_EXITS)
            exit_ = self.exits[uniqueid] = Exit(caller, t, None)
        if abandon:
            if exit_.abandon_seen:
                return self.counters.skip(SkipReason.DUPLICATE)
            exit_.abandon_seen = True
            exit_.hold_time = hold_time
        else:
            if exit_.leave_seen:
                return self.counters.skip(SkipReason.DUPLICATE)
            exit_.leave_seen = True

    def on_hangup(self, event: Hangup, t: float, out: list[Change]) -> None:
        """The caller leg is gone: a pending exit was an abandon (the tracker agrees)."""
        uniqueid = event.uniqueid
        exit_ = self.exits.pop(uniqueid, None)
        if exit_ is not None:
            self.close(exit_, None, out)
            return
        for queue in self.queues.values():  # Hangup before the queue's own events
            if uniqueid in queue.callers:
                caller = self.remove_caller(queue, uniqueid, out)
                if caller is not None:
                    self.close(Exit(caller, t, None), None, out)
                return

    def on_queue_result(self, event: QueueResult, t: float, out: list[Change]) -> None:
        """``UserEvent(QueueResult,Queue: q,Status: ${QUEUESTATUS})`` after ``Queue()``."""
        status, uniqueid, name = event.status, event.uniqueid, event.queue
        if not status or uniqueid in GARBAGE:
            return self.counters.skip(SkipReason.BAD_FIELD)
        exit_ = self.exits.get(uniqueid)
        if exit_ is not None and name in (exit_.caller.queue, ""):
            del self.exits[uniqueid]
            self.close(exit_, status, out)
        elif status in _NEVER_JOINED and name not in GARBAGE:
            self.record(self.queue(name), Outcome.OVERFLOW, None)
            emit(out, QueueUpdated(name))
