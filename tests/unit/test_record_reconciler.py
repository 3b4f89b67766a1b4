"""The reconciler against a real database (SQLite and PostgreSQL): what it settles, what it
creates, what it leaves alone, and that a second pass changes nothing.

The record is written into the ``cel`` and ``queue_log`` tables as cel_pgsql and the
realtime queue_log write it; the calls are small hand-made ones (the classification of
every outcome family from recorded lab calls is tests/unit/test_record_classify.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from hotline.calls.records import CallRecord, Outcome, SettledBy
from hotline.calls.writer import CallLogWriter
from hotline.db import make_engine, upgrade
from hotline.db.models import CallLog, Cel, QueueLog
from hotline.record import store
from hotline.record.reconciler import Reconciler

T0 = 1_800_000_000.0
CALLER = "PJSIP/trunk-000000{:02d}"
AGENT = "PJSIP/agent-1001-000000{:02d}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def reconciler(engine: Engine) -> Reconciler:
    return Reconciler(engine, CallLogWriter(engine), short_abandon_seconds=5.0)


class Record:
    """Rows written to the tables in the order Asterisk would write them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def cel(self, kind: str, at: float, uid: str, lid: str, chan: str, **kw: Any) -> None:
        values = {
            "eventtype": kind,
            "eventtime": store.naive_utc(T0 + at),
            "uniqueid": uid,
            "linkedid": lid,
            "channame": chan,
            "cid_num": kw.pop("cid_num", "13800138000"),
            "cid_name": kw.pop("cid_name", ""),
            **kw,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(Cel).values(**values))

    def line(self, at: float, uid: str, agent: str, event: str, *data: str) -> None:
        values = {f"data{i}": value for i, value in enumerate(data, start=1)}
        with self.engine.begin() as conn:
            conn.execute(
                insert(QueueLog).values(
                    time=store.naive_utc(float(int(T0 + at))),
                    callid=uid,
                    queuename="cantonese",
                    agent=agent,
                    event=event,
                    **values,
                )
            )

    def user(self, at: float, uid: str, chan: str, name: str, text: str) -> None:
        extra = json.dumps({"extra": text})
        self.cel("USER_DEFINED", at, uid, uid, chan, userdeftype=name, extra=extra)

    def hangup(self, at: float, uid: str, lid: str, chan: str, source: str) -> None:
        extra = json.dumps({"hangupcause": 16, "hangupsource": source, "dialstatus": ""})
        self.cel("HANGUP", at, uid, lid, chan, extra=extra)
        self.cel("CHAN_END", at, uid, lid, chan)

    def arrive(self, n: int) -> tuple[str, str]:
        uid, chan = f"{int(T0)}.{n}", CALLER.format(n)
        self.cel("CHAN_START", 0.0, uid, uid, chan, context="from-trunk", exten="4000")
        self.cel("ANSWER", 0.01, uid, uid, chan, appname="Answer")
        self.cel("APP_START", 0.5, uid, uid, chan, appname="Queue", appdata="cantonese,t,,,30")
        self.line(0.5, uid, "NONE", "ENTERQUEUE", "", "13800138000", "1")
        return uid, chan

    def answered(self, n: int, *, over: bool = True) -> str:
        uid, chan = self.arrive(n)
        agent_uid, agent = f"{int(T0) + 1}.{n}", AGENT.format(n)
        self.cel("CHAN_START", 1.0, agent_uid, uid, agent, cid_num="1001")
        self.cel("ANSWER", 2.5, agent_uid, uid, agent, cid_num="1001")
        self.line(2.5, uid, "1001", "CONNECT", "2", agent_uid, "1")
        self.cel("BRIDGE_ENTER", 2.51, uid, uid, chan)
        self.cel("BRIDGE_ENTER", 2.512, agent_uid, uid, agent, cid_num="1001")
        if not over:
            return uid
        self.cel("BRIDGE_EXIT", 5.5, agent_uid, uid, agent, cid_num="1001")
        self.hangup(5.5, agent_uid, uid, agent, agent)
        self.line(5.5, uid, "1001", "COMPLETEAGENT", "2", "3", "1")
        self.cel("BRIDGE_EXIT", 5.51, uid, uid, chan)
        self.cel("APP_END", 5.52, uid, uid, chan, appname="Queue")
        self.user(5.53, uid, chan, "QueueResult", "queue=cantonese&status=&member=PJSIP/agent-1001")
        self.hangup(6.0, uid, uid, chan, agent)
        self.cel("LINKEDID_END", 6.0, uid, uid, "")
        return uid

    def abandoned(self, n: int, *, leaves_at: float = 20.0) -> str:
        uid, chan = self.arrive(n)
        self.hangup(leaves_at, uid, uid, chan, chan)
        self.line(leaves_at, uid, "NONE", "ABANDON", "1", "1", str(int(leaves_at)))
        self.cel("LINKEDID_END", leaves_at, uid, uid, "")
        return uid


def _rows(engine: Engine) -> dict[str, CallLog]:
    with engine.connect() as conn:
        return {row.linkedid: row for row in conn.execute(select(CallLog))}  # type: ignore[misc]


def _provisional(engine: Engine, linkedid: str, **kw: Any) -> None:
    """What the live path wrote before it lost the call: an open row."""
    CallLogWriter(engine).write(
        [
            CallRecord(
                linkedid=linkedid,
                caller_uniqueid=linkedid,
                caller_number="13800138000",
                arrived_at=T0,
                **kw,
            )
        ]
    )


def test_an_open_row_is_settled_from_the_record(engine: Engine, reconciler: Reconciler) -> None:
    record = Record(engine)
    uid = record.answered(1)
    _provisional(engine, uid, caller_name="张伟", dialect="cantonese", route_source="customer")

    report = reconciler.run_once(live=frozenset(), now=T0 + 30)

    assert (report.settled, report.created, report.waiting, report.open_rows) == (1, 0, 0, 0)
    row = _rows(engine)[uid]
    assert row.outcome == "answered"
    assert row.settled_by == "reconciled"
    assert (row.agent, row.agent_interface, row.queue) == ("1001", "PJSIP/agent-1001", "cantonese")
    assert row.wait_seconds == pytest.approx(2.01, abs=1e-3)
    assert row.talk_seconds == pytest.approx(5.5 - 2.51, abs=1e-3)
    # What only the live path knew (the IVR's say on AMI) is kept.
    assert (row.caller_name, row.dialect, row.route_source) == ("张伟", "cantonese", "customer")
    assert report.lag_seconds == pytest.approx(30 - 6.0, abs=1e-3)
    assert reconciler.rows_reconciled == 1


def test_a_call_that_ended_with_no_row_gets_one(engine: Engine, reconciler: Reconciler) -> None:
    record = Record(engine)
    uid = record.abandoned(2)

    report = reconciler.run_once(live=None, now=T0 + 60)

    assert (report.settled, report.created) == (0, 1)
    row = _rows(engine)[uid]
    assert (row.outcome, row.settled_by, row.caller_number) == (
        "abandoned",
        "reconciled",
        "13800138000",
    )
    assert row.wait_seconds == pytest.approx(19.5, abs=1e-3)


def test_a_second_pass_changes_nothing(engine: Engine, reconciler: Reconciler) -> None:
    record = Record(engine)
    answered = record.answered(1)
    record.abandoned(2)
    _provisional(engine, answered)
    reconciler.run_once(live=frozenset(), now=T0 + 60)
    before = {k: _columns(v) for k, v in _rows(engine).items()}

    report = reconciler.run_once(live=frozenset(), now=T0 + 120)
    rescan = reconciler.run_once(live=frozenset(), since=T0 - 10, now=T0 + 180)

    assert (report.settled, report.created, report.waiting) == (0, 0, 0)
    assert (rescan.settled, rescan.created) == (0, 0)  # known rows are not created again
    assert {k: _columns(v) for k, v in _rows(engine).items()} == before
    assert len(before) == 2


def _columns(row: Any) -> tuple[object, ...]:
    return tuple(row)


def test_a_live_call_is_left_to_the_live_path(engine: Engine, reconciler: Reconciler) -> None:
    record = Record(engine)
    uid = record.answered(3, over=False)
    _provisional(engine, uid)

    live = reconciler.run_once(live=frozenset({uid}), now=T0 + 10)
    unknown = reconciler.run_once(live=None, now=T0 + 10)

    assert (live.settled, live.waiting, live.open_rows, live.oldest_unsettled_at) == (0, 0, 1, None)
    # AMI down: not known live, but the record does not say it is over either.
    assert (unknown.settled, unknown.waiting, unknown.open_rows) == (0, 1, 1)
    assert unknown.oldest_unsettled_at == pytest.approx(T0)
    assert _rows(engine)[uid].outcome == "in_progress"


def test_a_call_cut_by_an_asterisk_crash_is_failed_not_abandoned(
    engine: Engine, reconciler: Reconciler
) -> None:
    record = Record(engine)
    uid, _chan = record.arrive(4)  # queued, then Asterisk died: no HANGUP, no LINKEDID_END
    _provisional(engine, uid)

    report = reconciler.run_once(live=frozenset(), asterisk_started_at=T0 + 40, now=T0 + 45)

    row = _rows(engine)[uid]
    assert report.settled == 1
    assert (row.outcome, row.end_reason, row.settled_by) == (
        "failed",
        "asterisk_crash",
        "reconciled",
    )


def test_an_answered_call_cut_by_a_crash_stays_answered(
    engine: Engine, reconciler: Reconciler
) -> None:
    record = Record(engine)
    uid = record.answered(5, over=False)
    _provisional(engine, uid)

    reconciler.run_once(live=frozenset(), asterisk_started_at=T0 + 40, now=T0 + 45)

    row = _rows(engine)[uid]
    assert (row.outcome, row.agent, row.end_reason) == ("answered", "1001", "asterisk_crash")


def test_a_row_the_live_path_settled_is_never_overwritten(
    engine: Engine, reconciler: Reconciler
) -> None:
    record = Record(engine)
    uid = record.answered(6)
    live_row = CallRecord(
        linkedid=uid,
        outcome=Outcome.ANSWERED,
        caller_uniqueid=uid,
        caller_number="13800138000",
        arrived_at=T0,
        agent="1002",
        settled_by=SettledBy.LIVE,
    )
    writer = CallLogWriter(engine)
    writer.write([live_row])
    # The reconciler never picks it (not open, has a row)...
    report = reconciler.run_once(live=frozenset(), since=T0 - 10, now=T0 + 60)
    assert (report.settled, report.created) == (0, 0)
    # ...and a reconciled record racing in for it cannot overwrite it.
    reconciled = CallRecord(
        linkedid=uid, outcome=Outcome.ABANDONED, agent=None, settled_by=SettledBy.RECONCILED
    )
    writer.write([reconciled])
    row = _rows(engine)[uid]
    assert (row.outcome, row.agent, row.settled_by) == ("answered", "1002", "live")
    # The live path may still overwrite a reconciled row (it saw the call itself).
    other = record.abandoned(7)
    reconciler.run_once(live=frozenset(), now=T0 + 60)
    assert _rows(engine)[other].settled_by == "reconciled"
    writer.write(
        [
            CallRecord(
                linkedid=other,
                outcome=Outcome.SHORT_ABANDONED,
                caller_uniqueid=other,
                settled_by=SettledBy.LIVE,
            )
        ]
    )
    assert (_rows(engine)[other].outcome, _rows(engine)[other].settled_by) == (
        "short_abandoned",
        "live",
    )


def test_the_cursor_moves_past_ends_already_seen(engine: Engine, reconciler: Reconciler) -> None:
    record = Record(engine)
    first = record.abandoned(8)
    reconciler.run_once(live=frozenset(), now=T0 + 60)
    saved = store.load_cursor(engine, "reconciler:linkedid_end")
    with engine.connect() as conn:
        last_end = conn.scalar(select(Cel.id).where(Cel.eventtype == "LINKEDID_END"))
    assert saved == last_end

    # Someone deletes the row (an operator's mistake): the cursor is past its end, so
    # only a rescan (--since) brings it back; a new call is found from the cursor.
    with engine.begin() as conn:
        conn.execute(CallLog.__table__.delete().where(CallLog.linkedid == first))
    second = record.abandoned(9)
    report = reconciler.run_once(live=frozenset(), now=T0 + 120)
    assert report.created == 1 and set(_rows(engine)) == {second}
    rescan = reconciler.run_once(live=frozenset(), since=T0 - 10, now=T0 + 120)
    assert rescan.created == 1 and set(_rows(engine)) == {first, second}
    assert store.load_cursor(engine, "reconciler:linkedid_end") != saved  # moved on, once


def test_the_first_pass_looks_back_only_the_lookback(engine: Engine) -> None:
    record = Record(engine)
    record.abandoned(10)  # ended at T0 + 20
    reconciler = Reconciler(
        engine, CallLogWriter(engine), short_abandon_seconds=5.0, lookback_seconds=60
    )
    report = reconciler.run_once(live=frozenset(), now=T0 + 3600)
    assert report.created == 0 and not _rows(engine)


# -- a record that lost the end --------------------------------------------------------


def test_a_row_whose_record_lost_its_end_is_settled_after_the_grace(engine: Engine) -> None:
    """cel_pgsql drops what it cannot write while its database is down: a call whose end
    is not in the record, and that AMI says is not live, is settled after the grace."""
    record = Record(engine)
    talking = record.answered(11, over=False)  # last row at T0 + 2.512
    queued, _ = record.arrive(12)  # last row at T0 + 0.5
    nothing = f"{int(T0)}.13"  # the record has no row of it at all
    for linkedid in (talking, queued, nothing):
        _provisional(engine, linkedid, caller_name="老客户", queue="cantonese")
    reconciler = Reconciler(
        engine, CallLogWriter(engine), short_abandon_seconds=5.0, record_grace_seconds=100
    )

    early = reconciler.run_once(live=frozenset(), now=T0 + 90)
    unknown = reconciler.run_once(live=None, now=T0 + 500)  # AMI down: never on a guess
    assert (early.settled, early.waiting) == (0, 3)
    assert (unknown.settled, unknown.waiting) == (0, 3)

    late = reconciler.run_once(live=frozenset(), now=T0 + 103)
    assert (late.settled, late.waiting, late.open_rows) == (3, 0, 0)
    rows = _rows(engine)
    assert (rows[talking].outcome, rows[talking].agent) == ("answered", "1001")
    assert rows[queued].outcome == "failed"
    assert (rows[nothing].outcome, rows[nothing].caller_name) == ("failed", "老客户")
    assert rows[nothing].arrived_at is not None
    for row in rows.values():
        assert (row.end_reason, row.settled_by) == ("no_record", "reconciled")


def test_a_live_row_is_never_settled_on_the_grace(engine: Engine) -> None:
    record = Record(engine)
    uid = record.answered(14, over=False)
    _provisional(engine, uid)
    reconciler = Reconciler(
        engine, CallLogWriter(engine), short_abandon_seconds=5.0, record_grace_seconds=1
    )
    report = reconciler.run_once(live=frozenset({uid}), now=T0 + 10_000)
    assert (report.settled, report.open_rows) == (0, 1)
