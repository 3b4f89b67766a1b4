"""Asterisk's own ``queue_log``, recounted: the independent witness for the wallboard.

The wallboard's figures come from AMI events through :class:`~hotline.live.state.LiveState`;
the call log's from the call tracker. ``app_queue`` also writes every queue exit to
``/var/log/asterisk/queue_log``, one line per fact, from its own variables and without
any AMI in between. Counting that file the same way (the metrics of docs/wallboard.md,
the unanswered-exit rule of :mod:`hotline.calls.outcomes`) and comparing catches an
aggregator that drifts: ``tests/e2e/test_wallboard.py`` makes that cross-check on the lab.

Line format (Asterisk 22, ``queue_log_to_file``)::

    time|callid|queue|agent|event|data1|data2|...

``time`` is whole epoch seconds, ``callid`` the caller channel's Uniqueid (``NONE`` for
member events), ``agent`` the member's name or interface (``NONE`` when not about one).
The events and their data that decide an outcome:

* ``CONNECT|holdtime|bridged-uniqueid|ringtime``: answered;
* ``ABANDON|position|origposition|waittime``: the caller hung up while queued (Asterisk
  logs this only for a hang-up, unlike the AMI ``QueueCallerAbandon``);
* ``EXITWITHTIMEOUT|position|origposition|waittime``: timeout;
* ``EXITEMPTY``, ``EXITWITHKEY``, ``WITHDRAW`` (and ``FULL``/``JOINEMPTY``/``JOINUNAVAIL``
  where a build logs them): overflow;
* ``COMPLETECALLER|holdtime|calltime|origposition``, ``COMPLETEAGENT`` (same),
  ``TRANSFER|exten|context|holdtime|calltime|origposition``, ``BLINDTRANSFER`` /
  ``ATTENDEDTRANSFER`` (…``|holdtime|calltime|origposition``): a handled call.

Waits here are whole seconds (``time(NULL) - start``), so a wait within a second of the
short-abandon threshold or of T may land on the other side of it than the AMI
timestamps put it; cross-check tests should keep their scenarios clear of those edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hotline.calls.outcomes import unanswered
from hotline.calls.records import Outcome
from hotline.live.model import COUNTED_OUTCOMES
from hotline.record.entries import QueueLogEntry, parse_queue_log, parse_queue_log_line

__all__ = ["QueueLogCounter", "QueueLogCounts", "QueueLogEntry", "count_queue_log", "parse"]

parse = parse_queue_log  # the one parser lives with the record (hotline/record/entries.py)

_OVERFLOW_EVENTS = frozenset(
    {"EXITEMPTY", "EXITWITHKEY", "WITHDRAW", "FULL", "JOINEMPTY", "JOINUNAVAIL"}
)
_COMPLETE_EVENTS = frozenset({"COMPLETECALLER", "COMPLETEAGENT"})
_TRANSFER_EVENTS = frozenset({"TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})


def _seconds(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


@dataclass(slots=True)
class QueueLogCounts:
    """One queue's figures, keyed and defined as the wallboard's ``queue_view``."""

    service_level_seconds: float
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_OUTCOMES, 0))
    entered: int = 0
    answered_within_sl: int = 0
    abandoned_within_sl: int = 0
    answered_wait: float = 0.0
    handled: int = 0
    talk: float = 0.0

    @property
    def service_level(self) -> float | None:
        answered = self.counts[Outcome.ANSWERED]
        return self.answered_within_sl / answered if answered else None

    @property
    def service_level2(self) -> float | None:
        den = self.counts[Outcome.ANSWERED] + self.counts[Outcome.ABANDONED]
        return (self.answered_within_sl + self.abandoned_within_sl) / den if den else None

    @property
    def asa(self) -> float | None:
        answered = self.counts[Outcome.ANSWERED]
        return self.answered_wait / answered if answered else None

    @property
    def abandon_rate(self) -> float | None:
        c = self.counts
        den = c[Outcome.ANSWERED] + c[Outcome.ABANDONED] + c[Outcome.TIMEOUT] + c[Outcome.OVERFLOW]
        return c[Outcome.ABANDONED] / den if den else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": {str(k): v for k, v in self.counts.items()},
            "entered": self.entered,
            "answered_within_sl": self.answered_within_sl,
            "abandoned_within_sl": self.abandoned_within_sl,
            "service_level": self.service_level,
            "service_level2": self.service_level2,
            "asa": self.asa,
            "abandon_rate": self.abandon_rate,
            "handled": self.handled,
            "talk_seconds": self.talk,
        }


class QueueLogCounter:
    """Counts outcomes per queue, optionally for one local ``day`` only.

    Duplicate outcome lines for the same ``(callid, queue, event)`` are counted once: a
    queue_log replicated or re-read after log rotation must not double the figures.
    """

    def __init__(
        self,
        *,
        short_abandon_seconds: float = 5.0,
        service_level_seconds: float | Mapping[str, float] = 20.0,
        timezone: str = "Asia/Shanghai",
        day: date | None = None,
    ) -> None:
        self.short_abandon_seconds = short_abandon_seconds
        self.service_level_seconds = service_level_seconds
        self.timezone = ZoneInfo(timezone)
        self.day = day
        self.queues: dict[str, QueueLogCounts] = {}
        self.lines = 0
        self.skipped = 0
        self._seen: set[tuple[str, str, str]] = set()

    def _queue(self, name: str) -> QueueLogCounts:
        counts = self.queues.get(name)
        if counts is None:
            level = self.service_level_seconds
            if isinstance(level, Mapping):
                level = level.get(name, 20.0)
            counts = self.queues[name] = QueueLogCounts(float(level))
        return counts

    def feed_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.lines += 1
            entry = parse_queue_log_line(line)
            if entry is None:
                if line.strip():
                    self.skipped += 1
                continue
            self.add(entry)

    def add(self, entry: QueueLogEntry) -> None:
        event = entry.event
        if entry.queue in ("", "NONE"):
            return  # QUEUESTART, CONFIGRELOAD: not about a queue
        if (
            self.day is not None
            and datetime.fromtimestamp(entry.time, self.timezone).date() != self.day
        ):
            return
        if event in ("CONNECT", "ABANDON", "EXITWITHTIMEOUT") or event in _OVERFLOW_EVENTS:
            key = (entry.callid, entry.queue, event)
            if entry.callid not in ("", "NONE"):
                if key in self._seen:
                    return
                self._seen.add(key)
        if event == "ENTERQUEUE":
            self._queue(entry.queue).entered += 1
        elif event == "CONNECT":
            counts = self._queue(entry.queue)
            wait = _seconds(entry.field(1))
            counts.counts[Outcome.ANSWERED] += 1
            counts.answered_wait += wait or 0.0
            counts.answered_within_sl += wait is not None and wait <= counts.service_level_seconds
        elif event == "ABANDON":  # a hang-up while queued: no QUEUESTATUS, the wait decides
            counts = self._queue(entry.queue)
            wait = _seconds(entry.field(3))
            outcome = unanswered(None, wait, self.short_abandon_seconds)
            counts.counts[outcome] += 1
            if outcome is Outcome.ABANDONED:
                counts.abandoned_within_sl += (
                    wait is not None and wait <= counts.service_level_seconds
                )
        elif event == "EXITWITHTIMEOUT":
            self._queue(entry.queue).counts[Outcome.TIMEOUT] += 1
        elif event in _OVERFLOW_EVENTS:
            self._queue(entry.queue).counts[Outcome.OVERFLOW] += 1
        elif event in _COMPLETE_EVENTS:
            self._handled(entry, 2)
        elif event in _TRANSFER_EVENTS:
            self._handled(entry, 4)  # …|holdtime|calltime|origposition

    def _handled(self, entry: QueueLogEntry, calltime_field: int) -> None:
        counts = self._queue(entry.queue)
        counts.handled += 1
        counts.talk += _seconds(entry.field(calltime_field)) or 0.0


def count_queue_log(lines: Iterable[str], **options: Any) -> dict[str, QueueLogCounts]:
    """Per-queue figures from queue_log lines (see :class:`QueueLogCounter` for options)."""
    counter = QueueLogCounter(**options)
    counter.feed_lines(lines)
    return counter.queues
