"""Copy Asterisk's record files into the ``cel`` and ``queue_log`` tables (the file mode).

Where Asterisk cannot write to the database itself (the SQLite default, or a PostgreSQL
it cannot reach), it still writes two files in its log dir: cel_custom's CSV, one line
per CEL event (columns: :data:`dialplans.config.CEL_CSV_FIELDS`), and the ``queue_log``.
:func:`ingest_once` tails both into the same tables cel_pgsql and the realtime
queue_log fill on PostgreSQL, so the store and the reconciler read one shape
(docs/asterisk-record.md, "The file mode").

What makes it safe to run at any time, any number of times:

* **One transaction per batch** holds the rows *and* the file cursor
  (``record_cursors``: the file's identity and the byte offset after the last whole
  line), so a crash between the two can neither double nor drop a row. The cursor is
  moved by compare-and-set: a second ingester racing on the same file rolls back.
* **Whole lines only**: a last line without its newline is Asterisk still writing; it
  is left for the next pass.
* **Rotation and truncation**: a file's identity is its device, inode and a checksum
  of its first line. When it changes, the rotated file is looked for next to the new
  one (``queue_log.0``, ``hotline-cel.csv.1``…) and read to its end first; then the
  new file is read from 0. A file shorter than the cursor was truncated: read from 0.
* **Garbage** (a line cut by a crash and glued to the next one, wrong column count,
  bad quoting, a time that is not a number) is skipped with a log line, never retried.

Values are stripped of NUL (PostgreSQL refuses it) and cut to their column's length, so
no line can wedge the ingester. A CEL value with a line break would be split in two
garbage lines: cel_custom writes none in Hotline's dialplan (caller names come from SIP
headers, application data from the dialplan).

Synchronous SQLAlchemy Core: the service runs it on the reconciler's worker thread.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, String, Table, insert, select, update

from dialplans.config import CEL_CSV_DIR, CEL_CSV_FIELDS, CEL_CSV_FILE, QUEUE_LOG_FILE
from hotline.db.models import Cel, QueueLog, RecordCursor
from hotline.record.entries import parse_queue_log_line

__all__ = ["CEL_SOURCE", "QUEUE_LOG_SOURCE", "ingest_once", "parse_cel_line", "parse_queue_log"]

log = logging.getLogger(__name__)

_CEL = cast(Table, Cel.__table__)
_QUEUE_LOG = cast(Table, QueueLog.__table__)
_CURSORS = cast(Table, RecordCursor.__table__)
_EPOCH = datetime(1970, 1, 1)
_HEAD_BYTES = 256  # of the first line, checksummed into the file's identity
_CEL_COLUMNS = tuple(column for column, _field in CEL_CSV_FIELDS)

Row = dict[str, Any]


def _epoch_text(text: str) -> datetime | None:
    """``"<seconds>.<micro>"`` (cel_custom) or ``"<seconds>"`` (queue_log) as naive UTC.

    Parsed as text, not float: 1.8e9 s with microseconds is at the edge of a double.
    """
    seconds, _, fraction = text.strip().partition(".")
    if not seconds.isdigit() or not (fraction == "" or fraction.isdigit()):
        return None
    micro = int((fraction + "000000")[:6])
    try:
        return _EPOCH + timedelta(seconds=int(seconds), microseconds=micro)
    except OverflowError:
        return None


def _clean(table: Table, row: Row) -> Row:
    """NUL stripped, strings cut to the column's length: no value can fail the insert."""
    for name, value in row.items():
        if isinstance(value, str):
            value = value.replace("\x00", "")
            length = getattr(table.c[name].type, "length", None)
            if isinstance(table.c[name].type, String) and length:
                value = value[:length]
            row[name] = value
    return row


def parse_cel_line(line: str) -> Row | None:
    """One cel_custom CSV line as a ``cel`` row, or None when it is not one."""
    try:
        fields = next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return None
    if len(fields) != len(_CEL_COLUMNS):
        return None
    row: Row = dict(zip(_CEL_COLUMNS, fields, strict=True))
    when = _epoch_text(row["eventtime"])
    if when is None or not row["eventtype"]:
        return None
    row["eventtime"] = when
    amaflags = row["amaflags"].strip()
    row["amaflags"] = int(amaflags) if amaflags.isdigit() else 0
    return _clean(_CEL, row)


def parse_queue_log(line: str) -> Row | None:
    """One ``queue_log`` file line as a row of the realtime table, or None.

    The file has whole seconds and every data field after the event; the table has
    data1…data5 as ``queue_adaptive_realtime`` splits them (a sixth and later field
    stay joined in data5, as Asterisk does).
    """
    entry = parse_queue_log_line(line)
    if entry is None or not math.isfinite(entry.time):
        return None
    when = _epoch_text(line.split("|", 1)[0])
    if when is None:
        return None
    data = [*entry.data[:4], "|".join(entry.data[4:])]
    data += [""] * (5 - len(data))
    row: Row = {
        "time": when,
        "callid": entry.callid,
        "queuename": entry.queue,
        "agent": entry.agent,
        "event": entry.event,
        **{f"data{i}": data[i - 1] for i in range(1, 6)},
    }
    return _clean(_QUEUE_LOG, row)


@dataclass(frozen=True, slots=True)
class Source:
    """One file of the record: where it is, where its lines go, how they parse."""

    name: str  # the cursor's key in record_cursors
    relative: str  # under Asterisk's log dir
    table: Table
    parse: Callable[[str], Row | None]


CEL_SOURCE = Source("file:cel", f"{CEL_CSV_DIR}/{CEL_CSV_FILE}", _CEL, parse_cel_line)
QUEUE_LOG_SOURCE = Source("file:queue_log", QUEUE_LOG_FILE, _QUEUE_LOG, parse_queue_log)
SOURCES = (CEL_SOURCE, QUEUE_LOG_SOURCE)


@dataclass(frozen=True, slots=True)
class _Cursor:
    identity: str
    position: int


class _CursorMoved(Exception):
    """Another ingester moved the cursor first: this batch is rolled back."""


def identity_of(path: Path) -> str | None:
    """``dev:inode:crc32`` of the file's first line (up to 256 bytes), or None if absent."""
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            head = fh.read(_HEAD_BYTES).split(b"\n", 1)[0]
    except FileNotFoundError:
        return None
    return f"{stat.st_dev}:{stat.st_ino}:{zlib.crc32(head):08x}"


def _rotated(path: Path, identity: str) -> Path | None:
    """The file next to ``path`` that still has ``identity`` (renamed by a rotation)."""
    try:
        siblings = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]
    except FileNotFoundError:
        return None
    for sibling in sorted(siblings):
        if identity_of(sibling) == identity:
            return sibling
    return None


def _load(conn: Connection, name: str) -> _Cursor | None:
    row = conn.execute(
        select(_CURSORS.c.identity, _CURSORS.c.position).where(_CURSORS.c.source == name)
    ).first()
    return None if row is None else _Cursor(str(row.identity), int(row.position))


def _save(conn: Connection, name: str, old: _Cursor | None, new: _Cursor) -> None:
    """Compare-and-set: only from the cursor this batch started at."""
    if old is None:  # a racing first insert fails on the primary key and rolls back
        conn.execute(
            insert(_CURSORS).values(source=name, identity=new.identity, position=new.position)
        )
        return
    moved = conn.execute(
        update(_CURSORS)
        .where(
            _CURSORS.c.source == name,
            _CURSORS.c.identity == old.identity,
            _CURSORS.c.position == old.position,
        )
        .values(identity=new.identity, position=new.position)
    )
    if moved.rowcount != 1:
        raise _CursorMoved(name)


def _whole_lines(path: Path, position: int, limit: int) -> tuple[list[bytes], int]:
    """Whole lines from ``position`` (at most ``limit`` bytes), and the offset after them."""
    with open(path, "rb") as fh:
        fh.seek(position)
        data = fh.read(limit)
        end = data.rfind(b"\n")
        if end >= 0:
            return data[: end + 1].splitlines(), position + end + 1
        if len(data) < limit:
            return [], position  # a partial last line: Asterisk is still writing it
        # One line longer than a whole batch: no record is that long; skip to its end.
        skipped = len(data)
        while chunk := fh.read(limit):
            newline = chunk.find(b"\n")
            if newline >= 0:
                log.warning("record %s: a line over %d bytes skipped", path.name, limit)
                return [b"\0"], position + skipped + newline + 1  # counted as garbage
            skipped += len(chunk)
        return [], position  # ... and still being written


def _batch(
    conn: Connection, source: Source, path: Path, start: _Cursor, limit: int
) -> tuple[int, int, _Cursor]:
    """Parse, insert and move the cursor for one batch: (rows, garbage, new cursor)."""
    lines, after = _whole_lines(path, start.position, limit)
    rows: list[Row] = []
    garbage = 0
    for offset, raw in enumerate(lines):
        if not raw.strip():
            continue
        row = source.parse(raw.decode("utf-8", errors="replace"))
        if row is None:
            garbage += 1
            log.warning(
                "record %s: line %d of batch at byte %d is not a record, skipped: %.80r",
                path.name,
                offset + 1,
                start.position,
                raw[:80],
            )
            continue
        rows.append(row)
    if rows:
        conn.execute(insert(source.table), rows)
    return len(rows), garbage, _Cursor(start.identity, after)


def _plan(conn: Connection, source: Source, path: Path) -> tuple[Path, _Cursor, _Cursor | None]:
    """Which file to read from where: (file, start, the stored cursor); raises if none."""
    cursor = _load(conn, source.name)
    current = identity_of(path)
    if current is None:
        raise FileNotFoundError(path)
    if cursor is None:
        return path, _Cursor(current, 0), None
    if cursor.identity != current:
        rotated = _rotated(path, cursor.identity)
        if rotated is not None and rotated.stat().st_size > cursor.position:
            return rotated, cursor, cursor  # finish the rotated file first
        log.info("record %s: a new file, read from its start", path.name)
        return path, _Cursor(current, 0), cursor
    if path.stat().st_size < cursor.position:
        log.warning("record %s: truncated, read again from its start", path.name)
        return path, _Cursor(current, 0), cursor
    return path, cursor, cursor


def _pass(
    engine: Engine, source: Source, path: Path, limit: int, max_bytes: int | None
) -> tuple[int, int]:
    """Batches until the file is read to its last whole line: (rows, garbage lines)."""
    rows = garbage = done = 0
    while max_bytes is None or done < max_bytes:
        try:
            with engine.begin() as conn:
                try:
                    read_from, start, cursor = _plan(conn, source, path)
                except FileNotFoundError:
                    break
                added, skipped, new = _batch(conn, source, read_from, start, limit)
                if read_from != path and new == start:
                    # A rotated file ends in a line that will never be finished.
                    log.warning("record %s: partial last line of %s dropped", path, read_from)
                    skipped += 1
                    new = _Cursor(identity_of(path) or "", 0)
                if new == cursor:
                    break  # nothing new
                _save(conn, source.name, cursor, new)
        except _CursorMoved:
            log.info("record %s: another ingester moved first; batch rolled back", path.name)
            break
        rows += added
        garbage += skipped
        done += max(0, new.position - start.position)
        if new == start:
            break
    return rows, garbage


def ingest_once(
    engine: Engine,
    log_dir: Path | str,
    *,
    batch_bytes: int = 1 << 20,
    max_bytes: int | None = None,
    sources: tuple[Source, ...] = SOURCES,
) -> dict[str, int]:
    """Read every record file in ``log_dir`` up to its last whole line into the tables.

    Returns rows added per table and garbage lines skipped. ``batch_bytes`` is what one
    transaction reads; ``max_bytes`` bounds one call per file (None: to the end).
    """
    counts = {"cel": 0, "queue_log": 0, "garbage": 0}
    for source in sources:
        path = Path(log_dir) / source.relative
        rows, garbage = _pass(engine, source, path, batch_bytes, max_bytes)
        counts[source.table.name] += rows
        counts["garbage"] += garbage
    return counts
