"""The reconciler's classification of a call from Asterisk's own record (CEL + queue_log).

Two kinds of test:

* small hand-written records, one per rule (every outcome family, the cuts by a crash
  or a shutdown, merges, the IVR's facts, the grouping of rows into caller calls);
* every lab recording under ``tests/fixtures/record/`` (``dialplans/record.py``): the
  rows classified from its CEL and queue_log must equal the live tracker's final rows
  from the AMI stream of the same calls, field by field (:data:`EXACT`), times within
  :data:`TIME_TOLERANCE` (CEL and AMI stamp the same moment a few ms apart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hotline.calls.records import CallRecord, Outcome, SettledBy
from hotline.record.cel_calls import caller_calls, hangup_facts, user_fields
from hotline.record.classify import CRASH, SHUTDOWN, classify, classify_calls
from hotline.record.entries import CelEvent, QueueLogEntry, parse_queue_log_line
from tests.support.record_replay import (
    RECORD_FIXTURES,
    parse_cel,
    read_cel,
    read_queue_log,
    recordings,
)
from tests.support.replay import final_records, read_ami

T0 = 1_800_000_000.0
SHORT = 5.0
CALLER = "PJSIP/trunk-00000001"


def _hangup_extra(cause: int, source: str, dialstatus: str = "") -> str:
    return json.dumps({"hangupcause": cause, "hangupsource": source, "dialstatus": dialstatus})


def _user_extra(text: str) -> str:
    return json.dumps({"extra": text})


@dataclass
class Record:
    """A hand-written record: CEL rows and queue_log lines, in the order written."""

    cel: list[CelEvent] = field(default_factory=list)
    queue_log: list[QueueLogEntry] = field(default_factory=list)

    def row(self, kind: str, at: float, uid: str, lid: str, chan: str, **kw: str) -> None:
        self.cel.append(
            CelEvent(
                id=len(self.cel) + 1,
                eventtype=kind,
                eventtime=T0 + at,
                uniqueid=uid,
                linkedid=lid,
                channame=chan,
                cid_num=kw.pop("cid_num", "13800138000"),
                cid_name=kw.pop("cid_name", "张伟"),
                **kw,
            )
        )

    def line(self, at: float, callid: str, queue: str, agent: str, event: str, *data: str) -> None:
        text = "|".join([str(int(T0 + at)), callid, queue, agent, event, *data])
        entry = parse_queue_log_line(text)
        assert entry is not None
        self.queue_log.append(entry)

    def user(self, at: float, uid: str, lid: str, chan: str, name: str, text: str) -> None:
        self.row("USER_DEFINED", at, uid, lid, chan, userdeftype=name, extra=_user_extra(text))

    def hangup(self, at: float, uid: str, lid: str, chan: str, cause: int, source: str) -> None:
        self.row("HANGUP", at, uid, lid, chan, extra=_hangup_extra(cause, source))
        self.row("CHAN_END", at, uid, lid, chan)

    def end(self, at: float, uid: str, lid: str) -> None:
        self.row("LINKEDID_END", at, uid, lid, "")


U1 = f"{int(T0)}.1"
AGENT = "PJSIP/agent-1001-00000002"
A1 = f"{int(T0) + 1}.2"


def _arrive(rec: Record, *, identified: bool = False) -> None:
    rec.row("CHAN_START", 0.0, U1, U1, CALLER, context="from-trunk", exten="4000")
    rec.row("ANSWER", 0.01, U1, U1, CALLER, appname="Answer")
    if identified:
        rec.user(
            0.2,
            U1,
            U1,
            CALLER,
            "CustomerIdentified",
            "CustomerID=42&Candidates=1&Dialect=cantonese&DialectSource=customer"
            "&QueuePrio=2&Reasons=VIP+tier%3B+account+manager",
        )
    rec.user(0.3, U1, U1, CALLER, "IvrStep", "Step=welcome")


def _queue(rec: Record, at: float, queue: str = "cantonese", uid: str = U1) -> None:
    rec.row("APP_START", at, uid, U1, CALLER, appname="Queue", appdata=f"{queue},tcb(x),,,30")
    rec.line(at, uid, queue, "NONE", "ENTERQUEUE", "", "13800138000", "1")


def answered(*, over: bool = True, agent_hangs_up_at: float = 5.5) -> Record:
    rec = Record()
    _arrive(rec, identified=True)
    _queue(rec, 0.5)
    rec.row("CHAN_START", 1.0, A1, U1, AGENT, cid_num="1001", cid_name="")
    rec.row("ANSWER", 2.5, A1, U1, AGENT, cid_num="1001", cid_name="")
    rec.line(2.5, U1, "cantonese", "1001", "CONNECT", "2", A1, "1")
    rec.row("BRIDGE_ENTER", 2.51, U1, U1, CALLER)
    rec.row("BRIDGE_ENTER", 2.512, A1, U1, AGENT, cid_num="1001", cid_name="")
    if not over:
        return rec
    rec.row("BRIDGE_EXIT", agent_hangs_up_at, A1, U1, AGENT, cid_num="1001", cid_name="")
    rec.hangup(agent_hangs_up_at, A1, U1, AGENT, 16, AGENT)
    rec.line(agent_hangs_up_at, U1, "cantonese", "1001", "COMPLETEAGENT", "2", "3", "1")
    rec.row("BRIDGE_EXIT", agent_hangs_up_at + 0.01, U1, U1, CALLER)
    rec.row("APP_END", agent_hangs_up_at + 0.02, U1, U1, CALLER, appname="Queue")
    rec.user(
        agent_hangs_up_at + 0.03,
        U1,
        U1,
        CALLER,
        "QueueResult",
        "queue=cantonese&status=&member=PJSIP/agent-1001",
    )
    rec.user(7.0, U1, U1, CALLER, "SurveyResult", "Score=1")
    rec.user(7.0, U1, U1, CALLER, "IvrStep", "Step=survey%3A1")
    rec.hangup(8.0, U1, U1, CALLER, 16, AGENT)
    rec.end(8.0, U1, U1)
    return rec


def queued(
    *,
    leaves_at: float,
    status: str | None,
    caller_source: str = CALLER,
    cause: int = 16,
    over: bool = True,
) -> Record:
    """A caller in ``cantonese`` nobody answers; ``status`` None: hung up while queued."""
    rec = Record()
    _arrive(rec)
    _queue(rec, 0.5)
    if status is not None:
        rec.row("APP_END", leaves_at, U1, U1, CALLER, appname="Queue")
        rec.user(
            leaves_at + 0.001, U1, U1, CALLER, "QueueResult", f"queue=cantonese&status={status}"
        )
        rec.hangup(leaves_at + 0.2, U1, U1, CALLER, 16, "dialplan/builtin")
        rec.end(leaves_at + 0.2, U1, U1)
        return rec
    if not over:
        return rec
    rec.hangup(leaves_at, U1, U1, CALLER, cause, caller_source)
    rec.end(leaves_at, U1, U1)
    return rec


def _classify(rec: Record, **kw: Any) -> CallRecord | None:
    kw.setdefault("short_abandon_seconds", SHORT)
    return classify(rec.cel, rec.queue_log, **kw)


def _one(rec: Record, **kw: Any) -> CallRecord:
    record = _classify(rec, **kw)
    assert record is not None
    assert record.settled_by is SettledBy.RECONCILED
    return record


# -- outcome families ----------------------------------------------------------------


def test_answered_takes_agent_times_and_ivr_facts_from_the_record() -> None:
    record = _one(answered())
    assert record.outcome is Outcome.ANSWERED
    assert (record.linkedid, record.caller_uniqueid, record.caller_channel) == (U1, U1, CALLER)
    assert (record.caller_number, record.caller_e164, record.caller_name) == (
        "13800138000",
        "+8613800138000",
        "张伟",
    )
    assert (record.agent, record.agent_interface) == ("1001", "PJSIP/agent-1001")
    assert record.arrived_at == pytest.approx(T0)
    assert record.queued_at == pytest.approx(T0 + 0.5)
    assert record.answered_at == pytest.approx(T0 + 2.51)
    assert record.wait_seconds == pytest.approx(2.01)
    assert record.talk_seconds == pytest.approx(5.5 - 2.51)  # to the agent's hangup
    assert record.ended_at == pytest.approx(T0 + 8.0)
    assert (record.queue, record.queues, record.queue_status) == ("cantonese", ["cantonese"], None)
    assert record.hangup_cause == 16
    assert record.customer_id == 42
    assert (record.dialect, record.route_source, record.priority) == ("cantonese", "customer", 2)
    assert record.route_reasons == ["VIP tier", "account manager"]
    assert record.candidates == 1
    assert record.survey_score == 1
    assert record.ivr_path == ["welcome", "survey:1"]
    assert (record.end_reason, record.merged_into) == (None, None)


def test_talk_time_falls_back_on_asterisks_own_count_when_the_stamps_disagree() -> None:
    """The tracker's rule: AgentComplete's TalkTime wins when > 1 s from the stamps."""
    rec = answered(agent_hangs_up_at=9.0)  # stamps say 6.49 s; the queue_log line says 3
    record = _one(rec)
    assert record.talk_seconds == 3.0


def test_a_call_still_going_is_not_settled() -> None:
    assert _classify(answered(over=False)) is None
    assert _classify(queued(leaves_at=20.0, status=None, over=False)) is None
    # Asterisk started before its last row: it may still be going
    assert _classify(answered(over=False), asterisk_started_at=T0 - 100) is None


@pytest.mark.parametrize(
    ("leaves_at", "status", "outcome", "wait"),
    [
        (20.5, None, Outcome.ABANDONED, 20.0),
        (2.5, None, Outcome.SHORT_ABANDONED, 2.0),
        (2.5, "CONTINUE", Outcome.SHORT_ABANDONED, 2.0),
        (30.5, "TIMEOUT", Outcome.TIMEOUT, 30.0),
        (3.5, "WITHDRAW", Outcome.OVERFLOW, 3.0),
        (60.5, "LEAVEEMPTY", Outcome.OVERFLOW, 60.0),
    ],
)
def test_unanswered_exits_follow_the_one_rule(
    leaves_at: float, status: str | None, outcome: Outcome, wait: float
) -> None:
    record = _one(queued(leaves_at=leaves_at, status=status))
    assert record.outcome is outcome
    assert record.wait_seconds == pytest.approx(wait)
    assert record.queue_status == status
    assert record.agent is None and record.answered_at is None


def test_a_queue_that_never_took_the_caller_is_overflow_with_no_wait() -> None:
    rec = Record()
    _arrive(rec)
    rec.row("APP_START", 0.5, U1, U1, CALLER, appname="Queue", appdata="cantonese,,,,30")
    rec.row("APP_END", 0.5005, U1, U1, CALLER, appname="Queue")
    rec.user(0.501, U1, U1, CALLER, "QueueResult", "queue=cantonese&status=JOINEMPTY")
    rec.hangup(0.7, U1, U1, CALLER, 16, "dialplan/builtin")
    rec.end(0.7, U1, U1)
    record = _one(rec)
    assert record.outcome is Outcome.OVERFLOW
    assert (record.queued_at, record.wait_seconds, record.queues) == (None, None, ["cantonese"])


def test_ivr_only_and_failed() -> None:
    rec = Record()
    _arrive(rec)
    rec.hangup(3.0, U1, U1, CALLER, 16, "dialplan/builtin")
    rec.end(3.0, U1, U1)
    record = _one(rec)
    assert (record.outcome, record.ivr_path, record.queues) == (Outcome.IVR_ONLY, ["welcome"], [])

    never_answered = Record()
    never_answered.row("CHAN_START", 0.0, U1, U1, CALLER)
    never_answered.hangup(0.4, U1, U1, CALLER, 21, CALLER)
    never_answered.end(0.4, U1, U1)
    assert _one(never_answered).outcome is Outcome.FAILED


def test_the_account_managers_direct_answer_is_an_answer() -> None:
    """Needs ``CELGenUserEvent(AccountManager,agent=…)`` beside the dialplan's UserEvent."""
    rec = Record()
    _arrive(rec)
    rec.user(0.4, U1, U1, CALLER, "AccountManager", "agent=1003")
    rec.row("APP_START", 0.5, U1, U1, CALLER, appname="Dial", appdata="PJSIP/agent-1003,15,g")
    callee, name = f"{int(T0)}.7", "PJSIP/agent-1003-00000007"
    rec.row("CHAN_START", 0.6, callee, U1, name)
    rec.row("ANSWER", 3.0, callee, U1, name)
    rec.row("BRIDGE_ENTER", 3.01, U1, U1, CALLER)
    rec.hangup(6.0, callee, U1, name, 16, name)
    rec.row("APP_END", 6.01, U1, U1, CALLER, appname="Dial")
    rec.hangup(6.2, U1, U1, CALLER, 16, "dialplan/builtin")
    rec.end(6.2, U1, U1)
    record = _one(rec)
    assert record.outcome is Outcome.ANSWERED
    assert (record.agent, record.agent_interface) == ("1003", "PJSIP/agent-1003")
    assert record.answered_at == pytest.approx(T0 + 3.0)
    assert record.talk_seconds == pytest.approx(3.0)
    assert (record.queued_at, record.wait_seconds, record.queues) == (None, None, [])


def test_an_end_with_hangup_rows_missing_is_closed_at_the_linkedid_end() -> None:
    rec = queued(leaves_at=20.0, status=None)
    rows = [e for e in rec.cel if e.eventtype not in ("HANGUP", "CHAN_END")]
    record = _one(Record(rows, rec.queue_log))
    assert (record.outcome, record.ended_at) == (Outcome.ABANDONED, pytest.approx(T0 + 20.0))


# -- cut by Asterisk ------------------------------------------------------------------


def test_a_crash_cuts_a_queued_caller_as_failed_not_abandoned() -> None:
    rec = queued(leaves_at=20.0, status=None, over=False)
    record = _one(rec, asterisk_started_at=T0 + 60)
    assert (record.outcome, record.end_reason) == (Outcome.FAILED, CRASH)
    assert record.ended_at == pytest.approx(T0 + 0.5)  # the last thing the record knows


def test_a_crash_leaves_an_answered_call_answered_with_the_reason() -> None:
    record = _one(answered(over=False), asterisk_started_at=T0 + 60)
    assert (record.outcome, record.end_reason, record.agent) == (Outcome.ANSWERED, CRASH, "1001")


def test_a_record_that_lost_its_end_to_a_shutdown_says_shutdown() -> None:
    rec = queued(leaves_at=20.0, status=None, over=False)
    record = _one(rec, asterisk_started_at=T0 + 60, shutdown_at=T0 + 10)
    assert (record.outcome, record.end_reason) == (Outcome.FAILED, SHUTDOWN)


def test_a_queued_caller_hung_up_by_a_shutdown_is_failed() -> None:
    rec = queued(leaves_at=20.0, status=None, caller_source="", cause=0)
    record = _one(rec)
    assert (record.outcome, record.end_reason) == (Outcome.FAILED, SHUTDOWN)
    assert record.wait_seconds == pytest.approx(19.5)  # what the caller did wait, kept


def test_shutdown_at_decides_when_known() -> None:
    rec = queued(leaves_at=20.0, status=None, caller_source="", cause=0)
    assert _one(rec, shutdown_at=T0 + 100).outcome is Outcome.ABANDONED  # before it began
    assert _one(rec, shutdown_at=T0 + 19.9).end_reason == SHUTDOWN


def test_a_caller_who_hangs_up_is_never_a_shutdown() -> None:
    rec = queued(leaves_at=20.0, status=None, caller_source=CALLER, cause=16)
    record = _one(rec, shutdown_at=T0 + 19.0)
    assert (record.outcome, record.end_reason) == (Outcome.ABANDONED, None)


# -- transfers and merges -------------------------------------------------------------


def test_blind_transfer_to_a_queue_keeps_the_first_agent_and_both_queues() -> None:
    rec = Record()
    _arrive(rec)
    _queue(rec, 0.5)
    rec.row("CHAN_START", 1.0, A1, U1, AGENT)
    rec.row("ANSWER", 1.5, A1, U1, AGENT)
    rec.line(1.5, U1, "cantonese", "1001", "CONNECT", "1", A1, "0")
    rec.row("BRIDGE_ENTER", 1.51, U1, U1, CALLER)
    rec.row("BRIDGE_ENTER", 1.51, A1, U1, AGENT)
    rec.row("BLINDTRANSFER", 3.0, A1, U1, AGENT, extra='{"extension":"mandarin"}')
    rec.line(
        3.0, U1, "cantonese", "1001", "BLINDTRANSFER", "mandarin", "hotline-transfer", "1", "2", "1"
    )
    rec.row("BRIDGE_EXIT", 3.01, U1, U1, CALLER)
    rec.row("BRIDGE_EXIT", 3.01, A1, U1, AGENT)
    rec.hangup(3.02, A1, U1, AGENT, 16, "")
    rec.row("APP_END", 3.03, U1, U1, CALLER, appname="Queue")
    rec.user(
        3.04,
        U1,
        U1,
        CALLER,
        "QueueResult",
        "queue=cantonese&status=CONTINUE&member=PJSIP/agent-1001",
    )
    a2, agent2 = f"{int(T0) + 4}.3", "PJSIP/agent-1002-00000003"
    _queue(rec, 3.1, "mandarin")
    rec.row("CHAN_START", 3.2, a2, U1, agent2)
    rec.row("ANSWER", 4.0, a2, U1, agent2)
    rec.line(4.0, U1, "mandarin", "1002", "CONNECT", "1", a2, "1")
    rec.row("BRIDGE_ENTER", 4.01, U1, U1, CALLER)
    rec.hangup(8.0, U1, U1, CALLER, 16, CALLER)
    rec.line(8.0, U1, "mandarin", "1002", "COMPLETECALLER", "1", "4", "1")
    rec.hangup(8.01, a2, U1, agent2, 16, CALLER)
    rec.end(8.01, a2, U1)
    record = _one(rec)
    assert record.outcome is Outcome.ANSWERED
    assert (record.agent, record.agent_interface) == ("1001", "PJSIP/agent-1001")
    assert record.queues == ["cantonese", "mandarin"]
    assert record.talk_seconds == pytest.approx(3.0 - 1.51)  # to the transfer
    assert record.ended_at == pytest.approx(T0 + 8.01)


def _bridged_into_an_agents_call() -> tuple[Record, str]:
    """A supervisor bridges a queued caller into an agent's originated call (L2)."""
    rec = Record()
    _arrive(rec)
    _queue(rec, 0.5, "wu")
    l2, chan2 = f"{int(T0) + 1}.5", "PJSIP/agent-1002-00000005"
    rec.row("CHAN_START", 1.0, l2, l2, chan2, cid_num="1002", cid_name="")
    rec.row("ANSWER", 1.3, l2, l2, chan2, cid_num="1002", cid_name="")
    rec.row("BRIDGE_ENTER", 1.5, l2, l2, chan2, cid_num="1002", cid_name="")
    rec.row("BRIDGE_ENTER", 2.0, U1, U1, CALLER)
    rec.row("BRIDGE_ENTER", 2.0, l2, U1, chan2, cid_num="1002", cid_name="")  # relinked
    rec.end(2.0, l2, l2)
    rec.hangup(5.0, l2, U1, chan2, 16, chan2)
    rec.hangup(5.01, U1, U1, CALLER, 16, chan2)
    rec.end(5.01, U1, U1)
    return rec, l2


def test_a_call_bridged_into_another_is_closed_with_merged_into() -> None:
    rec, l2 = _bridged_into_an_agents_call()
    assert [c.linkedid for c in caller_calls(rec.cel)] == [U1, l2]
    records = classify_calls(rec.cel, rec.queue_log, short_abandon_seconds=SHORT)
    absorbed, keeper = records[l2], records[U1]
    assert absorbed is not None and keeper is not None
    assert (absorbed.outcome, absorbed.merged_into) == (Outcome.IVR_ONLY, U1)
    assert absorbed.ended_at == pytest.approx(T0 + 2.0)
    assert keeper.merged_into is None
    assert keeper.ended_at == pytest.approx(T0 + 5.01)  # the absorbed leg's end counts
    assert classify(rec.cel, rec.queue_log, short_abandon_seconds=SHORT, linkedid=l2) == absorbed


def test_a_merge_is_seen_from_the_younger_calls_rows_alone() -> None:
    """cel_for(L2) holds its channel's rows under both Linkedids, not the caller's."""
    rec, l2 = _bridged_into_an_agents_call()
    mine = [e for e in rec.cel if e.uniqueid == l2 or e.linkedid == l2]
    assert [c.linkedid for c in caller_calls(mine)] == [l2]
    record = _one(Record(mine), linkedid=l2)
    assert (record.outcome, record.merged_into) == (Outcome.IVR_ONLY, U1)


def test_grouping_keeps_unrelated_calls_apart() -> None:
    first, _ = _bridged_into_an_agents_call()
    other = f"{int(T0) + 9}.9"
    rows = [
        *first.cel,
        CelEvent(900, "CHAN_START", T0 + 9, other, other, "PJSIP/trunk-00000009"),
        CelEvent(901, "HANGUP", T0 + 9.5, other, other, "PJSIP/trunk-00000009"),
        CelEvent(902, "LINKEDID_END", T0 + 9.5, other, other),
    ]
    calls = caller_calls(reversed(rows))  # any order in, Asterisk's order out
    assert [len(c.rows) for c in calls][-1] == 3
    assert all(c.rows == tuple(sorted(c.rows, key=lambda e: e.id)) for c in calls)
    records = classify_calls(rows, [], short_abandon_seconds=SHORT)
    assert set(records) == {U1, calls[1].linkedid, other}
    lone = records[other]
    assert lone is not None and lone.outcome is Outcome.FAILED


def test_rows_with_no_caller_channel_give_nothing() -> None:
    rec = answered()
    agent_only = [e for e in rec.cel if e.uniqueid == A1]
    assert _classify(Record(agent_only)) is None
    assert _classify(Record()) is None


# -- reading single rows --------------------------------------------------------------


def test_user_fields_read_both_spellings_and_never_raise() -> None:
    def row(extra: str) -> CelEvent:
        return CelEvent(1, "USER_DEFINED", T0, U1, U1, userdeftype="X", extra=extra)

    assert user_fields(row(_user_extra("Step=dialect%3Awu&x=1"))) == {
        "step": "dialect:wu",
        "x": "1",
    }
    assert user_fields(row("queue=wu&status=TIMEOUT")) == {"queue": "wu", "status": "TIMEOUT"}
    assert user_fields(row("{not json")) == {}
    assert user_fields(row('{"extra": 5}')) == {}
    assert user_fields(row("")) == {}


def test_hangup_facts_never_raise() -> None:
    facts = hangup_facts(CelEvent(1, "HANGUP", T0, U1, U1, extra=_hangup_extra(16, CALLER)))
    assert (facts.cause, facts.source) == (16, CALLER)
    for bad in ("", "[]", "{", '{"hangupcause": "16", "hangupsource": 3}'):
        facts = hangup_facts(CelEvent(1, "HANGUP", T0, U1, U1, extra=bad))
        assert (facts.cause, facts.source) == (None, "")


def test_cel_custom_json_lines_are_read_as_cel_pgsql_rows() -> None:
    line = json.dumps(
        {
            "eventtype": "QueueResult",
            "eventenum": "USER_DEFINED",
            "userdeftype": "QueueResult",
            "eventtime": T0 + 1.25,
            "name": "张伟",
            "num": "13800138000",
            "channame": CALLER,
            "uniqueid": U1,
            "linkedid": U1,
            "eventextra": {"extra": "queue=wu&status=TIMEOUT"},
        },
        ensure_ascii=False,
    )
    (event,) = parse_cel([line])
    assert (event.eventtype, event.userdeftype, event.cid_name) == (
        "USER_DEFINED",
        "QueueResult",
        "张伟",
    )
    assert event.eventtime == T0 + 1.25
    assert user_fields(event) == {"queue": "wu", "status": "TIMEOUT"}
    values = ["ANSWER", str(T0 + 2), "", "张伟", "138", *[""] * 5, CALLER, "", "", "3"]
    csv_line = ",".join(f'"{v}"' for v in [*values, "", "", U1, U1, "", "", ""])
    (answer,) = parse_cel([csv_line])
    assert (answer.eventtype, answer.eventtime, answer.uniqueid) == ("ANSWER", T0 + 2, U1)


# -- the lab recordings: the record gives the live tracker's rows ------------------------

RECORDINGS = recordings()

# Fields compared exactly, and times compared within TIME_TOLERANCE.
EXACT = (
    "linkedid",
    "outcome",
    "caller_uniqueid",
    "caller_channel",
    "caller_number",
    "caller_e164",
    "caller_name",
    "customer_id",
    "queue",
    "queues",
    "agent",
    "agent_interface",
    "queue_status",
    "hangup_cause",
    "ivr_path",
    "dialect",
    "route_source",
    "priority",
    "route_reasons",
    "candidates",
    "survey_score",
    "merged_into",
    "end_reason",  # cut_by_restart: both say asterisk_shutdown (failed, answered stays)
)
TIMES = ("arrived_at", "queued_at", "answered_at", "ended_at", "wait_seconds", "talk_seconds")
TIME_TOLERANCE = 0.05  # s


def _bridged_out_of_queue(got: CallRecord, live: CallRecord) -> set[str]:
    """AMI ``Bridge`` takes the caller out of ``Queue()`` with no ``QueueCallerLeave``,
    so the live tracker counts the 3 s talk with the agent into the wait (docs/lab.md);
    CEL's ``APP_END`` of ``Queue`` ends the wait at the bridge, about 1.4 s after the join."""
    if got.merged_into is not None:
        return set()
    assert got.wait_seconds is not None and live.wait_seconds is not None
    assert live.wait_seconds - got.wait_seconds > 2.5, (got.wait_seconds, live.wait_seconds)
    return {"wait_seconds"}


# Recordings where the live tracker is provably wrong: each check asserts what the record
# says instead and returns the fields it checked (not compared with the live row).
LIVE_IS_WRONG = {
    "bridged_from_queue": _bridged_out_of_queue,
}


def _meta(cel_csv: Path) -> dict[str, Any]:
    path = cel_csv.with_name(cel_csv.name.removesuffix(".cel.csv") + ".json")
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _id(path: Path) -> str:
    return str(path.relative_to(RECORD_FIXTURES)).removesuffix(".cel.csv")


@pytest.mark.parametrize("cel_csv", RECORDINGS, ids=_id)
def test_the_record_gives_the_live_trackers_rows(cel_csv: Path) -> None:
    stem = cel_csv.name.removesuffix(".cel.csv")
    meta = _meta(cel_csv)
    live = {r.linkedid: r for r in final_records(read_ami(cel_csv.with_name(stem + ".ami")))}
    records = classify_calls(
        read_cel(cel_csv),
        read_queue_log(cel_csv.with_name(stem + ".queue_log")),
        short_abandon_seconds=SHORT,
        default_dialect=meta.get("default_dialect"),
        asterisk_started_at=meta.get("asterisk_started_at"),
        shutdown_at=meta.get("shutdown_at"),
    )
    assert live, "the AMI stream closed no call"
    differences: list[str] = []
    for linkedid, expected in live.items():
        got = records.get(linkedid)
        if got is None:
            differences.append(f"{linkedid}: no row from the record")
            continue
        check = LIVE_IS_WRONG.get(stem)
        skip = check(got, expected) if check is not None else set()
        for name in EXACT:
            if name not in skip and getattr(got, name) != getattr(expected, name):
                mine, theirs = getattr(got, name), getattr(expected, name)
                differences.append(f"{linkedid}.{name}: record {mine!r}, live {theirs!r}")
        for name in (t for t in TIMES if t not in skip):
            a, b = getattr(got, name), getattr(expected, name)
            if (a is None) != (b is None) or (a is not None and abs(a - b) > TIME_TOLERANCE):
                differences.append(f"{linkedid}.{name}: record {a!r}, live {b!r}")
    extra = sorted(k for k, v in records.items() if v is not None and k not in live)
    if extra:
        differences.append(f"rows the live tracker did not write: {extra}")
    assert not differences, "\n".join(differences)
