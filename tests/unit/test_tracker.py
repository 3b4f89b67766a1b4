"""CallTracker: AMI event streams in, call records out.

Scenarios are inline event tables in the orders Asterisk 22 emits them (as the lab
recordings in ``tests/fixtures/ami`` show), trimmed to the headers the tracker reads
plus some noise it must ignore. The helpers at the top (``ami_table``, ``rekey``, ``interleave``,
``replay``, ``finals``, ``read_ami``) are meant for reuse: recorded lab streams dropped
in ``tests/fixtures/ami/**/*.ami`` are replayed by ``test_recorded_fixture`` below, and
compared with ``<name>.expected.json`` when one sits next to them.
"""

# Event tables keep one AMI event per row, which is wider than code lines.
# ruff: noqa: E501

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hotline.ami.events import AMIEvent
from hotline.calls import tracker as tracker_module
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.tracker import CallTracker
from tests.support.replay import read_ami

T0 = 1_700_000_000.0
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
DEFAULT_COLUMNS = ("t", "Event", "Uniqueid", "Linkedid", "ChannelState", "more")

# -- helpers ---------------------------------------------------------------------------


def ami_table(text: str, *, t0: float = T0) -> list[AMIEvent]:
    """Events from a ``|`` table, one row per event.

    Columns default to ``t | Event | Uniqueid | Linkedid | ChannelState | more``; a first
    row naming columns replaces them. ``t`` is seconds after ``t0`` (written as the
    ``Timestamp`` header; a non-number is passed through as garbage). An empty cell
    means "header absent". ``more`` holds ``Key=value`` pairs separated by ``;``, where
    ``var.NAME=value`` is a ``ChanVariable`` and ``destvar.NAME`` a ``DestChanVariable``.
    """
    rows = [line.strip() for line in text.strip().splitlines() if line.strip()]
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    first = [cell.strip() for cell in rows[0].split("|")] if rows else []
    if "Event" in first and "t" in first:
        columns = tuple(first)
        rows = rows[1:]
    events = []
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")]
        cells += [""] * (len(columns) - len(cells))
        headers: dict[str, str] = {}
        chanvars: dict[str, dict[str, str]] = {}
        name = ""
        for column, cell in zip(columns, cells, strict=False):
            if not cell:
                continue
            if column == "Event":
                name = cell
                headers["Event"] = cell
            elif column == "t":
                try:
                    headers["Timestamp"] = f"{t0 + float(cell):.6f}"
                except ValueError:
                    headers["Timestamp"] = cell
            elif column == "more":
                for pair in cell.split(";"):
                    if not pair.strip():
                        continue
                    key, _, value = pair.strip().partition("=")
                    if key.startswith("var."):
                        chanvars.setdefault("ChanVariable", {})[key[4:]] = value
                    elif key.startswith("destvar."):
                        chanvars.setdefault("DestChanVariable", {})[key[8:]] = value
                    else:
                        headers[key] = value
            else:
                headers[column] = cell
        events.append(AMIEvent(name=name, headers=headers, chanvars=chanvars))
    return events


_ID_HEADERS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid")


def rekey(events: list[AMIEvent], suffix: str, *, shift: float = 0.0) -> list[AMIEvent]:
    """The same scenario as another call: ids get ``suffix``, times move by ``shift``."""
    out = []
    for event in events:
        headers = dict(event.headers)
        for key in _ID_HEADERS:
            if headers.get(key):
                headers[key] += suffix
        if "Uniqueids" in headers:
            headers["Uniqueids"] = " ".join(u + suffix for u in headers["Uniqueids"].split())
        if shift and "Timestamp" in headers:
            headers["Timestamp"] = f"{float(headers['Timestamp']) + shift:.6f}"
        out.append(AMIEvent(event.name, headers, event.chanvars, event.received))
    return out


def interleave(*streams: list[AMIEvent]) -> list[AMIEvent]:
    """Several calls' streams merged by time, as one AMI connection would carry them."""
    merged = [e for stream in streams for e in stream]
    return sorted(merged, key=lambda e: e.time)  # stable: equal times keep stream order


def replay(
    events: list[AMIEvent], tracker: CallTracker | None = None
) -> tuple[CallTracker, list[CallRecord]]:
    tracker = tracker or CallTracker()
    records = [r for event in events for r in tracker.feed(event)]
    return tracker, records


def finals(records: list[CallRecord]) -> dict[str, CallRecord]:
    """The last record of each linkedid, as the upserting writer would leave the rows."""
    return {r.linkedid: r for r in records}


def final(events: list[AMIEvent], *, short_abandon_seconds: float = 5.0) -> CallRecord:
    """The final record of a one-call scenario (asserting it did finish)."""
    tracker = CallTracker(short_abandon_seconds=short_abandon_seconds)
    records = replay(events, tracker)[1]
    assert records, "no record at all"
    record = records[-1]
    assert record.outcome is not Outcome.IN_PROGRESS
    assert tracker.stats["calls_open"] == 0
    assert tracker.stats.get("skipped.internal_error", 0) == 0
    return record


# -- scenarios (in Asterisk 22 event order) --------------------------------------------

ARRIVE = """
0.0  | Newchannel       | C  | C | 4 | Channel=PJSIP/trunk-00000001; CallerIDNum=13800138000; CallerIDName=Zhang San
0.1  | VarSet           | C  | C | 4 | Variable=SIPCALLID; Value=abc@10.0.0.1
0.2  | Newstate         | C  | C | 6 |
0.3  | Newexten         | C  | C | 6 | Application=AGI
1.0  | UserEvent        | C  | C | 6 | UserEvent=IvrStep; Step=welcome
2.0  | UserEvent        | C  | C | 6 | UserEvent=IvrStep; Step=dialect:yue; var.CUSTOMER_ID=4711
3.0  | QueueCallerJoin  | C  | C | 6 | Queue=support-yue; Position=1; Count=1; var.CUSTOMER_ID=4711
"""

RING_A1 = """
3.1  | Newchannel       | A1 | C | 0 | Channel=PJSIP/agent-1001-00000002
3.1  | AgentCalled      | C  | C | 6 | Queue=support-yue; Interface=PJSIP/1001; MemberName=agent-1001; DestUniqueid=A1
3.1  | DialBegin        | C  | C | 6 | DestUniqueid=A1; DialString=1001
3.2  | DialState        | C  | C | 6 | DestUniqueid=A1; DialStatus=RINGING
"""

ANSWERED = (
    ARRIVE
    + RING_A1
    + """
9.0  | DialEnd          | C  | C | 6 | DestUniqueid=A1; DialStatus=ANSWER
9.0  | Newstate         | A1 | C | 6 |
9.0  | QueueCallerLeave | C  | C | 6 | Queue=support-yue; Count=0; Position=1
9.0  | AgentConnect     | C  | C | 6 | Queue=support-yue; Interface=PJSIP/1001; MemberName=agent-1001; HoldTime=6; RingTime=6; DestUniqueid=A1
9.1  | BridgeEnter      | C  | C | 6 | BridgeUniqueid=B1; BridgeNumChannels=1
9.1  | BridgeEnter      | A1 | C | 6 | BridgeUniqueid=B1; BridgeNumChannels=2
69.0 | AgentComplete    | C  | C | 6 | Queue=support-yue; HoldTime=6; TalkTime=60; Reason=caller; DestUniqueid=A1
69.0 | BridgeLeave      | C  | C | 6 | BridgeUniqueid=B1
69.0 | Hangup           | C  | C | 6 | Cause=16; Cause-txt=Normal Clearing
69.1 | BridgeLeave      | A1 | C | 6 | BridgeUniqueid=B1
69.1 | Hangup           | A1 | C | 6 | Cause=16
"""
)

ABANDON_AT_31 = (
    ARRIVE
    + RING_A1
    + """
31.0 | QueueCallerAbandon | C  | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=28
31.0 | QueueCallerLeave   | C  | C | 6 | Queue=support-yue; Count=0; Position=1
31.0 | DialEnd            | C  | C | 6 | DestUniqueid=A1; DialStatus=CANCEL
31.0 | Hangup             | A1 | C | 0 | Cause=26
31.1 | Hangup             | C  | C | 6 | Cause=16
"""
)

TIMEOUT = (
    ARRIVE
    + RING_A1
    + """
33.0 | QueueCallerAbandon | C  | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=30
33.0 | QueueCallerLeave   | C  | C | 6 | Queue=support-yue; Count=0; Position=1
33.0 | Hangup             | A1 | C | 0 | Cause=26
33.0 | UserEvent          | C  | C | 6 | UserEvent=QueueResult; Queue=support-yue; Status=TIMEOUT
40.0 | Hangup             | C  | C | 6 | Cause=16
"""
)

# TIMEOUT in support-yue, then the dialplan sends the caller on to support-zh.
OVERFLOW = (
    ARRIVE
    + """
33.0 | QueueCallerAbandon | C  | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=30
33.0 | QueueCallerLeave   | C  | C | 6 | Queue=support-yue; Count=0; Position=1
33.0 | UserEvent          | C  | C | 6 | UserEvent=QueueResult; Queue=support-yue; Status=TIMEOUT
33.1 | QueueCallerJoin    | C  | C | 6 | Queue=support-zh; Position=1; Count=1
"""
)

OVERFLOW_ANSWERED = (
    OVERFLOW
    + """
33.2 | Newchannel       | A2 | C | 0 | Channel=PJSIP/agent-2001-00000003
33.2 | AgentCalled      | C  | C | 6 | Queue=support-zh; Interface=PJSIP/2001; MemberName=agent-2001; DestUniqueid=A2
38.0 | QueueCallerLeave | C  | C | 6 | Queue=support-zh; Count=0; Position=1
38.0 | AgentConnect     | C  | C | 6 | Queue=support-zh; Interface=PJSIP/2001; MemberName=agent-2001; HoldTime=5; RingTime=5; DestUniqueid=A2
98.0 | AgentComplete    | C  | C | 6 | Queue=support-zh; HoldTime=5; TalkTime=60; Reason=agent; DestUniqueid=A2
98.0 | Hangup           | A2 | C | 6 | Cause=16
98.1 | Hangup           | C  | C | 6 | Cause=16
"""
)

OVERFLOW_ABANDONED = (
    OVERFLOW
    + """
50.0 | QueueCallerAbandon | C | C | 6 | Queue=support-zh; Position=1; OriginalPosition=1; HoldTime=17
50.0 | QueueCallerLeave   | C | C | 6 | Queue=support-zh; Count=0; Position=1
50.1 | Hangup             | C | C | 6 | Cause=16
"""
)


def scenario(text: str) -> list[AMIEvent]:
    return ami_table(text)


# -- outcomes ----------------------------------------------------------------------------


def test_answered_call_has_every_field() -> None:
    tracker, records = replay(scenario(ANSWERED))
    assert len(records) == 3  # arrival, agent connected, final
    provisional, connected, record = records
    assert connected.outcome is Outcome.IN_PROGRESS
    assert connected.agent == "agent-1001" and connected.ended_at is None
    assert provisional.agent is None
    assert provisional.outcome is Outcome.IN_PROGRESS
    assert provisional.arrived_at == T0
    assert provisional.caller_number == "13800138000"
    assert provisional.ended_at is None
    assert record.outcome is Outcome.ANSWERED
    assert record.linkedid == "C"
    assert record.caller_uniqueid == "C"
    assert record.caller_channel == "PJSIP/trunk-00000001"
    assert record.caller_e164 == "+8613800138000"
    assert record.caller_name == "Zhang San"
    assert record.customer_id == 4711
    assert record.ivr_path == ["welcome", "dialect:yue"]
    assert (record.arrived_at, record.queued_at) == (T0, T0 + 3)
    assert (record.answered_at, record.ended_at) == (T0 + 9, T0 + 69.1)
    assert record.wait_seconds == 6.0
    assert record.talk_seconds == 60.0  # AgentComplete TalkTime
    assert (record.queue, record.queues) == ("support-yue", ["support-yue"])
    assert (record.agent, record.agent_interface) == ("agent-1001", "PJSIP/1001")
    assert record.hangup_cause == 16
    assert record.queue_status is None
    assert record.merged_into is None
    assert tracker.stats["calls_closed"] == 1
    assert tracker.stats["skipped"] == 0


def test_provisional_record_is_a_snapshot() -> None:
    """The writer may hold the provisional record in a queue: it must not change."""
    events = scenario(ANSWERED)
    tracker = CallTracker()
    provisional = tracker.feed(events[0])[0]
    for event in events[1:]:
        tracker.feed(event)
    assert provisional.outcome is Outcome.IN_PROGRESS
    assert provisional.ivr_path == [] and provisional.queues == []
    assert provisional.answered_at is None


def test_real_abandon() -> None:
    record = final(scenario(ABANDON_AT_31))
    assert record.outcome is Outcome.ABANDONED
    assert record.wait_seconds == 28.0  # 31.0 (abandon) - 3.0 (join); HoldTime agrees
    assert record.answered_at is None and record.talk_seconds is None
    assert record.agent is None
    assert record.hangup_cause == 16
    assert record.ended_at == T0 + 31.1


def test_short_abandon_uses_the_threshold() -> None:
    text = (
        ARRIVE
        + """
    6.5 | QueueCallerAbandon | C | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=3
    6.5 | QueueCallerLeave   | C | C | 6 | Queue=support-yue; Count=0; Position=1
    6.6 | Hangup             | C | C | 6 | Cause=16
    """
    )
    assert final(scenario(text)).outcome is Outcome.SHORT_ABANDONED
    assert final(scenario(text)).wait_seconds == 3.5
    assert final(scenario(text), short_abandon_seconds=3.0).outcome is Outcome.ABANDONED


def test_abandon_without_queue_events_at_hangup() -> None:
    """Queue events lost: the caller leg went while still queued, so it is an abandon."""
    text = (
        ARRIVE
        + """
    20.0 | Hangup | C | C | 6 | Cause=16
    """
    )
    record = final(scenario(text))
    assert record.outcome is Outcome.ABANDONED
    assert record.wait_seconds == 17.0


def test_timeout_is_not_an_abandon() -> None:
    record = final(scenario(TIMEOUT))
    assert record.outcome is Outcome.TIMEOUT
    assert record.queue_status == "TIMEOUT"
    assert record.wait_seconds == 30.0  # left the queue at 33.0, not the hangup at 40.0
    assert record.ended_at == T0 + 40.0


@pytest.mark.parametrize(
    "status", ["FULL", "JOINEMPTY", "JOINUNAVAIL", "LEAVEEMPTY", "LEAVEUNAVAIL", "WITHDRAW"]
)
def test_overflow_statuses(status: str) -> None:
    joined = status.startswith("LEAVE") or status == "WITHDRAW"
    text = ARRIVE if joined else ARRIVE.replace("QueueCallerJoin ", "NotAJoin ")
    if joined:
        text += """
        8.0 | QueueCallerAbandon | C | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=5
        8.0 | QueueCallerLeave   | C | C | 6 | Queue=support-yue; Count=0; Position=1
        """
    text += f"""
    8.0 | UserEvent | C | C | 6 | UserEvent=QueueResult; Queue=support-yue; Status={status}
    9.0 | Hangup    | C | C | 6 | Cause=16
    """
    record = final(scenario(text))
    assert record.outcome is Outcome.OVERFLOW
    assert record.queue_status == status
    assert record.queue == "support-yue"
    assert record.queues == ["support-yue"]
    assert record.wait_seconds == (5.0 if joined else None)


def test_overflow_then_answered_in_second_queue() -> None:
    record = final(scenario(OVERFLOW_ANSWERED))
    assert record.outcome is Outcome.ANSWERED
    assert record.queues == ["support-yue", "support-zh"]
    assert record.queue == "support-zh"
    assert record.queue_status is None  # the status belongs to the last queue only
    assert record.wait_seconds == 35.0  # first join (3.0) to answer (38.0)
    assert record.agent == "agent-2001"
    assert record.talk_seconds == 60.0


def test_overflow_then_abandoned_in_second_queue() -> None:
    record = final(scenario(OVERFLOW_ABANDONED))
    assert record.outcome is Outcome.ABANDONED
    assert record.queues == ["support-yue", "support-zh"]
    assert record.wait_seconds == 47.0  # 3.0 -> 50.0 across both queues


def test_overflow_without_queue_result_event() -> None:
    """A dialplan without the QueueResult UserEvent: the second join shows it was no abandon."""
    text = (
        OVERFLOW.replace("UserEvent=QueueResult", "UserEvent=SomethingElse")
        + """
    35.0 | UserEvent | C | C | 6 | UserEvent=QueueResult; Queue=support-zh; Status=JOINEMPTY
    36.0 | Hangup    | C | C | 6 | Cause=16
    """
    )
    record = final(scenario(text))
    assert record.outcome is Outcome.OVERFLOW
    assert record.queue_status == "JOINEMPTY"


def test_timeout_then_timeout_again_in_the_same_queue() -> None:
    text = (
        TIMEOUT.replace("40.0 | Hangup", "39.0 | Ignored")
        + """
    41.0 | QueueCallerJoin    | C | C | 6 | Queue=support-yue; Position=1; Count=1
    71.0 | QueueCallerAbandon | C | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=30
    71.0 | QueueCallerLeave   | C | C | 6 | Queue=support-yue; Count=0; Position=1
    71.0 | UserEvent          | C | C | 6 | UserEvent=QueueResult; Queue=support-yue; Status=TIMEOUT
    72.0 | Hangup             | C | C | 6 | Cause=16
    """
    )
    record = final(scenario(text))
    assert record.outcome is Outcome.TIMEOUT
    assert record.queues == ["support-yue"]  # no consecutive duplicates
    assert record.wait_seconds == 68.0


def test_ivr_only_and_failed() -> None:
    ivr = """
    0.0 | Newchannel | C | C | 4 | Channel=PJSIP/trunk-1; CallerIDNum=02088886666
    0.1 | Newstate   | C | C | 6 |
    1.0 | UserEvent  | C | C | 6 | UserEvent=IvrStep; Step=opening-hours
    9.0 | Hangup     | C | C | 6 | Cause=16
    """
    record = final(scenario(ivr))
    assert record.outcome is Outcome.IVR_ONLY
    assert record.caller_e164 == "+862088886666"
    assert record.ivr_path == ["opening-hours"]
    assert record.queue is None and record.wait_seconds is None

    failed = """
    0.0 | Newchannel | C | C | 4 | Channel=PJSIP/trunk-1; CallerIDNum=13800138000
    0.5 | Hangup     | C | C | 4 | Cause=21; Cause-txt=Call Rejected
    """
    record = final(scenario(failed))
    assert record.outcome is Outcome.FAILED
    assert record.hangup_cause == 21


def test_caller_up_seen_on_any_snapshot_without_newstate() -> None:
    text = """
    0.0 | Newchannel | C | C | 4 | CallerIDNum=13800138000
    1.0 | UserEvent  | C | C | 6 | UserEvent=IvrStep; Step=welcome
    2.0 | Hangup     | C | C | 6 | Cause=16
    """
    assert final(scenario(text)).outcome is Outcome.IVR_ONLY


# -- agents ------------------------------------------------------------------------------


def test_ring_no_answer_then_another_agent_answers() -> None:
    text = (
        ARRIVE
        + RING_A1
        + """
    18.1 | DialEnd           | C  | C | 6 | DestUniqueid=A1; DialStatus=NOANSWER
    18.1 | AgentRingNoAnswer | C  | C | 6 | Queue=support-yue; Interface=PJSIP/1001; MemberName=agent-1001; RingTime=15000
    18.1 | Hangup            | A1 | C | 0 | Cause=19
    20.0 | Newchannel        | A2 | C | 0 | Channel=PJSIP/agent-1002-00000003
    20.0 | AgentCalled       | C  | C | 6 | Queue=support-yue; Interface=PJSIP/1002; MemberName=agent-1002; DestUniqueid=A2
    24.0 | QueueCallerLeave  | C  | C | 6 | Queue=support-yue; Count=0; Position=1
    24.0 | AgentConnect      | C  | C | 6 | Queue=support-yue; Interface=PJSIP/1002; MemberName=agent-1002; HoldTime=21; DestUniqueid=A2
    30.0 | Hangup            | A2 | C | 6 | Cause=16
    30.2 | Hangup            | C  | C | 6 | Cause=16
    """
    )
    records = replay(scenario(text))[1]
    assert len(records) == 3  # arrival, connected; the first agent's hangup did not end it
    record = records[-1]
    assert record.outcome is Outcome.ANSWERED
    assert (record.agent, record.agent_interface) == ("agent-1002", "PJSIP/1002")
    assert record.wait_seconds == 21.0
    assert record.talk_seconds == 6.0  # no AgentComplete: agent leg hangup - answer
    assert record.ended_at == T0 + 30.2


def test_talk_ends_with_the_first_leg_to_hang_up() -> None:
    text = ANSWERED.replace("AgentComplete", "NotComplete")
    text = text.replace("69.0 | Hangup           | C", "40.5 | Hangup           | C")
    record = final(scenario(text))
    assert record.talk_seconds == 31.5  # caller left at 40.5, answered at 9.0
    assert record.ended_at == T0 + 69.1


def test_talk_time_header_is_refined_by_timestamps_and_wins_when_they_disagree() -> None:
    # Lab recording concurrent20.ami: 0.5 s of talk reported as TalkTime: 0.
    short = ANSWERED.replace("69.0 | AgentComplete", "9.5  | AgentComplete").replace(
        "TalkTime=60", "TalkTime=0"
    )
    assert final(interleave(scenario(short))).talk_seconds == 0.5
    # Timestamps 2 s away from Asterisk's count (a late AgentComplete): the count wins.
    late = ANSWERED.replace("TalkTime=60", "TalkTime=58")
    assert final(scenario(late)).talk_seconds == 58.0


def test_fractional_times_are_exact_to_the_microsecond() -> None:
    text = """
    0.123456  | Newchannel       | C  | C | 6 | CallerIDNum=13800138000
    2.000001  | QueueCallerJoin  | C  | C | 6 | Queue=q
    2.5       | Newchannel       | A1 | C | 0 |
    14.345678 | QueueCallerLeave | C  | C | 6 | Queue=q
    14.345678 | AgentConnect     | C  | C | 6 | Queue=q; MemberName=m; Interface=PJSIP/1; HoldTime=12; DestUniqueid=A1
    99.999999 | Hangup           | A1 | C | 6 | Cause=16
    100.5     | Hangup           | C  | C | 6 | Cause=16
    """
    record = final(scenario(text))
    assert record.wait_seconds == 12.345677
    assert record.talk_seconds == 85.654321


def test_duplicated_events_change_nothing() -> None:
    events = scenario(ANSWERED)
    doubled = [e for event in events for e in (event, event)]
    tracker, records = replay(doubled)
    assert records[-1].as_dict() == final(events).as_dict()
    assert len(records) == 3  # as many as without the duplicates
    assert tracker.stats["skipped.duplicate"] == 9  # the rest are idempotent


# -- merge, resync -----------------------------------------------------------------------

# The agent consults a supervisor (a new call, X), then completes the attended transfer:
# the supervisor's leg S enters the customer's bridge and takes the older Linkedid C.
TRANSFER = (
    ANSWERED.split("69.0 | AgentComplete")[0]
    + """
20.0 | Newchannel  | X  | X | 4 | Channel=PJSIP/agent-1001-00000009; CallerIDNum=1001
20.1 | Newchannel  | S  | X | 0 | Channel=PJSIP/super-3001-0000000a
25.0 | Newstate    | S  | X | 6 |
25.1 | Newstate    | X  | X | 6 |
30.0 | BridgeEnter | S  | C | 6 | BridgeUniqueid=B1
30.0 | Hangup      | A1 | C | 6 | Cause=16
30.0 | Hangup      | X  | X | 6 | Cause=16
90.0 | Hangup      | C  | C | 6 | Cause=16
90.1 | Hangup      | S  | C | 6 | Cause=16
"""
)


def test_linkedid_merge_keeps_the_older_call() -> None:
    tracker, records = replay(scenario(TRANSFER))
    by_id = finals(records)
    assert set(by_id) == {"C", "X"}
    consult = by_id["X"]
    assert consult.merged_into == "C"
    assert consult.outcome is Outcome.IVR_ONLY  # the consult leg itself was just a call
    assert consult.ended_at == T0 + 30.0
    record = by_id["C"]
    assert record.outcome is Outcome.ANSWERED
    assert record.ended_at == T0 + 90.1  # S (moved in from X) was the last leg
    assert record.talk_seconds == 21.0  # the first agent left at 30.0
    assert tracker.stats["merges"] == 1
    assert tracker.stats["calls_open"] == 0 and tracker.stats["legs_open"] == 0


def test_merge_direction_does_not_depend_on_which_side_reports_it() -> None:
    """Even if the older call's leg is shown under the newer id, the older id is kept."""
    text = """
    0.0 | Newchannel  | C | C | 6 | CallerIDNum=13800138000
    5.0 | Newchannel  | X | X | 6 | CallerIDNum=1001
    6.0 | BridgeEnter | C | X | 6 |
    7.0 | Hangup      | X | X | 6 | Cause=16
    8.0 | Hangup      | C | X | 6 | Cause=16
    """
    records = replay(scenario(text))[1]
    by_id = finals(records)
    assert by_id["X"].merged_into == "C"
    assert by_id["C"].ended_at == T0 + 8.0
    assert by_id["C"].merged_into is None


def test_resync_hands_calls_that_ended_while_disconnected_to_the_record() -> None:
    """What AMI missed is settled from Asterisk's record (hotline/record/), not guessed:
    the answered call below used to be closed ``answered`` with a talk time stretched to
    the resync, and a queued one ``abandoned`` whatever the queue did meanwhile."""
    answered = scenario(ANSWERED.split("69.0 | AgentComplete")[0])
    queued = rekey(scenario(ARRIVE), "-2", shift=1.0)
    resync = ami_table("""
    t     | Event               | Uniqueids | Linkedids
    40.0  | HotlineDisconnected |           |
    100.0 | HotlineResync       | C-2       | C-2
    """)
    tracker, records = replay(interleave(answered, queued) + resync)
    assert all(r.outcome is Outcome.IN_PROGRESS and r.settled_by is None for r in records)
    assert records[-1].linkedid == "C" and records[-1].ended_at == T0 + 100.0
    assert tracker.take_handovers() == ["C"]
    assert tracker.take_handovers() == []  # drained
    assert [r.linkedid for r in tracker.open_calls()] == ["C-2"]
    assert tracker.stats["disconnects"] == 1 and tracker.stats["resyncs"] == 1

    # C-2 was open across the gap: its end goes to the record too.
    later = rekey(ami_table("101.0 | Hangup | C | C | 6 | Cause=16"), "-2")
    record = replay(later, tracker)[1][-1]
    assert record.outcome is Outcome.IN_PROGRESS and record.ended_at == T0 + 101.0
    assert tracker.take_handovers() == ["C-2"]
    assert tracker.stats["handed_to_record"] == 2


def test_a_call_without_a_gap_is_settled_live() -> None:
    tracker, records = replay(scenario(ANSWERED))
    assert records[-1].outcome is Outcome.ANSWERED and records[-1].settled_by == "live"
    assert tracker.take_handovers() == []


SHUTDOWN_WHILE_QUEUED = """
31.0 | SoftHangupRequest  | C  | C | 6 | Cause=4
31.0 | QueueCallerAbandon | C  | C | 6 | Queue=support-yue; Position=1; OriginalPosition=1; HoldTime=28
31.0 | QueueCallerLeave   | C  | C | 6 | Queue=support-yue; Count=0; Position=1
31.0 | DialEnd            | C  | C | 6 | DestUniqueid=A1; DialStatus=CANCEL
31.0 | Hangup             | A1 | C | 0 | Cause=26
31.1 | Hangup             | C  | C | 6 | Cause=0
"""


def test_a_shutdown_cuts_the_caller_it_is_failed_not_an_abandon() -> None:
    """``core stop`` soft-hangs every channel up (SoftHangupRequest Cause 4,
    AST_SOFTHANGUP_SHUTDOWN) and app_queue logs each queued caller as an abandon; AMI's
    Shutdown event comes later. An ordinary hangup's SoftHangupRequest says 16."""
    record = final(scenario(ARRIVE + RING_A1 + SHUTDOWN_WHILE_QUEUED))
    assert (record.outcome, record.end_reason) == (Outcome.FAILED, "asterisk_shutdown")
    ordinary = final(
        scenario(ARRIVE + RING_A1 + SHUTDOWN_WHILE_QUEUED.replace("Cause=4", "Cause=16"))
    )
    assert (ordinary.outcome, ordinary.end_reason) == (Outcome.ABANDONED, None)


def test_a_shutdown_leaves_an_answered_call_answered_with_the_reason() -> None:
    talking = ANSWERED.split("69.0 | AgentComplete")[0]
    cut = """
40.0 | SoftHangupRequest | C  | C | 6 | Cause=4
40.0 | SoftHangupRequest | A1 | C | 6 | Cause=4
40.1 | Hangup            | A1 | C | 6 | Cause=0
40.1 | Hangup            | C  | C | 6 | Cause=0
"""
    record = final(scenario(talking + cut))
    assert (record.outcome, record.end_reason, record.agent) == (
        Outcome.ANSWERED,
        "asterisk_shutdown",
        "agent-1001",
    )


def test_resync_keeps_a_call_with_a_live_leg_and_drops_dead_legs() -> None:
    events = scenario(ANSWERED.split("69.0 | AgentComplete")[0])
    resync = ami_table("""
    t     | Event         | Uniqueids
    50.0  | HotlineResync | C
    60.0  | Hangup        |
    """)
    resync[1].headers.update(Uniqueid="C", Linkedid="C", Cause="16")
    tracker, records = replay(events + resync)
    record = records[-1]
    assert record.ended_at == T0 + 60.0
    assert record.talk_seconds == 41.0  # the agent leg was gone by the resync at 50.0
    # a leg vanished unseen: the record settles the outcome
    assert record.outcome is Outcome.IN_PROGRESS and tracker.take_handovers() == ["C"]


def test_resync_without_its_list_closes_nothing() -> None:
    events = scenario(ARRIVE) + ami_table("50.0 | HotlineResync | | | |")
    tracker, records = replay(events)
    assert len(records) == 1 and tracker.stats["calls_open"] == 1
    assert tracker.stats["skipped.bad_field"] == 1


def test_core_show_channel_adopts_a_call_in_queue() -> None:
    """After a reconnect the bridge may feed CoreShowChannel items: the call is adopted."""
    text = """
    t    | Event           | Uniqueid | Linkedid | ChannelState | more
    50.0 | CoreShowChannel | C        | C        | 6  | CallerIDNum=13800138000; Application=Queue; ApplicationData=support-yue,,,,600; Duration=00:00:40; var.CUSTOMER_ID=99
    51.0 | Newchannel      | A1       | C        | 0  |
    55.0 | AgentConnect    | C        | C        | 6  | Queue=support-yue; MemberName=m; Interface=PJSIP/1; HoldTime=45; DestUniqueid=A1
    65.0 | Hangup          | A1       | C        | 6  | Cause=16
    65.0 | Hangup          | C        | C        | 6  | Cause=16
    """
    tracker, records = replay(scenario(text))
    record = records[-1]
    assert record.arrived_at == T0 + 10.0
    assert record.queued_at == T0 + 10.0  # from HoldTime
    # adopted half-way: the row stays open for the record, with what was seen
    assert record.outcome is Outcome.IN_PROGRESS and tracker.take_handovers() == ["C"]
    assert record.answered_at == T0 + 55.0 and record.agent == "m"
    assert record.wait_seconds == 45.0
    assert record.customer_id == 99
    assert record.queues == ["support-yue"]


# -- robustness --------------------------------------------------------------------------


def test_garbage_is_skipped_and_counted() -> None:
    text = """
    0.0     | Newchannel      |           |           |   | CallerIDNum=1
    0.0     | Newchannel      | <unknown> | <unknown> |   |
    0.0     | Newchannel      | G         | <null>    |   |
    0.0     | Newchannel      | O         | Elsewhere | 0 |
    0.0     | Hangup          | Stranger  | Stranger  | 6 | Cause=16
    0.0     |                 |           |           |   |
    0.5     | Newchannel      | C         | C         | 4 | CallerIDNum=<unknown>; CallerIDName=<unknown>; var.CUSTOMER_ID=abc
    garbage | Newstate        | C         | C         | 6 |
    1.0     | UserEvent       | C         | C         | 6 | UserEvent=QueueResult; Queue=q; Status=
    1.0     | UserEvent       | C         | C         | 6 | UserEvent=IvrStep; Step=<null>
    1.0     | UserEvent       | C         | C         | 6 | UserEvent=Unrelated
    2.0     | QueueCallerJoin | C         | C         | 6 | Queue=<unknown>
    3.0     | QueueCallerLeave| C         | C         | 6 |
    4.0     | AgentConnect    | C         | C         | 6 | HoldTime=NaN
    5.0     | Hangup          | C         | C         | 6 | Cause=sixteen
    5.0     | Hangup          | C         | C         | 6 | Cause=16
    """
    tracker, records = replay(scenario(text))
    record = records[-1]
    assert record.linkedid == "C"
    assert record.caller_number == "" and record.caller_e164 is None and record.caller_name == ""
    assert record.customer_id is None
    assert record.hangup_cause is None
    assert record.outcome is Outcome.ANSWERED  # an AgentConnect with no queue still answers
    stats = tracker.stats
    assert stats["skipped.no_uniqueid"] == 2
    assert stats["skipped.no_linkedid"] == 1
    assert stats["skipped.orphan_leg"] == 1
    assert stats["skipped.unknown_leg"] == 1
    assert stats["skipped.duplicate"] == 1
    assert stats["skipped.bad_field"] == 4
    assert stats.get("skipped.internal_error", 0) == 0
    assert stats["calls_open"] == 0


def test_customer_id_must_be_an_integer_string() -> None:
    for raw, expected in [("123", 123), (" 42 ", 42), ("1_000", None), ("-3", None), ("", None)]:
        text = f"""
        0.0 | Newchannel | C | C | 6 | var.CUSTOMER_ID={raw}
        1.0 | Hangup     | C | C | 6 | Cause=16
        """
        assert final(scenario(text)).customer_id == expected, raw


def test_mutated_streams_never_raise() -> None:
    """Headers dropped or replaced by junk at random: skips, never an exception."""
    rng = random.Random(20240601)
    base = scenario(OVERFLOW_ANSWERED) + rekey(scenario(TRANSFER), "-t", shift=0.5)
    junk = ["", "<unknown>", "<null>", "C", "X", "A1", "-1", "1e400", "nan", "é\x00"]
    for _ in range(300):
        events = []
        for event in base:
            headers = dict(event.headers)
            for key in list(headers):
                roll = rng.random()
                if roll < 0.05:
                    del headers[key]
                elif roll < 0.10:
                    headers[key] = rng.choice(junk)
            events.append(AMIEvent(event.name, headers, event.chanvars))
        if rng.random() < 0.2:
            rng.shuffle(events)
        tracker, _ = replay(events)
        assert tracker.stats.get("skipped.internal_error", 0) == 0


def all_scenarios() -> list[AMIEvent]:
    streams = [
        scenario(text)
        for text in (ANSWERED, ABANDON_AT_31, TIMEOUT, OVERFLOW_ANSWERED, OVERFLOW_ABANDONED)
    ]
    streams.append(scenario(TRANSFER))
    return interleave(*(rekey(s, f"-{i}", shift=i * 2.5) for i, s in enumerate(streams)))


def test_replay_is_deterministic() -> None:
    events = all_scenarios()
    first = [r.as_dict() for r in replay(events)[1]]
    second = [r.as_dict() for r in replay(events)[1]]
    assert first == second
    outcomes = {k: r.outcome for k, r in finals(replay(events)[1]).items()}
    assert outcomes == {
        "C-0": Outcome.ANSWERED,
        "C-1": Outcome.ABANDONED,
        "C-2": Outcome.TIMEOUT,
        "C-3": Outcome.ANSWERED,
        "C-4": Outcome.ABANDONED,
        "C-5": Outcome.ANSWERED,
        "X-5": Outcome.IVR_ONLY,  # the consult call, merged into C-5
    }


def test_continue_after_an_answered_call_stays_answered() -> None:
    text = (
        ANSWERED.replace("69.0 | Hangup           | C", "80.0 | Hangup           | C")
        + """
    69.2 | UserEvent | C | C | 6 | UserEvent=QueueResult; Queue=support-yue; Status=CONTINUE
    69.2 | UserEvent | C | C | 6 | UserEvent=QueueResult; Queue=support-yue; Status=CONTINUE
    70.0 | UserEvent | C | C | 6 | UserEvent=IvrStep; Step=survey
    """
    )
    tracker, records = replay(interleave(scenario(text)))  # rows sorted by time
    record = records[-1]
    assert record.outcome is Outcome.ANSWERED
    assert record.queue_status == "CONTINUE"
    assert record.ivr_path == ["welcome", "dialect:yue", "survey"]
    assert record.ended_at == T0 + 80.0
    assert tracker.stats["skipped.duplicate"] == 1


def test_partial_replays_never_raise() -> None:
    """The bridge may attach to a busy Asterisk: drop the first N events, for every N."""
    events = all_scenarios()
    for n in range(len(events) + 1):
        tracker, records = replay(events[n:])
        stats = tracker.stats
        assert stats.get("skipped.internal_error", 0) == 0, n
        assert stats["calls_opened"] == stats["calls_closed"] + stats["calls_open"], n
        for record in records:
            assert (record.outcome is Outcome.IN_PROGRESS) == (record.ended_at is None), n


def test_closed_calls_are_evicted() -> None:
    tracker, _ = replay(all_scenarios())
    assert tracker.open_calls() == []
    assert tracker.stats["calls_open"] == 0 and tracker.stats["legs_open"] == 0
    assert tracker._book.aliases == {}


def test_open_calls_are_snapshots() -> None:
    tracker, _ = replay(scenario(ARRIVE))
    (record,) = tracker.open_calls()
    assert record.outcome is Outcome.IN_PROGRESS and record.queues == ["support-yue"]
    record.queues.append("tampered")
    assert tracker.open_calls()[0].queues == ["support-yue"]


def test_public_surface() -> None:
    assert set(tracker_module.__all__) == {
        "CallPhase",
        "CallTracker",
        "SkipReason",
    }
    handled = CallTracker().handled_events
    assert {"Newchannel", "Hangup", "QueueCallerAbandon", "UserEvent"} <= handled
    assert "VarSet" not in handled and "Newexten" not in handled


# -- recorded lab streams ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.rglob("*.ami")), ids=lambda p: str(p.relative_to(FIXTURES))
)
def test_recorded_fixture(path: Path) -> None:
    """Replays a recorded stream whole, then with each prefix dropped.

    With ``<name>.expected.json`` (a list of ``CallRecord.as_dict()`` of the final
    records, by linkedid order of completion) the records must match it exactly.
    """
    events = read_ami(path)
    tracker, records = replay(events)
    assert tracker.stats.get("skipped.internal_error", 0) == 0
    closed = [r.as_dict() for r in records if r.outcome is not Outcome.IN_PROGRESS]
    expected = path.with_suffix(".expected.json")
    if expected.exists():  # tests/support/golden.py's form, or a bare list of records
        data = json.loads(expected.read_text(encoding="utf-8"))
        assert closed == (data["calls"] if isinstance(data, dict) else data)
    for n in range(1, len(events)):
        tracker, _ = replay(events[n:])
        assert tracker.stats.get("skipped.internal_error", 0) == 0, n


def test_routing_decision_and_survey_reach_the_record() -> None:
    identified = (
        "UserEvent=CustomerIdentified; CustomerID=4711; Candidates=1; Dialect=cantonese; "
        "DialectSource=customer; QueuePrio=10; Priority=7"
    )
    survey = (
        "69.5 | UserEvent        | C  | C | 6 | UserEvent=SurveyResult; Score=2\n"
        "69.6 | UserEvent        | C  | C | 6 | UserEvent=SurveyResult; Score=9\n"
    )
    text = (
        ANSWERED.replace("UserEvent=IvrStep; Step=welcome", identified)
        .replace(
            "QueueCallerJoin  | C  | C | 6 | Queue=support-yue;",
            "QueueCallerJoin  | C  | C | 6 | var.DIALECT=cantonese; Queue=support-yue;",
        )
        .replace("69.0 | BridgeLeave", survey + "69.0 | BridgeLeave", 1)
    )
    assert "SurveyResult" in text and "CustomerIdentified" in text
    events = scenario(text)
    for event in events:  # the table splits on ';', so set the joined reasons here
        if event.get("UserEvent") == "CustomerIdentified":
            event.headers["Reasons"] = "customer prefers cantonese; tier vip1 gives 10"
    record = final(events)
    assert record.outcome is Outcome.ANSWERED
    assert record.dialect == "cantonese"
    assert record.route_source == "customer"
    assert record.priority == 10
    assert record.route_reasons == ["customer prefers cantonese", "tier vip1 gives 10"]
    assert record.candidates == 1
    assert record.survey_score == 2  # the garbage score 9 was skipped


def test_account_manager_answering_before_the_queue_is_answered() -> None:
    text = (
        ARRIVE.split("3.0  | QueueCallerJoin")[0]
        + """
3.0  | UserEvent        | C  | C | 6 | UserEvent=AccountManager; Agent=1004
3.1  | Newchannel       | M  | C | 0 | Channel=PJSIP/agent-1004-0000000a
3.1  | DialBegin        | C  | C | 6 | DestUniqueid=M; DestChannel=PJSIP/agent-1004-0000000a
5.0  | DialEnd          | C  | C | 6 | DestUniqueid=M; DestChannel=PJSIP/agent-1004-0000000a; DialStatus=ANSWER
35.0 | Hangup           | M  | C | 6 | Cause=16
35.1 | Hangup           | C  | C | 6 | Cause=16
"""
    )
    record = final(scenario(text))
    assert record.outcome is Outcome.ANSWERED
    assert record.agent == "1004"
    assert record.agent_interface == "PJSIP/agent-1004"
    assert record.answered_at == T0 + 5.0
    assert record.talk_seconds == 30.0
    assert record.queue is None


def test_account_manager_not_answering_leaves_it_to_the_queue() -> None:
    text = (
        ARRIVE.replace("3.0  | QueueCallerJoin", "2.9  | UserEvent        | C  | C | 6 | "
                       "UserEvent=AccountManager; Agent=1004\n2.95 | DialEnd          | C  | C | 6 | "
                       "DestUniqueid=M; DialStatus=NOANSWER\n3.0  | QueueCallerJoin")
    )  # fmt: skip
    record = final(scenario(text + "40.0 | Hangup | C | C | 6 | Cause=16\n"))
    assert record.outcome is Outcome.ABANDONED
    assert record.agent is None
