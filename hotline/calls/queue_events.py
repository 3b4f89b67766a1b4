"""Call tracker handlers for queue, agent and dialplan events: what the call went through.

Outcomes are decided when the call closes (:meth:`hotline.calls.legs.Call.finish`);
these handlers only note the facts. ``QueueCallerAbandon`` also fires on timeout,
leave-empty and withdraw, so it is never trusted alone: the dialplan's
``UserEvent(QueueResult)`` status and what the caller does next (join another queue, or
hang up) decide (docs/call-log.md). Like the channel handlers, each takes the
:class:`~hotline.calls.book.CallBook` and one typed event and returns the records to
upsert now.
"""

from __future__ import annotations

import logging

from hotline.ami.typed import (
    AccountManager,
    AgentComplete,
    AgentConnect,
    CustomerIdentified,
    DialEnd,
    IvrStep,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueResult,
    SurveyResult,
    known,
)
from hotline.calls.book import CallBook, SkipReason
from hotline.calls.phases import CallPhase, Step
from hotline.calls.records import CallRecord
from hotline.types import NO_VALUE

__all__ = [
    "on_account_manager",
    "on_agent_complete",
    "on_agent_connect",
    "on_dial_end",
    "on_identified",
    "on_ivr_step",
    "on_queue_abandon",
    "on_queue_join",
    "on_queue_leave",
    "on_queue_result",
    "on_survey",
]

log = logging.getLogger(__name__)


def on_queue_join(book: CallBook, event: QueueCallerJoin) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    queue = event.queue
    if queue in NO_VALUE:
        book.skip(SkipReason.BAD_FIELD, event)
        return out
    call = leg.call
    at = event.time
    current = call.attempt(queue)
    if (
        current is not None
        and current.joined_at is None
        and current.left_at is None
        and current.status is None
    ):
        attempt = current  # adopted by a resync; now we know when it joined
    elif call.phase is CallPhase.QUEUED and current is not None and current.left_at is None:
        book.skip(SkipReason.DUPLICATE, event)
        return out
    else:
        if call.attempts and call.attempts[-1].left_at is None:
            call.attempts[-1].left_at = at  # missed its leave; it ended by this join
        attempt = call.new_attempt(queue)
    attempt.joined_at = at
    if call.record.queued_at is None:
        call.record.queued_at = at
    dialect = event.dialect  # what routing settled on, menu choice included
    if dialect and dialect not in NO_VALUE:
        call.record.dialect = dialect
    call.step(Step.JOINED)
    return out


def _leave(
    book: CallBook,
    event: QueueCallerAbandon | QueueCallerLeave,
    *,
    abandon: bool,
    hold_time: float | None = None,
) -> list[CallRecord]:
    """QueueCallerAbandon (``abandon``) or QueueCallerLeave: the caller is out of ``Queue``.

    Neither says why; the abandon is only noted, the outcome is decided at close.
    """
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    call = leg.call
    queue = event.queue
    at = event.time
    attempt = call.attempt(queue)
    if attempt is None:
        if queue in NO_VALUE:
            book.skip(SkipReason.BAD_FIELD, event)
            return out
        attempt = call.new_attempt(queue)  # its join predates our stream
    if abandon:
        if attempt.abandoned:
            book.skip(SkipReason.DUPLICATE, event)
            return out
        attempt.abandoned = True
        attempt.hold_time = hold_time
        if attempt.joined_at is None and hold_time is not None:
            attempt.joined_at = at - hold_time
            if call.record.queued_at is None:
                call.record.queued_at = attempt.joined_at
    else:
        if attempt.leave_seen:
            book.skip(SkipReason.DUPLICATE, event)
            return out
        attempt.leave_seen = True
    if attempt.left_at is None:
        attempt.left_at = at
    call.step(Step.LEFT)
    return out


def on_queue_abandon(book: CallBook, event: QueueCallerAbandon) -> list[CallRecord]:
    return _leave(book, event, abandon=True, hold_time=event.hold_time)


def on_queue_leave(book: CallBook, event: QueueCallerLeave) -> list[CallRecord]:
    return _leave(book, event, abandon=False)


def on_agent_connect(book: CallBook, event: AgentConnect) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    call = leg.call
    record = call.record
    if record.answered_at is not None:
        # A duplicate, or a second queue answering after a transfer: the first
        # agent to answer the customer is the one the call log keeps.
        if event.dest_uniqueid == call.agent_uniqueid:
            book.skip(SkipReason.DUPLICATE, event)
        return out
    at = event.time
    queue = event.queue
    attempt = call.attempt(queue)
    if attempt is None and queue not in NO_VALUE:
        attempt = call.new_attempt(queue)
    hold_time = event.hold_time
    if attempt is not None:
        attempt.answered = True
        attempt.hold_time = hold_time
        if attempt.left_at is None:
            attempt.left_at = at
        if attempt.joined_at is None and hold_time is not None:
            attempt.joined_at = at - hold_time
    if hold_time is not None:
        if record.queued_at is None:
            record.queued_at = at - hold_time
        elif len(call.attempts) == 1 and abs((at - record.queued_at) - hold_time) > 2.0:
            # HoldTime is whole seconds: more than 2 s apart means a lost or foreign join.
            log.debug("linkedid=%s wait and HoldTime disagree", call.key)
    record.answered_at = at
    record.agent = known(event.member_name)
    record.agent_interface = known(event.interface)
    call.agent_uniqueid = known(event.dest_uniqueid)
    call.step(Step.ANSWERED)
    # A provisional row that names the agent: the agent's wrap-up may be posted
    # before the call ends, and the call log should show who is on the call.
    out.append(call.snapshot())
    return out


def on_agent_complete(book: CallBook, event: AgentComplete) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    call = leg.call
    if call.agent_uniqueid is None or event.dest_uniqueid in (call.agent_uniqueid, ""):
        talk_time = event.talk_time
        if talk_time is not None and call.talk_time is None:
            call.talk_time = talk_time
        if call.agent_ended_at is None:
            call.agent_ended_at = event.time
    return out


def on_dial_end(book: CallBook, event: DialEnd) -> list[CallRecord]:
    """A direct Dial answered (the account manager, before any queue): answered.

    Queue calls are answered by AgentConnect; a DialEnd there only ends one member's
    ringing, so only a call waiting on its account manager is answered here.
    """
    if event.dial_status != "ANSWER":
        return []
    call = book.call_of(event.linkedid)
    if call is None or call.account_manager is None or call.record.answered_at is not None:
        return []
    if call.phase is CallPhase.QUEUED:
        return []
    record = call.record
    record.answered_at = event.time
    record.agent = call.account_manager
    channel = event.dest_channel
    record.agent_interface = channel.rsplit("-", 1)[0] if "-" in channel else None
    call.agent_uniqueid = known(event.dest_uniqueid)
    call.step(Step.ANSWERED)
    return [call.snapshot()]


# -- dialplan UserEvents ------------------------------------------------------------------


def on_account_manager(book: CallBook, event: AccountManager) -> list[CallRecord]:
    """The dialplan is about to ring the customer's account manager directly."""
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is not None and event.agent and event.agent not in NO_VALUE:
        leg.call.account_manager = event.agent
    return out


def on_identified(book: CallBook, event: CustomerIdentified) -> list[CallRecord]:
    """The IVR's identify step: routing decision and candidate count, for the log."""
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    record = leg.call.record
    record.dialect = event.dialect or record.dialect
    record.route_source = event.dialect_source or record.route_source
    if event.queue_prio is not None:
        record.priority = event.queue_prio
    record.route_reasons = list(event.reasons)
    if event.candidates is not None:
        record.candidates = event.candidates
    return out


def on_survey(book: CallBook, event: SurveyResult) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    if event.score is not None:
        leg.call.record.survey_score = event.score
    else:
        book.skip(SkipReason.BAD_FIELD, event)
    return out


def on_queue_result(book: CallBook, event: QueueResult) -> list[CallRecord]:
    """``UserEvent(QueueResult,Queue: q,Status: ${QUEUESTATUS})`` after ``Queue()``."""
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    status = event.status
    if not status:
        book.skip(SkipReason.BAD_FIELD, event)
        return out
    call = leg.call
    queue = event.queue
    last = call.attempts[-1] if call.attempts else None
    if last is not None and last.status is None and queue in (last.queue, ""):
        attempt = last
    elif queue in NO_VALUE:
        book.skip(SkipReason.BAD_FIELD, event)
        return out
    elif last is not None and last.status == status and last.queue == queue:
        book.skip(SkipReason.DUPLICATE, event)
        return out
    else:
        attempt = call.new_attempt(queue)  # FULL, JOINEMPTY…: never joined
    attempt.status = status
    if attempt.left_at is None and attempt.joined_at is not None:
        attempt.left_at = event.time
    call.record.queue_status = status
    call.step(Step.RESULT)
    return out


def on_ivr_step(book: CallBook, event: IvrStep) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    step = event.step
    if step in NO_VALUE:
        book.skip(SkipReason.BAD_FIELD, event)
        return out
    call = leg.call
    mark = (event.time, step)
    if mark == call.last_ivr:
        book.skip(SkipReason.DUPLICATE, event)
        return out
    call.last_ivr = mark
    call.record.ivr_path.append(step)
    return out
