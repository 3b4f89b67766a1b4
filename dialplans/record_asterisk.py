"""The Asterisk side of a lab recording: the CEL and queue_log lines of one scenario.

Kept apart from the AMI capture because it reads Asterisk's own files, not a socket, and
only ``hotline lab record --asterisk-record`` needs it: the reconciler's classification
(:mod:`hotline.record.classify`) is checked against these lines, call for call, with the
AMI bytes of the same calls. :func:`started_at` is here too: a record is read together
with when Asterisk last started (a call cut by a restart never gets its end).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from pathlib import Path

from dialplans.config import CEL_CSV_FIELDS
from dialplans.lab import Lab

log = logging.getLogger(__name__)


class AsteriskRecord:
    """What Asterisk appends to its own record (CEL CSV, queue_log) during a scenario.

    The files only grow while the lab runs (a restart appends too), so the sizes taken
    before the scenario mark where its lines begin. CEL is written from Stasis, after
    the AMI events of the same moment: :meth:`take` waits until every Linkedid in the
    new lines has its ``LINKEDID_END`` (the last row Asterisk writes for a call) before
    it reads, and gives up after ``timeout`` (a call cut by a crash never gets one).
    """

    _TYPE = next(i for i, (column, _f) in enumerate(CEL_CSV_FIELDS) if column == "eventtype")
    _LINKEDID = next(i for i, (column, _f) in enumerate(CEL_CSV_FIELDS) if column == "linkedid")

    def __init__(self, lab: Lab) -> None:
        self.cel_path = lab.cel_file
        self.queue_log_path = lab.queue_log()
        self.cel_from = _size(self.cel_path)
        self.queue_log_from = _size(self.queue_log_path)

    def _open_linkedids(self, cel: bytes) -> set[str]:
        started: set[str] = set()
        ended: set[str] = set()
        for row in csv.reader(io.StringIO(cel.decode("utf-8", errors="replace"))):
            if len(row) <= max(self._TYPE, self._LINKEDID):
                continue
            kind, linkedid = row[self._TYPE], row[self._LINKEDID]
            (ended if kind == "LINKEDID_END" else started).add(linkedid)
        return started - ended

    def take(self, timeout: float = 10.0) -> tuple[bytes, bytes]:
        """The scenario's CEL lines and queue_log lines (whole lines only)."""
        deadline = time.monotonic() + timeout
        while True:
            cel = _complete_lines(_read_from(self.cel_path, self.cel_from))
            still_open = self._open_linkedids(cel)
            if not still_open:
                break
            if time.monotonic() >= deadline:
                log.warning("no LINKEDID_END for %s within %g s", sorted(still_open), timeout)
                break
            time.sleep(0.1)
        queue_log = _complete_lines(_read_from(self.queue_log_path, self.queue_log_from))
        return cel, queue_log


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def _complete_lines(data: bytes) -> bytes:
    """Up to the last newline: a line being written is not read half."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def started_at(lab: Lab) -> float | None:
    """When the lab's Asterisk process started (epoch s, 10 ms), from /proc; None if down."""
    pid = lab.pid()
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            ticks = int(fh.read().rsplit(") ", 1)[1].split()[19])
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


__all__ = ["AsteriskRecord", "started_at"]
