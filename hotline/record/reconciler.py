"""The reconciler: settles the call log from Asterisk's own record (docs/reliability.md).

The live tracker writes a row per call from AMI, but AMI never replays what a client
missed: a call that ended while the link was down, or while ``hotline serve`` was not
running, keeps an ``in_progress`` row forever, and one that lived entirely inside such
a gap has no row at all. Asterisk wrote both to its record (CEL with ``LINKEDID_END``,
the ``queue_log``), so one pass here:

1. ingests the record's files when Asterisk writes files (the SQLite default);
2. takes every open (``in_progress``) row whose call is not among Asterisk's live
   channels, and every Linkedid that ended in the record (``LINKEDID_END`` after the
   cursor) with no row;
3. classifies each from its CEL rows and queue_log lines (:mod:`hotline.record.classify`,
   the same outcome rule as the live tracker) and upserts the rows it settles through
   the call-log writer, marked ``reconciled``: the writer never lets such a row
   overwrite one the live path settled, and a replay changes nothing (idempotent).

It is synchronous and touches only the database: the service runs :meth:`run_once` on
a worker thread, after every AMI login, when the tracker hands a call over, and every
``HOTLINE_RECONCILE_INTERVAL`` seconds; ``hotline calls reconcile`` runs it by hand.
What it needs from AMI (which Linkedids are live, when Asterisk last started) is passed
in, and ``live=None`` (AMI down) only settles calls the record itself says are over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from hotline.calls.records import NO_RECORD, CallRecord, Outcome, SettledBy
from hotline.calls.writer import CallLogWriter
from hotline.db.models import CallLog
from hotline.record import store
from hotline.record.classify import classify

__all__ = ["NO_RECORD", "ReconcileReport", "Reconciler"]

log = logging.getLogger(__name__)

_CURSOR = "reconciler:linkedid_end"
# Fields a reconciled record takes from the existing row when the record has nothing.
_FILLED = (
    "caller_name",
    "caller_e164",
    "customer_id",
    "dialect",
    "route_source",
    "priority",
    "route_reasons",
    "candidates",
    "survey_score",
    "ivr_path",
)
# What a row the record knows nothing of is settled from (see Reconciler._past_grace).
_FROM_ROW = (
    "caller_uniqueid",
    "caller_channel",
    "caller_number",
    "caller_name",
    "caller_e164",
    "customer_id",
    "queue",
    "agent",
    "agent_interface",
    "dialect",
    "route_source",
    "priority",
    "candidates",
    "survey_score",
)
_TIMES = ("arrived_at", "queued_at", "answered_at")
_BATCH = 2000  # Linkedids classified per database round; a pass loops until done


@dataclass(slots=True)
class ReconcileReport:
    """What one pass did; ``as_status`` is what ``/api/health`` shows."""

    settled: int = 0  # open rows settled from the record
    created: int = 0  # rows of calls that had none
    waiting: int = 0  # candidates the record does not yet say are over
    open_rows: int = 0  # in_progress rows left after the pass
    oldest_unsettled_at: float | None = None  # arrival of the oldest open row not live
    lag_seconds: float | None = None  # longest end → settled delay among this pass's rows
    ingested: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_status(self) -> dict[str, object]:
        return {
            "open_rows": self.open_rows,
            "oldest_unsettled_at": _iso(self.oldest_unsettled_at),
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
        }


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else store.epoch(value)


class Reconciler:
    """One instance per service; ``run_once`` is not reentrant (the service serialises it)."""

    def __init__(
        self,
        engine: Engine,
        writer: CallLogWriter,
        *,
        record_engine: Engine | None = None,
        log_dir: Any = None,
        short_abandon_seconds: float = 5.0,
        region: str = "CN",
        lookback_seconds: float = 86_400.0,
        record_grace_seconds: float = 600.0,
        default_dialect: str | None = None,
    ) -> None:
        self.engine = engine
        self.record_engine = record_engine or engine
        self.writer = writer
        self.log_dir = log_dir
        self.short_abandon_seconds = short_abandon_seconds
        self.region = region
        self.lookback_seconds = lookback_seconds
        self.record_grace_seconds = record_grace_seconds
        self.default_dialect = default_dialect  # the dialplan's DIALECT before the IVR's
        self.rows_reconciled = 0

    def run_once(
        self,
        *,
        live: frozenset[str] | None,
        asterisk_started_at: float | None = None,
        since: float | None = None,
        now: float | None = None,
    ) -> ReconcileReport:
        """One pass. ``live``: Linkedids of Asterisk's live channels (None: unknown).

        ``since`` (epoch) rescans the record's ends from then on, ignoring and keeping
        the stored cursor (``hotline calls reconcile --since``).
        """
        started = time.monotonic()
        now = time.time() if now is None else now
        report = ReconcileReport()
        if self.log_dir is not None:
            from hotline.record.ingest import ingest_once

            report.ingested = ingest_once(self.record_engine, self.log_dir)
        open_rows = self._open_rows()
        candidates = {
            linkedid: arrived
            for linkedid, arrived in open_rows.items()
            if live is None or linkedid not in live
        }
        cursor = self._cursor(now) if since is None else self._first_end_after(since)
        ended, last_id = self._ended_without_rows(cursor, live)
        for linkedid in ended:
            candidates.setdefault(linkedid, None)
        settled_lags: list[float] = []
        names = list(candidates)
        for start in range(0, len(names), _BATCH):
            chunk = names[start : start + _BATCH]
            records = self._classify(chunk, asterisk_started_at)
            if live is not None:
                records += self._past_grace(chunk, records, open_rows, now)
            report.waiting += len(chunk) - len(records)
            if records:
                self._fill_from_rows(records)
                self.writer.write(records)
                for record in records:
                    if record.linkedid in open_rows:
                        report.settled += 1
                    else:
                        report.created += 1
                    if record.ended_at is not None:
                        settled_lags.append(max(0.0, now - record.ended_at))
        if since is None and last_id is not None:
            self._save_cursor(last_id)
        self.rows_reconciled += report.settled + report.created
        left = self._open_rows()
        report.open_rows = len(left)
        unsettled = [
            arrived
            for linkedid, arrived in left.items()
            if arrived is not None and (live is None or linkedid not in live)
        ]
        report.oldest_unsettled_at = min(unsettled, default=None)
        report.lag_seconds = max(settled_lags, default=None)
        report.seconds = time.monotonic() - started
        if report.settled or report.created:
            log.info(
                "reconciled %d open row(s), created %d, %d waiting for the record (%.2f s)",
                report.settled,
                report.created,
                report.waiting,
                report.seconds,
            )
        return report

    # -- steps ---------------------------------------------------------------------

    def _open_rows(self) -> dict[str, float | None]:
        query = select(CallLog.linkedid, CallLog.arrived_at).where(
            CallLog.outcome == str(Outcome.IN_PROGRESS)
        )
        with self.engine.connect() as conn:
            return {linkedid: _epoch(arrived) for linkedid, arrived in conn.execute(query)}

    def _ended_without_rows(
        self, cursor: int, live: frozenset[str] | None
    ) -> tuple[list[str], int | None]:
        """Linkedids that ended in the record after ``cursor`` and have no row."""
        found: list[str] = []
        last_id: int | None = None
        after = cursor
        while True:
            ends = store.ended_since(self.record_engine, after_id=after, limit=_BATCH)
            if not ends:
                break
            after = last_id = ends[-1][0]
            linkedids = {linkedid for _, linkedid in ends}
            if live is not None:
                linkedids -= live
            with self.engine.connect() as conn:
                known = set(
                    conn.scalars(select(CallLog.linkedid).where(CallLog.linkedid.in_(linkedids)))
                )
            found.extend(sorted(linkedids - known))
            if len(ends) < _BATCH:
                break
        return found, last_id

    def _classify(
        self, linkedids: Iterable[str], asterisk_started_at: float | None
    ) -> list[CallRecord]:
        cel = store.cel_for(self.record_engine, list(linkedids))
        callids = {event.uniqueid for events in cel.values() for event in events}
        queue_log = store.queue_log_for(self.record_engine, sorted(callids))
        records: list[CallRecord] = []
        for linkedid, events in cel.items():
            entries = sorted(
                (e for uid in {ev.uniqueid for ev in events} for e in queue_log.get(uid, ())),
                key=lambda e: e.time,
            )
            try:
                record = classify(
                    events,
                    entries,
                    short_abandon_seconds=self.short_abandon_seconds,
                    region=self.region,
                    asterisk_started_at=asterisk_started_at,
                    default_dialect=self.default_dialect,
                    linkedid=linkedid,
                )
            except Exception:  # one unreadable call must not stop the others
                log.exception("could not classify linkedid=%s from the record", linkedid)
                continue
            if record is not None and record.linkedid == linkedid:
                records.append(record)
        return records

    def _past_grace(
        self,
        linkedids: list[str],
        settled: list[CallRecord],
        open_rows: dict[str, float | None],
        now: float,
    ) -> list[CallRecord]:
        """Open rows that Asterisk says are not live and whose record has been silent for
        ``record_grace_seconds``: the record lost their end (cel_pgsql drops what it
        cannot write while its database is down). They are settled from what is known,
        the call ended at its last recorded moment, ``end_reason="no_record"``: an
        answered call stays answered, any other is ``failed``. Bounded, and it says so
        (docs/reliability.md), instead of ``in_progress`` forever.
        """
        done = {record.linkedid for record in settled}
        stale = [lid for lid in linkedids if lid in open_rows and lid not in done]
        if not stale:
            return []
        heard = store.last_event_at(self.record_engine, stale)
        due = [
            lid
            for lid in stale
            if now - max(heard.get(lid, 0.0), open_rows[lid] or 0.0) >= self.record_grace_seconds
        ]
        if not due:
            return []
        # "Asterisk started after its last row" makes the classifier end the call there.
        forced = [r for r in self._classify(due, now) if r.linkedid in set(due)]
        for record in forced:
            record.end_reason = NO_RECORD
        found = {record.linkedid for record in forced}
        forced += self._from_rows([lid for lid in due if lid not in found])
        for record in forced:
            log.warning(
                "linkedid=%s: no end in Asterisk's record after %.0f s and not live: "
                "settled %s (no_record)",
                record.linkedid,
                self.record_grace_seconds,
                record.outcome,
            )
        return forced

    def _from_rows(self, linkedids: list[str]) -> list[CallRecord]:
        """Records of open rows the record knows nothing of, from the rows themselves."""
        if not linkedids:
            return []
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(CallLog).where(CallLog.linkedid.in_(linkedids))))
        records: list[CallRecord] = []
        for row in rows:
            values: dict[str, Any] = {name: getattr(row, name) for name in _FROM_ROW}
            for name in ("queues", "ivr_path", "route_reasons"):
                values[name] = list(getattr(row, name) or [])
            for name in _TIMES:
                values[name] = _epoch(getattr(row, name))
            record = CallRecord(linkedid=row.linkedid, **values)
            record.outcome = Outcome.ANSWERED if record.answered_at else Outcome.FAILED
            record.settled_by = SettledBy.RECONCILED
            record.end_reason = NO_RECORD
            records.append(record)
        return records

    def _fill_from_rows(self, records: list[CallRecord]) -> None:
        """Keep what the live path already knew where the record is silent.

        CEL knows the call's skeleton; the provisional row may also hold what the IVR
        said on AMI (the caller's name, the routing decision) before the gap.
        """
        columns = [getattr(CallLog, name) for name in _FILLED]
        query = select(CallLog.linkedid, *columns).where(
            CallLog.linkedid.in_([r.linkedid for r in records])
        )
        with self.engine.connect() as conn:
            rows = {row[0]: row[1:] for row in conn.execute(query)}
        for record in records:
            row = rows.get(record.linkedid)
            if row is None:
                continue
            for name, value in zip(_FILLED, row, strict=True):
                if value not in (None, "", []) and getattr(record, name) in (None, "", []):
                    setattr(record, name, list(value) if isinstance(value, list) else value)

    # -- the cursor over LINKEDID_END rows ------------------------------------------

    def _cursor(self, now: float) -> int:
        saved = store.load_cursor(self.engine, _CURSOR)
        if saved is not None:
            return saved
        return self._first_end_after(now - self.lookback_seconds)

    def _first_end_after(self, since: float) -> int:
        """The id just before the first ``LINKEDID_END`` at or after ``since``."""
        return store.last_id_before(self.record_engine, datetime.fromtimestamp(since, UTC))

    def _save_cursor(self, last_id: int) -> None:
        store.save_cursor(self.engine, _CURSOR, last_id)


def open_rows_count(engine: Engine) -> int:
    """Rows still ``in_progress`` (for the CLI's summary)."""
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).where(CallLog.outcome == str(Outcome.IN_PROGRESS)))
    return int(count or 0)
