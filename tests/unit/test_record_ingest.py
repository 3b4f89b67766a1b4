"""The file ingester: Asterisk's CEL CSV and queue_log into the record's tables.

The CEL lines are real: cel_custom's output for one answered lab call (Asterisk 22.10,
dialplans/templates/cel_custom.conf). The cases are the ways a tailed file goes wrong:
a line still being written, garbage, rotation, truncation, a crash between the rows and
the cursor, and two ingesters at once (docs/asterisk-record.md, "The file mode").
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, update

from dialplans.config import CEL_CSV_DIR, CEL_CSV_FIELDS, CEL_CSV_FILE
from hotline.db import make_engine, upgrade
from hotline.db.models import Cel, QueueLog, RecordCursor
from hotline.record import ingest
from hotline.record.ingest import ingest_once, parse_cel_line, parse_queue_log
from hotline.record.store import cel_for, queue_log_for

# One answered call as cel_custom wrote it: caller 1796339112.0, agent 1796339112.1.
CALL = [
    '"CHAN_START","1796339112.724540","","张\'伟, 客户","13800138000","","","","4008001234",'
    '"from-trunk","PJSIP/trunk-00000000","","","3","","","1796339112.0","1796339112.0","","",""',
    '"BRIDGE_ENTER","1796339113.760618","","张\'伟, 客户","13800138000","13800138000","",'
    '"4008001234","4008001234","from-trunk","PJSIP/trunk-00000000","Queue",'
    '"cantonese,tcb(hotline-predial^s^1(cantonese)),,,300,,,widen","3","","",'
    '"1796339112.0","1796339112.0","","PJSIP/agent-1001-00000001",'
    '"{""bridge_id"":""c0c9521c-4135-44d0-a718-42c23cb53c7e"",'
    '""bridge_technology"":""simple_bridge""}"',
    '"USER_DEFINED","1796339114.765879","QueueResult","张\'伟, 客户","13800138000",'
    '"13800138000","","4008001234","4008001234","from-trunk","PJSIP/trunk-00000000",'
    '"CELGenUserEvent","QueueResult,queue=cantonese&status=CONTINUE&member=PJSIP%2Fagent-1001'
    '&membername=1001","3","","","1796339112.0","1796339112.0","","",'
    '"{""extra"":""queue=cantonese&status=CONTINUE&member=PJSIP%2Fagent-1001&membername=1001""}"',
    '"LINKEDID_END","1796339114.768101","","Agent 1001","1001","1001","","","4008001234",'
    '"from-agents","PJSIP/agent-1001-00000001","AppQueue","(Outgoing Line)","3","","",'
    '"1796339112.1","1796339112.0","","",""',
]
QUEUE_LOG = [
    "1796339112|1796339112.0|cantonese|NONE|ENTERQUEUE||13800138000|1",
    "1796339113|1796339112.0|cantonese|1001|CONNECT|1|1796339112.1|1",
    "1796339114|1796339112.0|cantonese|1001|COMPLETEAGENT|1|1|1",
]


@pytest.fixture
def engine(db_url) -> Engine:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url) -> Engine:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def log_dir(tmp_path) -> Path:
    (tmp_path / CEL_CSV_DIR).mkdir()
    return tmp_path


def _cel_path(log_dir: Path) -> Path:
    return log_dir / CEL_CSV_DIR / CEL_CSV_FILE


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def _lines(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def _count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _cel_types(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(Cel.eventtype).order_by(Cel.id)))


def test_the_csv_columns_are_the_cel_tables_columns() -> None:
    columns = {c.name for c in Cel.__table__.columns} - {"id"}
    assert {column for column, _field in CEL_CSV_FIELDS} == columns


def test_a_real_cel_line_parses_with_exact_microseconds() -> None:
    row = parse_cel_line(CALL[2])
    assert row is not None
    assert row["eventtype"] == "USER_DEFINED"
    assert row["userdeftype"] == "QueueResult"
    assert row["eventtime"] == datetime(2026, 12, 3, 23, 5, 14, 765879)  # naive UTC
    assert row["cid_name"] == "张'伟, 客户"  # the comma stays inside its quoted field
    assert row["appdata"].startswith("QueueResult,queue=cantonese")
    assert (
        row["extra"]
        == '{"extra":"queue=cantonese&status=CONTINUE&member=PJSIP%2Fagent-1001&membername=1001"}'
    )
    assert row["amaflags"] == 3
    assert parse_cel_line(CALL[1])["peer"] == "PJSIP/agent-1001-00000001"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not,a,cel,line",
        CALL[0].replace('"1796339112.724540"', '"yesterday"'),
        CALL[0].replace('"CHAN_START"', '""'),
        CALL[0][: len(CALL[0]) // 2] + CALL[0],  # a line cut by a crash, glued to the next
        '"CHAN_START"x,' + CALL[0].split(",", 1)[1],  # bad quoting
    ],
)
def test_garbage_cel_lines_are_refused(line: str) -> None:
    assert parse_cel_line(line) is None


def test_queue_log_lines_as_the_realtime_table_splits_them() -> None:
    row = parse_queue_log(QUEUE_LOG[0])
    assert row is not None
    assert row["time"] == datetime(2026, 12, 3, 23, 5, 12)
    assert (row["callid"], row["queuename"], row["agent"], row["event"]) == (
        "1796339112.0",
        "cantonese",
        "NONE",
        "ENTERQUEUE",
    )
    assert [row[f"data{i}"] for i in range(1, 6)] == ["", "13800138000", "1", "", ""]
    wide = parse_queue_log("1796339112|x|q|a|EV|1|2|3|4|5|6|7")
    assert [wide[f"data{i}"] for i in range(1, 6)] == ["1", "2", "3", "4", "5|6|7"]
    assert parse_queue_log("garbage") is None
    assert parse_queue_log("soon|x|q|a|EV|1") is None


def test_both_files_reach_the_tables_and_read_back_as_typed_entries(engine, log_dir) -> None:
    _append(_cel_path(log_dir), _lines(*CALL))
    _append(log_dir / "queue_log", _lines(*QUEUE_LOG))
    assert ingest_once(engine, log_dir) == {"cel": 4, "queue_log": 3, "garbage": 0}
    cel = cel_for(engine, ["1796339112.0"])["1796339112.0"]
    assert [e.eventtype for e in cel] == [
        "CHAN_START",
        "BRIDGE_ENTER",
        "USER_DEFINED",
        "LINKEDID_END",
    ]
    assert cel[2].eventtime == pytest.approx(1796339114.765879, abs=1e-6)
    assert cel[3].uniqueid == "1796339112.1"
    entries = queue_log_for(engine, ["1796339112.0"])["1796339112.0"]
    assert [e.event for e in entries] == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    assert entries[1].field(2) == "1796339112.1"
    assert entries[0].time == 1796339112.0
    # idempotent: nothing new, nothing added
    assert ingest_once(engine, log_dir) == {"cel": 0, "queue_log": 0, "garbage": 0}
    assert _count(engine, Cel.__table__) == 4


def test_missing_files_are_not_an_error(sqlite_engine, tmp_path) -> None:
    assert ingest_once(sqlite_engine, tmp_path / "nowhere") == {
        "cel": 0,
        "queue_log": 0,
        "garbage": 0,
    }


def test_a_partial_last_line_waits_for_its_newline(sqlite_engine, log_dir) -> None:
    path = _cel_path(log_dir)
    half = len(CALL[2]) // 2
    _append(path, _lines(*CALL[:2]) + CALL[2][:half])
    assert ingest_once(sqlite_engine, log_dir)["cel"] == 2
    assert ingest_once(sqlite_engine, log_dir)["cel"] == 0  # still no newline
    _append(path, CALL[2][half:] + "\n")
    assert ingest_once(sqlite_engine, log_dir) == {"cel": 1, "queue_log": 0, "garbage": 0}
    assert _cel_types(sqlite_engine) == ["CHAN_START", "BRIDGE_ENTER", "USER_DEFINED"]


def test_garbage_lines_are_skipped_with_a_log_line(sqlite_engine, log_dir, caplog) -> None:
    _append(_cel_path(log_dir), _lines(CALL[0], "\x00\xff garbage", "", CALL[1]))
    _append(log_dir / "queue_log", _lines("not a queue_log line", QUEUE_LOG[0]))
    with caplog.at_level(logging.WARNING, logger="hotline.record.ingest"):
        assert ingest_once(sqlite_engine, log_dir) == {"cel": 2, "queue_log": 1, "garbage": 2}
    assert sum("not a record, skipped" in r.getMessage() for r in caplog.records) == 2
    assert ingest_once(sqlite_engine, log_dir)["garbage"] == 0  # never retried


def test_nul_and_overlong_values_cannot_wedge_the_ingester(engine, log_dir) -> None:
    long_name = "名" * 400
    line = CALL[0].replace("张'伟, 客户", long_name + "\x00")
    _append(_cel_path(log_dir), _lines(line))
    assert ingest_once(engine, log_dir)["cel"] == 1
    with engine.connect() as conn:
        assert conn.scalar(select(Cel.cid_name)) == "名" * 255


def test_rotation_finishes_the_old_file_then_reads_the_new_one(sqlite_engine, log_dir) -> None:
    qlog = log_dir / "queue_log"
    _append(qlog, _lines(QUEUE_LOG[0]))
    assert ingest_once(sqlite_engine, log_dir)["queue_log"] == 1
    _append(qlog, _lines(QUEUE_LOG[1]))  # written after the last pass, before the rotation
    os.rename(qlog, log_dir / "queue_log.0")  # logger rotate (sequential)
    _append(qlog, _lines(QUEUE_LOG[2]))
    assert ingest_once(sqlite_engine, log_dir)["queue_log"] == 2
    with sqlite_engine.connect() as conn:
        assert list(conn.scalars(select(QueueLog.event).order_by(QueueLog.id))) == [
            "ENTERQUEUE",
            "CONNECT",
            "COMPLETEAGENT",
        ]
    assert ingest_once(sqlite_engine, log_dir)["queue_log"] == 0


def test_a_rotated_file_gone_or_cut_mid_line_does_not_stall(sqlite_engine, log_dir) -> None:
    path = _cel_path(log_dir)
    _append(path, _lines(CALL[0]))
    ingest_once(sqlite_engine, log_dir)
    _append(path, CALL[1][:40])  # Asterisk killed mid-line, then the file rotated
    os.rename(path, path.with_name(CEL_CSV_FILE + ".1"))
    _append(path, _lines(CALL[2]))
    counts = ingest_once(sqlite_engine, log_dir)
    assert counts == {"cel": 1, "queue_log": 0, "garbage": 1}
    os.unlink(path.with_name(CEL_CSV_FILE + ".1"))
    os.unlink(path)
    _append(path, _lines(CALL[3]))  # a new file, the old one deleted
    assert ingest_once(sqlite_engine, log_dir)["cel"] == 1
    assert _cel_types(sqlite_engine) == ["CHAN_START", "USER_DEFINED", "LINKEDID_END"]


def test_truncation_reads_the_file_again_from_its_start(sqlite_engine, log_dir) -> None:
    qlog = log_dir / "queue_log"
    _append(qlog, _lines(*QUEUE_LOG))
    assert ingest_once(sqlite_engine, log_dir)["queue_log"] == 3
    with open(qlog, "r+b") as fh:  # copytruncate: same inode, same first line
        fh.truncate(0)
    _append(qlog, _lines(QUEUE_LOG[0]))
    assert ingest_once(sqlite_engine, log_dir)["queue_log"] == 1
    assert _count(sqlite_engine, QueueLog.__table__) == 4


def test_a_crash_between_rows_and_cursor_neither_doubles_nor_drops(
    engine, log_dir, monkeypatch
) -> None:
    _append(_cel_path(log_dir), _lines(*CALL))

    def crash(*_args: object) -> None:
        raise RuntimeError("killed between the insert and the cursor")

    monkeypatch.setattr(ingest, "_save", crash)
    with pytest.raises(RuntimeError):
        ingest_once(engine, log_dir)
    assert _count(engine, Cel.__table__) == 0  # the rows went with the cursor
    assert _count(engine, RecordCursor.__table__) == 0
    monkeypatch.undo()
    assert ingest_once(engine, log_dir)["cel"] == 4
    assert ingest_once(engine, log_dir)["cel"] == 0
    assert _count(engine, Cel.__table__) == 4


def test_small_batches_commit_as_they_go(sqlite_engine, log_dir) -> None:
    _append(_cel_path(log_dir), _lines(*CALL))
    counts = ingest_once(sqlite_engine, log_dir, batch_bytes=600, max_bytes=600)
    assert 0 < counts["cel"] < 4  # bounded by max_bytes
    with sqlite_engine.connect() as conn:
        position = conn.scalar(
            select(RecordCursor.position).where(RecordCursor.source == "file:cel")
        )
    assert 0 < position < _cel_path(log_dir).stat().st_size
    assert ingest_once(sqlite_engine, log_dir, batch_bytes=600)["cel"] == 4 - counts["cel"]


def test_a_line_longer_than_a_batch_is_skipped_not_stuck(sqlite_engine, log_dir) -> None:
    _append(_cel_path(log_dir), _lines("x" * 2000, CALL[0]))
    counts = ingest_once(sqlite_engine, log_dir, batch_bytes=300)
    assert counts == {"cel": 1, "queue_log": 0, "garbage": 1}
    assert _cel_types(sqlite_engine) == ["CHAN_START"]


def test_a_racing_ingester_rolls_back_instead_of_doubling(pg_url, tmp_path, monkeypatch) -> None:
    """Two processes on one file: the one that moves the cursor second rolls back.

    PostgreSQL only: SQLite lets one writer in at a time, so it cannot race this way.
    """
    engine = make_engine(pg_url)
    upgrade(engine)
    log_dir = tmp_path
    (log_dir / CEL_CSV_DIR).mkdir()
    _append(_cel_path(log_dir), _lines(CALL[0]))
    ingest_once(engine, log_dir)
    _append(_cel_path(log_dir), _lines(*CALL[1:]))
    other = create_engine(pg_url)
    real_batch = ingest._batch

    def batch_then_race(conn, source, path, start, limit):
        result = real_batch(conn, source, path, start, limit)
        if source.name == "file:cel":  # the other ingester commits the same lines first
            with other.begin() as theirs:
                theirs.execute(
                    update(RecordCursor)
                    .where(RecordCursor.source == "file:cel")
                    .values(position=result[2].position)
                )
        return result

    monkeypatch.setattr(ingest, "_batch", batch_then_race)
    assert ingest_once(engine, log_dir)["cel"] == 0  # rolled back
    assert _count(engine, Cel.__table__) == 1
    other.dispose()
    engine.dispose()
