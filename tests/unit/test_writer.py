"""The call-log writer: idempotent upserts, careful customer links, bad input contained."""

from __future__ import annotations

import logging
import math
import socket
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.db import CallLog, Customer, CustomerPhone, make_engine, upgrade

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAMILY_LINE = "+862088886666"
SOLO_MOBILE = "+8613800138000"


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def customers(engine) -> dict[str, int]:
    """Two customers sharing a family landline; one of them also has a mobile."""
    with Session(engine) as session, session.begin():
        mother, son = Customer(name="李梅", tier="vip1"), Customer(name="李雷")
        session.add_all([mother, son])
        session.flush()
        session.add_all(
            [
                CustomerPhone(customer_id=mother.id, e164=FAMILY_LINE, kind="landline"),
                CustomerPhone(customer_id=son.id, e164=FAMILY_LINE, kind="landline"),
                CustomerPhone(customer_id=son.id, e164=SOLO_MOBILE, kind="mobile"),
            ]
        )
        return {"mother": mother.id, "son": son.id}


def answered(linkedid: str, **overrides: object) -> CallRecord:
    values: dict[str, object] = {
        "linkedid": linkedid,
        "outcome": Outcome.ANSWERED,
        "caller_uniqueid": linkedid,
        "caller_channel": f"PJSIP/trunk-{linkedid}",
        "caller_number": "13800138000",
        "caller_e164": SOLO_MOBILE,
        "caller_name": "李雷",
        "arrived_at": T0,
        "queued_at": T0 + 5,
        "answered_at": T0 + 17.5,
        "ended_at": T0 + 80,
        "wait_seconds": 12.5,
        "talk_seconds": 62.5,
        "queue": "cantonese",
        "queues": ["cantonese"],
        "agent": "agent-1001",
        "agent_interface": "PJSIP/1001",
        "queue_status": None,
        "hangup_cause": 16,
        "ivr_path": ["welcome", "dialect:2"],
    }
    values.update(overrides)
    return CallRecord(**values)  # type: ignore[arg-type]


def rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        result = conn.execute(select(CallLog.__table__).order_by(CallLog.linkedid))
        return [dict(row._mapping) for row in result]


def by_linkedid(engine: Engine) -> dict[str, dict[str, object]]:
    return {row["linkedid"]: row for row in rows(engine)}  # type: ignore[misc]


def test_replaying_a_batch_changes_nothing(engine, customers) -> None:
    writer = CallLogWriter(engine)
    batch = [answered("1767225600.1"), answered("1767225600.2", caller_e164=FAMILY_LINE)]
    assert writer.write(batch) == 2
    first = rows(engine)
    assert writer.write(batch) == 2
    assert rows(engine) == first
    assert len(first) == 2


def test_record_fields_are_stored_with_aware_times(engine) -> None:
    CallLogWriter(engine).write([answered("a")])
    row = by_linkedid(engine)["a"]
    assert row["outcome"] == "answered"
    assert row["arrived_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert row["answered_at"] == datetime(2026, 1, 1, 0, 0, 17, 500000, tzinfo=UTC)
    assert row["queues"] == ["cantonese"]
    assert row["ivr_path"] == ["welcome", "dialect:2"]
    assert row["wait_seconds"] == 12.5
    assert row["hangup_cause"] == 16
    assert row["notes"] is None


def test_single_owner_is_linked(engine, customers) -> None:
    CallLogWriter(engine).write([answered("solo")])
    assert by_linkedid(engine)["solo"]["customer_id"] == customers["son"]


def test_family_line_stays_unlinked(engine, customers) -> None:
    CallLogWriter(engine).write([answered("family", caller_e164=FAMILY_LINE)])
    assert by_linkedid(engine)["family"]["customer_id"] is None


def test_unknown_number_stays_unlinked(engine, customers) -> None:
    CallLogWriter(engine).write([answered("stranger", caller_e164="+8613912345678")])
    assert by_linkedid(engine)["stranger"]["customer_id"] is None


def test_customer_chosen_by_the_ivr_wins_over_the_number(engine, customers) -> None:
    CallLogWriter(engine).write(
        [answered("ivr", caller_e164=FAMILY_LINE, customer_id=customers["mother"])]
    )
    assert by_linkedid(engine)["ivr"]["customer_id"] == customers["mother"]


def test_customer_id_of_a_deleted_customer_is_dropped_not_fatal(engine, customers) -> None:
    written = CallLogWriter(engine).write(
        [answered("gone", caller_e164=None, caller_number="", customer_id=999_999), answered("ok")]
    )
    assert written == 2
    assert by_linkedid(engine)["gone"]["customer_id"] is None


def test_e164_is_derived_from_the_number_when_missing(engine, customers) -> None:
    CallLogWriter(engine).write(
        [answered("raw", caller_e164=None, caller_number="0086 138-0013-8000")]
    )
    row = by_linkedid(engine)["raw"]
    assert row["caller_e164"] == SOLO_MOBILE
    assert row["customer_id"] == customers["son"]


def test_wrapup_fields_survive_a_re_upsert(engine, customers) -> None:
    writer = CallLogWriter(engine)
    writer.write([answered("w", outcome=Outcome.IN_PROGRESS, ended_at=None)])
    with engine.begin() as conn:
        conn.execute(
            update(CallLog)
            .where(CallLog.linkedid == "w")
            .values(notes="热水器漏水，已预约上门", disposition="service-booked")
        )
    writer.write([answered("w")])
    writer.write([answered("w")])
    row = by_linkedid(engine)["w"]
    assert row["outcome"] == "answered"
    assert row["ended_at"] is not None
    assert row["notes"] == "热水器漏水，已预约上门"
    assert row["disposition"] == "service-booked"


def test_a_late_provisional_record_does_not_reopen_a_finished_call(engine) -> None:
    writer = CallLogWriter(engine)
    writer.write([answered("late")])
    finished = rows(engine)
    writer.write([answered("late", outcome=Outcome.IN_PROGRESS, ended_at=None, agent=None)])
    assert rows(engine) == finished


def test_an_existing_link_is_kept_when_a_replay_cannot_resolve_one(engine, customers) -> None:
    writer = CallLogWriter(engine)
    writer.write([answered("keep", caller_e164=FAMILY_LINE, customer_id=customers["mother"])])
    writer.write([answered("keep", caller_e164=FAMILY_LINE)])
    assert by_linkedid(engine)["keep"]["customer_id"] == customers["mother"]


def test_the_last_record_of_a_linkedid_in_a_batch_wins(engine) -> None:
    writer = CallLogWriter(engine)
    written = writer.write(
        [answered("dup", outcome=Outcome.IN_PROGRESS), answered("dup", outcome=Outcome.ABANDONED)]
    )
    assert written == 1
    assert by_linkedid(engine)["dup"]["outcome"] == "abandoned"


def test_chinese_names_round_trip(engine) -> None:
    name = "司马𠮷 · 粤语客户"
    CallLogWriter(engine).write([answered("cn", caller_name=name)])
    assert by_linkedid(engine)["cn"]["caller_name"] == name


def test_bad_records_are_sanitised_and_do_not_poison_the_batch(engine, caplog) -> None:
    writer = CallLogWriter(engine)
    bad = answered(
        "bad",
        caller_name="张\udcff三\x00",  # a lone surrogate and a NUL
        caller_channel="X" * 1000,
        arrived_at=math.nan,
        queued_at=1e300,
        answered_at=-5.0,
        wait_seconds=math.inf,
        talk_seconds=-1.0,
        hangup_cause=10**12,
        queues=["ok", None, "粤语"],
        outcome="nonsense",
    )
    with caplog.at_level(logging.WARNING, logger="hotline.calls.writer"):
        written = writer.write([bad, answered("good"), answered("")])
    assert written == 2
    got = by_linkedid(engine)
    assert set(got) == {"bad", "good"}
    row = got["bad"]
    assert row["caller_name"] == "张\ufffd三"
    assert len(row["caller_channel"]) == 255  # type: ignore[arg-type]
    for name in ("arrived_at", "queued_at", "answered_at", "wait_seconds", "talk_seconds"):
        assert row[name] is None, name
    assert row["hangup_cause"] is None
    assert row["queues"] == ["ok", "粤语"]
    assert row["outcome"] == "failed"
    assert writer.skipped == 1
    # The log names the fields and the linkedid, never the caller's name.
    assert "linkedid=bad" in caplog.text
    assert "张" not in caplog.text


def test_an_empty_batch_writes_nothing(engine) -> None:
    assert CallLogWriter(engine).write([]) == 0
    assert rows(engine) == []


def test_a_database_outage_raises_so_the_batch_can_be_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{port}/nothing")
    try:
        with pytest.raises(OperationalError):
            CallLogWriter(engine).write([answered("x")])
    finally:
        engine.dispose()


def test_a_row_the_database_rejects_is_dropped_alone(engine, monkeypatch, caplog) -> None:
    writer = CallLogWriter(engine)
    real_row = writer._row

    def row_with_a_hole(record: CallRecord) -> dict[str, object] | None:
        row = real_row(record)
        if row is not None and record.linkedid == "broken":
            row["outcome"] = None  # NOT NULL: the database refuses the whole statement
        return row

    monkeypatch.setattr(writer, "_row", row_with_a_hole)
    with caplog.at_level(logging.WARNING, logger="hotline.calls.writer"):
        written = writer.write([answered("before"), answered("broken"), answered("after")])
    assert written == 2
    assert set(by_linkedid(engine)) == {"before", "after"}
    assert "linkedid=broken rejected" in caplog.text
