"""Reading a recording's Asterisk record (tests/fixtures/record/<scenario>.*).

Each scenario recorded from the lab (``dialplans/record.py``) has the AMI stream of its
calls (``.ami``) and what Asterisk wrote down about the same calls: cel_custom's output
(``.cel.csv``) and the queue_log (``.queue_log``). The reconciler's classification is
tested by reading the record into the typed entries the store hands it
(:class:`hotline.record.entries.CelEvent`, :class:`QueueLogEntry`) and comparing its rows
with the live tracker's rows from the ``.ami``.

cel_custom writes one quoted CSV line per event, its columns those of
``dialplans.config.CEL_CSV_FIELDS`` in order (the ``cel`` table's names, as the
ingester fills the table); JSON lines (``format = json``) are read too. A user event is
``USER_DEFINED`` with its name in ``userdeftype``, as cel_pgsql writes it; a backend
that puts the name in ``eventtype`` (with ``eventenum`` ``USER_DEFINED``) is brought to
that form.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialplans.config import CEL_CSV_FIELDS
from hotline.record.entries import CelEvent, QueueLogEntry, parse_queue_log

__all__ = [
    "RECORD_FIXTURES",
    "cel_fields",
    "read_cel",
    "read_queue_log",
    "recordings",
    "row_to_event",
]

RECORD_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "record"

# cel_custom field names (any case, qualifiers dropped) -> CelEvent attribute
_ALIASES = {
    "eventtype": "eventtype",
    "eventenum": "eventenum",
    "userdeftype": "userdeftype",
    "usereventname": "userdeftype",
    "eventtime": "eventtime",
    "name": "cid_name",
    "cidname": "cid_name",
    "cid_name": "cid_name",
    "num": "cid_num",
    "cidnum": "cid_num",
    "cid_num": "cid_num",
    "exten": "exten",
    "context": "context",
    "channame": "channame",
    "appname": "appname",
    "appdata": "appdata",
    "uniqueid": "uniqueid",
    "linkedid": "linkedid",
    "peer": "peer",
    "eventextra": "extra",
    "extra": "extra",
}


def recordings(root: Path = RECORD_FIXTURES) -> list[Path]:
    """Every scenario with its CEL, queue_log and AMI, by the ``.cel.csv`` file."""
    return sorted(
        p
        for p in root.rglob("*.cel.csv")
        if _sibling(p, ".ami").exists() and _sibling(p, ".queue_log").exists()
    )


def _sibling(cel_csv: Path, suffix: str) -> Path:
    return cel_csv.with_name(cel_csv.name.removesuffix(".cel.csv") + suffix)


def cel_fields() -> list[str]:
    """The CSV's columns in file order, named as the ``cel`` table's columns."""
    return [column for column, _field in CEL_CSV_FIELDS]


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text)  # cel.conf dateformat; UTC as usegmtime writes
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def row_to_event(row_id: int, row: Mapping[str, Any]) -> CelEvent:
    """One cel_custom record (field name -> value) as the typed row the store returns."""
    values: dict[str, Any] = {}
    for key, value in row.items():
        attr = _ALIASES.get(key.strip().lower())
        if attr is not None:
            values[attr] = value
    text = {k: "" if v is None else str(v) for k, v in values.items() if k != "eventtime"}
    eventtype = text.get("eventtype", "")
    userdeftype = text.get("userdeftype", "")
    if text.get("eventenum") == "USER_DEFINED" or eventtype == "USER_DEFINED":
        userdeftype = userdeftype or eventtype
        eventtype = "USER_DEFINED"
    extra = values.get("extra", "")
    return CelEvent(
        id=row_id,
        eventtype=eventtype,
        eventtime=_epoch(values.get("eventtime", 0.0)),
        uniqueid=text.get("uniqueid", ""),
        linkedid=text.get("linkedid", ""),
        channame=text.get("channame", ""),
        cid_num=text.get("cid_num", ""),
        cid_name=text.get("cid_name", ""),
        exten=text.get("exten", ""),
        context=text.get("context", ""),
        appname=text.get("appname", ""),
        appdata=text.get("appdata", ""),
        peer=text.get("peer", ""),
        userdeftype=userdeftype,
        extra=extra if isinstance(extra, str) else json.dumps(extra, separators=(",", ":")),
    )


def parse_cel(lines: Iterable[str], fields: list[str] | None = None) -> list[CelEvent]:
    """cel_custom output, JSON lines or CSV; ids are the line numbers (Asterisk's order)."""
    events: list[CelEvent] = []
    columns = fields
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            row = json.loads(line)
        else:
            columns = columns or cel_fields()
            values = next(csv.reader(io.StringIO(line)))
            row = dict(zip(columns, values, strict=False))
        events.append(row_to_event(number, row))
    return events


def read_cel(path: Path, fields: list[str] | None = None) -> list[CelEvent]:
    return parse_cel(path.read_text(encoding="utf-8").splitlines(), fields)


def read_queue_log(path: Path) -> list[QueueLogEntry]:
    return list(parse_queue_log(path.read_text(encoding="utf-8").splitlines()))
