"""A call as the tracker holds it while it is open, and the final record it closes with.

A *leg* is a channel, keyed by Uniqueid; a *call* is keyed by Linkedid, and its caller
leg is the channel whose Uniqueid is the Linkedid (docs/call-log.md). The final record
is computed here from what the call went through (its queue attempts, its answer, its
legs' ends), so the closing rules sit apart from the event handling that gathers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hotline.calls.outcomes import unanswered
from hotline.calls.phases import CallPhase, Step, advance
from hotline.calls.records import CallRecord, Outcome

__all__ = ["Attempt", "Call", "Leg", "seconds"]


def seconds(value: float) -> float:
    """Round away float noise (epoch stamps near 1.7e9 carry ~1e-7 of it); never negative."""
    return max(0.0, round(value, 6))


@dataclass(slots=True)
class Attempt:
    """One pass through one queue (or one failed try to join it)."""

    queue: str
    joined_at: float | None = None
    left_at: float | None = None
    hold_time: float | None = None  # HoldTime header (s) of the abandon or connect
    status: str | None = None  # QUEUESTATUS from the dialplan's QueueResult
    abandoned: bool = False  # QueueCallerAbandon seen: an abandon only if nothing says otherwise
    leave_seen: bool = False  # QueueCallerLeave seen
    answered: bool = False


@dataclass(slots=True)
class Call:
    key: str
    record: CallRecord
    phase: CallPhase = CallPhase.RINGING
    legs: dict[str, Leg] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)  # merged-in linkedids that map to key
    attempts: list[Attempt] = field(default_factory=list)
    caller_up: bool = False
    caller_ended_at: float | None = None
    agent_uniqueid: str | None = None
    agent_ended_at: float | None = None
    talk_time: float | None = None  # AgentComplete TalkTime (s)
    last_ivr: tuple[float, str] | None = None  # to drop a duplicated IvrStep
    account_manager: str | None = None  # agent the dialplan rings before queueing
    # Its history has a hole (the AMI link dropped while it was open, or a resync adopted
    # it half-way), so its end is settled from Asterisk's record, not from what we saw.
    gap: bool = False
    # Asterisk itself cut the caller (a shutdown): the record's end_reason.
    cut: str | None = None

    def step(self, step: Step) -> None:
        self.phase = advance(self.phase, step)

    def attempt(self, queue: str) -> Attempt | None:
        """The current attempt if it is for ``queue`` (events name the queue they are about)."""
        if self.attempts and self.attempts[-1].queue == queue:
            return self.attempts[-1]
        return None

    def new_attempt(self, queue: str) -> Attempt:
        attempt = Attempt(queue)
        self.attempts.append(attempt)
        record = self.record
        record.queue = queue
        record.queue_status = None  # the status field describes the last queue only
        if not record.queues or record.queues[-1] != queue:
            record.queues.append(queue)
        return attempt

    def snapshot(self) -> CallRecord:
        """A copy of the record that later events cannot change."""
        record = self.record
        return replace(record, queues=list(record.queues), ivr_path=list(record.ivr_path))

    def finish(self, at: float, short_abandon_seconds: float) -> CallRecord:
        """Fill the final fields of the record as the call ends at ``at``; return it."""
        record = self.record
        record.ended_at = at
        record.wait_seconds = self._wait(at)
        record.outcome = self._outcome(short_abandon_seconds)
        if self.cut is not None:
            record.end_reason = self.cut
            if record.outcome is not Outcome.ANSWERED:
                record.outcome = Outcome.FAILED
        if record.answered_at is not None:
            ends = [t for t in (self.agent_ended_at, self.caller_ended_at) if t is not None]
            talk = min(ends, default=at) - record.answered_at
            # AgentComplete's TalkTime is Asterisk's own count but in whole seconds (a
            # 0.5 s call says 0): keep the timestamps' precision when they agree with it.
            if self.talk_time is not None and abs(talk - self.talk_time) > 1.0:
                talk = self.talk_time
            record.talk_seconds = seconds(talk)
        return record

    def _wait(self, at: float) -> float | None:
        """First queue join to answer, or to leaving the last queue joined.

        Falls back on Asterisk's HoldTime (time in that one queue) when the join was
        never seen (the call was adopted by a resync mid-queue).
        """
        record = self.record
        if record.answered_at is not None:
            if record.queued_at is not None:
                return seconds(record.answered_at - record.queued_at)
            answering = next((a for a in self.attempts if a.answered), None)
            if answering is not None and answering.hold_time is not None:
                return seconds(answering.hold_time)
            return None
        joined = [a for a in self.attempts if a.joined_at is not None or a.hold_time is not None]
        if not joined:
            return None
        last = joined[-1]
        left = last.left_at
        if left is None:  # still queued when the caller leg went (or the resync found it gone)
            left = self.caller_ended_at if self.caller_ended_at is not None else at
        if record.queued_at is not None:
            return seconds(left - record.queued_at)
        return None if last.hold_time is None else seconds(last.hold_time)

    def _outcome(self, short_abandon_seconds: float) -> Outcome:
        """An agent answer wins; otherwise the last queue's result decides.

        QueueCallerAbandon is not read here on purpose: Asterisk raises it for timeouts,
        leave-empty and withdraw too (the rule is :func:`hotline.calls.outcomes.unanswered`).
        """
        record = self.record
        if record.answered_at is not None:
            return Outcome.ANSWERED
        if not self.attempts:
            return Outcome.IVR_ONLY if self.caller_up else Outcome.FAILED
        return unanswered(self.attempts[-1].status, record.wait_seconds, short_abandon_seconds)


@dataclass(slots=True)
class Leg:
    uniqueid: str
    linkedid: str
    call: Call
