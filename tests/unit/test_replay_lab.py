"""Replays of AMI streams recorded from the real lab (``hotline lab record``).

Each stream is what Asterisk 22.10 sent while SIPp played a known scenario (described
in the ``.json`` beside it), so the expectations below come from the scenario, not from
the tracker's own output (the whole output is pinned by ``test_golden_replays``). The
same stream must give the same call log whole, in 1-byte reads, at random split points,
with garbage frames mixed in, with a raising subscriber beside the tracker, and written
twice to the database. The first seven recordings sit at the top of the folder; later
families (transfer, ringing, reject, overflow, …) each have a sub-folder (docs/lab.md).
"""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import select

from hotline.ami.events import AMIEvent
from hotline.ami.protocol import SafeAMIProtocol
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.tracker import CallTracker
from hotline.calls.writer import CallLogWriter
from hotline.db.models import CallLog
from hotline.db.session import make_engine, session_factory, upgrade
from tests.support.replay import FIXTURES, events_from_bytes, final_records, read_ami

# "answered", "transfer/blind_to_agent", …: the path under FIXTURES without ".ami"
SCENARIOS = sorted(str(p.relative_to(FIXTURES).with_suffix("")) for p in FIXTURES.rglob("*.ami"))


def meta(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def finals(name: str) -> list[CallRecord]:
    return final_records(read_ami(FIXTURES / f"{name}.ami"))


def only(name: str) -> CallRecord:
    records = finals(name)
    assert len(records) == 1, [r.linkedid for r in records]
    return records[0]


def test_every_scenario_is_recorded() -> None:
    assert set(SCENARIOS) >= {
        "answered", "abandoned", "short_abandoned", "timeout",
        "rna_then_answer", "ivr_only", "concurrent20",
    }  # fmt: skip


def test_answered() -> None:
    m = meta("answered")
    r = only("answered")
    assert r.outcome == Outcome.ANSWERED
    assert r.agent == m["agent"] == "1001"
    assert r.agent_interface == "PJSIP/agent-1001"
    assert r.queue == m["queue"]
    assert r.caller_name == "张伟客户"
    assert r.caller_e164 == "+8613800138000"
    assert r.wait_seconds == pytest.approx(m["ring_seconds"], abs=0.5)
    assert r.talk_seconds == pytest.approx(m["talk_seconds"], abs=0.5)
    assert r.arrived_at <= r.queued_at <= r.answered_at <= r.ended_at


def test_abandoned() -> None:
    r = only("abandoned")
    assert r.outcome == Outcome.ABANDONED
    assert r.agent is None
    assert r.wait_seconds == pytest.approx(meta("abandoned")["hold_seconds"], abs=0.5)
    assert r.caller_e164 == "+8659212345678"


def test_short_abandoned() -> None:
    r = only("short_abandoned")
    assert r.outcome == Outcome.SHORT_ABANDONED
    assert r.wait_seconds < 5


def test_timeout_is_not_abandoned() -> None:
    r = only("timeout")
    assert r.outcome == Outcome.TIMEOUT
    assert r.queue_status == "TIMEOUT"
    assert r.wait_seconds == pytest.approx(meta("timeout")["queue_timeout"], abs=0.5)


def test_first_agent_rejects_second_answers() -> None:
    r = only("rna_then_answer")
    assert r.outcome == Outcome.ANSWERED
    assert r.agent == "1004"


def test_ivr_only() -> None:
    r = only("ivr_only")
    assert r.outcome == Outcome.IVR_ONLY
    assert r.queue is None and r.queued_at is None
    assert r.ivr_path == ["welcome"]


def test_concurrent_calls_each_logged_once() -> None:
    records = finals("concurrent20")
    assert len(records) == meta("concurrent20")["calls"] == 20
    assert len({r.linkedid for r in records}) == 20
    assert {r.outcome for r in records} == {Outcome.ANSWERED}
    assert sorted(r.caller_number for r in records) == [f"1380000{n:04d}" for n in range(20)]


# -- the families: what was placed (the .json) against the rows ------------------------

# scenario → per call, in the order calls ended: (outcome, agent, queues)
FAMILY_ROWS: dict[str, list[tuple[str, str | None, list[str]]]] = {
    # a transfer keeps one Linkedid; the row keeps the first agent who answered
    "transfer/blind_to_agent": [("answered", "1001", ["cantonese"])],
    "transfer/blind_to_queue": [("answered", "1001", ["cantonese", "mandarin"])],
    "transfer/attended_to_agent": [("answered", "1001", ["cantonese"])],
    "transfer/attended_to_queue": [("answered", "1001", ["cantonese", "mandarin", "cantonese"])],
    "ringing/gone_while_ringing": [("short_abandoned", None, ["wu"])],
    "ringing/gone_while_rejected": [("abandoned", None, ["minnan"])],
    "reject/decline_then_answer": [("answered", "1002", ["sichuanese"])],
    "reject/all_reject_timeout": [("timeout", None, ["cantonese"])],
    "overflow/timeout_then_answered": [("answered", "1004", ["wu", "mandarin"])],
    "overflow/timeout_twice": [("timeout", None, ["wu", "minnan"])],
    "overflow/withdrawn": [("overflow", None, ["cantonese"])],
    "overflow/withdrawn_to_next": [("answered", "1004", ["cantonese", "mandarin"])],
    "connected/caller_hangs_up_first": [("answered", "1002", ["cantonese"])],
    "connected/paused_then_answered": [("answered", "1003", ["minnan"])],
    # the originated agent call is absorbed into the caller's (merged_into)
    "merge/bridged_from_queue": [("ivr_only", None, []), ("short_abandoned", None, ["wu"])],
    "mix/mixed_six": [
        ("short_abandoned", None, ["mandarin"]),
        ("timeout", None, ["mandarin"]),
        ("abandoned", None, ["mandarin"]),
        ("answered", "1001", ["mandarin"]),
        ("answered", "1002", ["mandarin"]),
        ("answered", "1001", ["mandarin"]),
    ],
}


def test_every_family_recording_is_checked() -> None:
    assert set(FAMILY_ROWS) == {name for name in SCENARIOS if "/" in name}


@pytest.mark.parametrize("name", sorted(FAMILY_ROWS))
def test_family_rows(name: str) -> None:
    records = finals(name)
    assert [(str(r.outcome), r.agent, r.queues) for r in records] == FAMILY_ROWS[name]
    placed = {str(c["number"]): c for c in meta(name)["calls"]}
    callers = [r for r in records if r.merged_into is None]
    assert sorted(r.caller_number for r in callers) == sorted(placed)
    for r in callers:
        call = placed[r.caller_number]
        assert r.caller_name == call["name"]
        assert r.queues[0] == call["queue"]
        assert r.arrived_at <= r.queued_at <= r.ended_at
        if "queue_timeout" in call and r.outcome == Outcome.TIMEOUT:
            # Asterisk's queue timeout runs on whole seconds from the join's second
            per_queue = len(r.queues) * call["queue_timeout"]
            assert per_queue - 1 <= r.wait_seconds <= per_queue + 0.5


def test_transfer_talk_is_the_first_agent_part() -> None:
    """Blind: 1001 talks about 1 s before transferring; attended: until 1001 hangs up (3 s)."""
    assert only("transfer/blind_to_agent").talk_seconds == pytest.approx(1, abs=0.3)
    assert only("transfer/attended_to_agent").talk_seconds == pytest.approx(3, abs=0.3)


def test_caller_hanging_up_first_ends_the_talk() -> None:
    r = only("connected/caller_hangs_up_first")
    assert r.talk_seconds == pytest.approx(2, abs=0.3)  # hold 3 s from arrival, 1 s to connect
    assert r.queue_status is None  # Queue() never returned: no QueueResult


def test_bridged_call_is_merged_into_the_caller_row() -> None:
    absorbed, kept = finals("merge/bridged_from_queue")
    assert absorbed.merged_into == kept.linkedid
    assert absorbed.caller_number == "1002"


# -- the same stream, delivered badly ---------------------------------------------------


def _split(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, 200)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("name", SCENARIOS)
def test_one_byte_reads_and_random_splits_give_the_same_log(name: str) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    whole = final_records(events_from_bytes([data]))
    bytewise = final_records(events_from_bytes([data[i : i + 1] for i in range(len(data))]))
    split = final_records(events_from_bytes(_split(data, random.Random(7))))
    assert whole and whole == bytewise == split


@pytest.mark.parametrize("name", SCENARIOS)
def test_garbage_frames_mixed_in_change_nothing(name: str) -> None:
    data = (FIXTURES / f"{name}.ami").read_bytes()
    banner, _, body = data.partition(b"\r\n")
    frames = body.split(b"\r\n\r\n")
    junk = [
        b"\xff\xfe\x00garbage\x80\x81",
        b"no colon here at all",
        b"Event: \r\nUniqueid: <null>",
        b"Event: Hangup\r\nUniqueid: <unknown>\r\nLinkedid: <unknown>",
        b"Event: Newchannel\r\nCallerIDName: \xe5\xbc",  # half a character, no ids
    ]
    rng = random.Random(11)
    mixed: list[bytes] = []
    for frame in frames:
        if rng.random() < 0.3:
            mixed.append(rng.choice(junk))
        mixed.append(frame)
    dirty = banner + b"\r\n" + b"\r\n\r\n".join(mixed)
    assert final_records(events_from_bytes([dirty])) == final_records(events_from_bytes([data]))


class _Factory:
    """What SafeAMIProtocol needs from panoramisk's Manager, and nothing more."""

    def __init__(self, sink) -> None:
        self.event_sink = sink
        self.record_stream = None
        self.dispatched: list[str] = []

    def dispatch(self, message) -> None:
        self.dispatched.append(message["Event"])


class _Transport:
    closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("name", ["answered", "concurrent20"])
def test_a_raising_subscriber_loses_no_event(name: str) -> None:
    """Through the protocol: a handler raising on every 3rd event; the tracker sees all."""
    tracker = CallTracker()
    done: dict[str, CallRecord] = {}
    seen = 0

    def sink(event: AMIEvent) -> None:
        nonlocal seen
        seen += 1
        for record in tracker.feed(event):
            if record.outcome != Outcome.IN_PROGRESS:
                done[record.linkedid] = record
        if seen % 3 == 0:
            raise RuntimeError("handler bug")

    protocol = SafeAMIProtocol(_Factory(sink))
    protocol.connection_made(_Transport())
    data = (FIXTURES / f"{name}.ami").read_bytes()
    for i in range(0, len(data), 1000):
        protocol.data_received(data[i : i + 1000])
    assert seen == len(read_ami(FIXTURES / f"{name}.ami"))
    assert list(done.values()) == finals(name)
    assert protocol.stats.handler_errors == seen // 3
    assert not protocol.closed


def test_writing_a_replay_twice_changes_nothing(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    records = [r for name in SCENARIOS for r in finals(name)]
    writer = CallLogWriter(engine)

    def snapshot() -> list[tuple[object, ...]]:
        with session_factory(engine)() as session:
            rows = session.scalars(select(CallLog).order_by(CallLog.linkedid)).all()
            return [tuple(getattr(row, c.key) for c in CallLog.__table__.columns) for row in rows]

    writer.write(records)
    first = snapshot()
    writer.write(records)
    assert snapshot() == first
    assert len(first) == len(records) == len({r.linkedid for r in records})
    engine.dispose()
