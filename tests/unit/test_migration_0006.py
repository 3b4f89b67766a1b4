"""Migration 0006 (Asterisk's record, who settled a row) up and down, on both backends."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from hotline.db import make_engine, upgrade
from hotline.db.session import alembic_config

RECORD_TABLES = {"cel", "queue_log", "record_cursors"}
SETTLED = {"settled_by", "settled_at", "end_reason"}


def _columns(engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def _indexes(engine, table: str) -> set[str]:
    return {i["name"] for i in inspect(engine).get_indexes(table)}


def test_0006_up_and_down_keeps_the_call_log(db_url) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO call_logs (linkedid, outcome, queues, ivr_path, route_reasons) "
                "VALUES ('L.1', 'answered', '[]', '[]', '[]'), "
                "('L.2', 'in_progress', '[]', '[]', '[]')"
            )
        )
    upgrade(engine, "0006")
    assert set(inspect(engine).get_table_names()) >= RECORD_TABLES
    assert _columns(engine, "call_logs") >= SETTLED
    assert {"ix_cel_linkedid", "ix_cel_uniqueid", "ix_cel_eventtype_id"} <= _indexes(engine, "cel")
    assert "ix_queue_log_callid" in _indexes(engine, "queue_log")
    assert "ix_call_logs_outcome" in _indexes(engine, "call_logs")
    with engine.connect() as conn:
        settled = dict(conn.execute(text("SELECT linkedid, settled_by FROM call_logs")).all())
    # finished rows were the live tracker's; an open row is nobody's yet
    assert settled == {"L.1": "live", "L.2": None}
    # cel_pgsql fills every column but id: the serial must number the rows
    with engine.begin() as conn:
        for n in range(2):
            conn.execute(
                text(
                    "INSERT INTO cel (eventtype, eventtime, uniqueid, linkedid) "
                    "VALUES ('CHAN_START', '2026-12-03 23:05:12.724540', :u, :u)"
                ),
                {"u": f"U.{n}"},
            )
        ids = list(conn.scalars(text("SELECT id FROM cel ORDER BY id")))
    assert len(ids) == 2 and ids[0] < ids[1]

    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
    assert not RECORD_TABLES & set(inspect(engine).get_table_names())
    assert not SETTLED & _columns(engine, "call_logs")
    assert "ix_call_logs_outcome" not in _indexes(engine, "call_logs")
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM call_logs")) == 2

    upgrade(engine)  # and up again, to the head
    assert set(inspect(engine).get_table_names()) >= RECORD_TABLES
    engine.dispose()
