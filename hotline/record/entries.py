"""The two kinds of entry in Asterisk's own record, as typed values.

* :class:`CelEvent`: one Channel Event Logging row (``cel_pgsql`` into the ``cel`` table,
  or ``cel_custom`` lines ingested into the same table on the SQLite default). CEL is
  per channel and complete: ``CHAN_START`` … ``HANGUP`` (its ``extra`` is JSON with
  ``hangupcause``, ``hangupsource`` and ``dialstatus``), ``ANSWER``, ``APP_START``,
  ``BRIDGE_ENTER``/``BRIDGE_EXIT`` (``peer``), ``USER_DEFINED`` (``CELGenUserEvent``
  from the dialplan and the IVR: ``userdeftype`` and ``extra``) and, once the last
  channel of a Linkedid is gone, ``LINKEDID_END``.
* :class:`QueueLogEntry`: one line of app_queue's ``queue_log`` (file or realtime
  table): ``time|callid|queue|agent|event|data1|…``; callid is the caller channel's
  Uniqueid.

Both are plain values with no I/O, so the classification that reads them
(:mod:`hotline.record.classify`) is tested from recorded rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["CelEvent", "QueueLogEntry", "parse_queue_log", "parse_queue_log_line"]


@dataclass(frozen=True, slots=True)
class CelEvent:
    """One CEL row. ``id`` orders rows as Asterisk wrote them (the table's serial)."""

    id: int
    eventtype: str  # CHAN_START, ANSWER, HANGUP, APP_START, BRIDGE_ENTER, USER_DEFINED, ...
    eventtime: float  # epoch seconds, microsecond precision
    uniqueid: str
    linkedid: str
    channame: str = ""
    cid_num: str = ""
    cid_name: str = ""
    exten: str = ""
    context: str = ""
    appname: str = ""
    appdata: str = ""
    peer: str = ""
    userdeftype: str = ""  # USER_DEFINED only: the CELGenUserEvent's name
    extra: str = ""  # JSON (HANGUP, BRIDGE_*, LINKEDID_END...) or a user event's text


@dataclass(frozen=True, slots=True)
class QueueLogEntry:
    """One ``queue_log`` fact; ``time`` in whole epoch seconds as Asterisk writes it."""

    time: float
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def field(self, index: int) -> str:
        """``data<index>`` as Asterisk numbers them (1-based); "" when absent."""
        return self.data[index - 1] if 0 < index <= len(self.data) else ""


def parse_queue_log_line(line: str) -> QueueLogEntry | None:
    """One file line, or None when it is not a queue_log line (never raises)."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return None
    try:
        stamp = float(parts[0])
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp < 0:
        return None
    event = parts[4].strip().upper()
    if not event:
        return None
    return QueueLogEntry(stamp, parts[1], parts[2], parts[3], event, tuple(parts[5:]))


def parse_queue_log(lines: Iterable[str]) -> Iterator[QueueLogEntry]:
    """The parseable lines; the rest are dropped."""
    for line in lines:
        entry = parse_queue_log_line(line)
        if entry is not None:
            yield entry
