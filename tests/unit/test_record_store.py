"""Reading the record back: CEL by Linkedid (merged calls whole), queue_log by caller,
the calls that ended after a cursor, and times that mean the same on both backends.

The rows are inserted as cel_pgsql and the realtime queue_log write them (naive UTC,
``usegmtime`` / ``queue_log_realtime_use_gmt``; docs/asterisk-record.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, text

from hotline.db import make_engine, upgrade
from hotline.db.models import Cel, QueueLog
from hotline.record.store import (
    cel_for,
    ended_since,
    last_id_before,
    load_cursor,
    naive_utc,
    queue_log_for,
    save_cursor,
)

T0 = 1796339112.724540  # 2026-12-03 23:05:12.724540 UTC


@pytest.fixture
def engine(db_url) -> Engine:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _cel(engine: Engine, *rows: tuple[str, float, str, str]) -> None:
    """(eventtype, epoch, uniqueid, linkedid) rows, in this order."""
    with engine.begin() as conn:
        for eventtype, at, uniqueid, linkedid in rows:
            conn.execute(
                insert(Cel).values(
                    eventtype=eventtype,
                    eventtime=naive_utc(at),
                    uniqueid=uniqueid,
                    linkedid=linkedid,
                    channame=f"PJSIP/{uniqueid}",
                )
            )


def test_times_are_exact_utc_epochs_on_both_backends(engine) -> None:
    _cel(engine, ("CHAN_START", T0, "A.0", "A.0"))
    with engine.connect() as conn:
        stored = conn.scalar(text("SELECT eventtime FROM cel"))
    if isinstance(stored, str):  # SQLite keeps the text SQLAlchemy wrote
        stored = datetime.fromisoformat(stored)
    assert stored == datetime(2026, 12, 3, 23, 5, 12, 724540)  # naive, UTC wall time
    (event,) = cel_for(engine, ["A.0"])["A.0"]
    assert event.eventtime == pytest.approx(T0, abs=1e-6)


def test_a_session_time_zone_does_not_move_the_times(pg_url) -> None:
    """``timestamp without time zone`` ignores the session's TimeZone: what cel_pgsql
    wrote in UTC (usegmtime) is read as UTC whatever the server or session says."""
    engine = make_engine(pg_url, connect_args={"options": "-c TimeZone=Asia/Shanghai"})
    upgrade(engine)
    _cel(engine, ("CHAN_START", T0, "A.0", "A.0"))
    with engine.connect() as conn:
        assert conn.scalar(text("SHOW TimeZone")) == "Asia/Shanghai"
        (event,) = cel_for(conn, ["A.0"])["A.0"]
    assert event.eventtime == pytest.approx(T0, abs=1e-6)
    engine.dispose()


def test_cel_for_orders_by_id_and_groups_by_linkedid(engine) -> None:
    _cel(
        engine,
        ("CHAN_START", T0, "A.0", "A.0"),
        ("CHAN_START", T0 + 0.1, "B.0", "B.0"),
        ("CHAN_START", T0 + 0.2, "A.1", "A.0"),
        ("HANGUP", T0 + 1, "A.1", "A.0"),
        ("LINKEDID_END", T0 + 1, "A.1", "A.0"),
    )
    found = cel_for(engine, ["A.0", "nobody"])
    assert set(found) == {"A.0"}
    assert [(e.eventtype, e.uniqueid) for e in found["A.0"]] == [
        ("CHAN_START", "A.0"),
        ("CHAN_START", "A.1"),
        ("HANGUP", "A.1"),
        ("LINKEDID_END", "A.1"),
    ]
    ids = [e.id for e in found["A.0"]]
    assert ids == sorted(ids)


def test_a_merged_call_brings_its_channels_whole(engine) -> None:
    """Call B (agent 1002's consult, B.0/B.1) is bridged into call A: from then on B.1
    carries A's Linkedid. Asking for A gives B.1's rows from before the merge too; asking
    for B gives B.1's rows after it; asking for both gives B.1 whole under each."""
    _cel(
        engine,
        ("CHAN_START", T0, "A.0", "A.0"),
        ("CHAN_START", T0 + 1, "B.0", "B.0"),
        ("CHAN_START", T0 + 1.1, "B.1", "B.0"),
        ("ANSWER", T0 + 2, "B.1", "B.0"),
        ("HANGUP", T0 + 3, "B.0", "B.0"),
        ("BRIDGE_ENTER", T0 + 3, "B.1", "A.0"),  # B.1 now carries A.0
        ("LINKEDID_END", T0 + 3, "B.0", "B.0"),
        ("HANGUP", T0 + 9, "B.1", "A.0"),
        ("HANGUP", T0 + 9, "A.0", "A.0"),
        ("LINKEDID_END", T0 + 9, "A.0", "A.0"),
    )
    b1 = ["CHAN_START", "ANSWER", "BRIDGE_ENTER", "HANGUP"]
    for asked in (["A.0"], ["A.0", "B.0"]):
        a = cel_for(engine, asked)["A.0"]
        assert [e.eventtype for e in a if e.uniqueid == "B.1"] == b1
        assert [e.eventtype for e in a if e.uniqueid == "A.0"] == [
            "CHAN_START",
            "HANGUP",
            "LINKEDID_END",
        ]
        assert not [e for e in a if e.uniqueid == "B.0"]  # B's other channel stays B's
    b = cel_for(engine, ["B.0"])["B.0"]
    assert [e.eventtype for e in b if e.uniqueid == "B.1"] == b1
    assert [e.eventtype for e in b if e.uniqueid == "B.0"] == [
        "CHAN_START",
        "HANGUP",
        "LINKEDID_END",
    ]


def test_many_linkedids_are_asked_in_chunks(engine) -> None:
    _cel(engine, *(("CHAN_START", T0 + i, f"C.{i}", f"C.{i}") for i in range(1200)))
    found = cel_for(engine, [f"C.{i}" for i in range(1200)])
    assert len(found) == 1200
    assert all(len(events) == 1 for events in found.values())


def test_queue_log_for_reads_the_realtime_columns(engine) -> None:
    blank = {f"data{i}": "" for i in range(1, 6)}
    with engine.begin() as conn:
        conn.execute(
            insert(QueueLog),
            [
                {**blank, "time": naive_utc(T0), "callid": "A.0", "queuename": "cantonese",
                 "agent": "NONE", "event": "ENTERQUEUE", "data2": "13800138000", "data3": "1"},
                {**blank, "time": naive_utc(T0 + 1), "callid": "A.0", "queuename": "cantonese",
                 "agent": "1001", "event": "connect", "data1": "1", "data2": "A.1", "data3": "1"},
                {**blank, "time": naive_utc(T0 + 2), "callid": "MANAGER", "queuename": "cantonese",
                 "agent": "1001", "event": "REMOVEMEMBER"},
            ],
        )  # fmt: skip
    found = queue_log_for(engine, ["A.0", "B.0"])
    assert set(found) == {"A.0"}
    enter, connect = found["A.0"]
    assert enter.data == ("", "13800138000", "1")  # as the file line splits it
    assert enter.time == pytest.approx(T0, abs=1e-6)
    assert connect.event == "CONNECT"
    assert connect.field(2) == "A.1"


def test_ended_since_pages_through_linkedid_ends(engine) -> None:
    _cel(
        engine,
        ("CHAN_START", T0, "A.0", "A.0"),
        ("LINKEDID_END", T0 + 1, "A.0", "A.0"),
        ("CHAN_START", T0 + 2, "B.0", "B.0"),
        ("LINKEDID_END", T0 + 3, "B.0", "B.0"),
        ("LINKEDID_END", T0 + 4, "C.0", "C.0"),
    )
    first = ended_since(engine, after_id=0, limit=2)
    assert [linkedid for _id, linkedid in first] == ["A.0", "B.0"]
    rest = ended_since(engine, after_id=first[-1][0], limit=2)
    assert [linkedid for _id, linkedid in rest] == ["C.0"]
    assert ended_since(engine, after_id=rest[-1][0], limit=2) == []
    start = last_id_before(engine, datetime.fromtimestamp(T0 + 2.5, UTC))
    assert start == first[0][0] + 1  # B.0's CHAN_START, the last row before that moment
    assert [lid for _id, lid in ended_since(engine, after_id=start, limit=9)] == ["B.0", "C.0"]
    assert last_id_before(engine, datetime.fromtimestamp(T0 - 1, UTC)) == 0


def test_cursors_are_saved_and_replaced(engine) -> None:
    assert load_cursor(engine, "reconciler") is None
    save_cursor(engine, "reconciler", 41)
    save_cursor(engine, "reconciler", 42)
    assert load_cursor(engine, "reconciler") == 42
