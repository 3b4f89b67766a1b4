"""The call-log writer: :class:`CallRecord` batches in, idempotent upserts out.

The tracker may hand the same call over several times (a provisional row while it is
queued, the final row at hangup, and again after a resync or a retry), so every write
is an ``INSERT … ON CONFLICT (linkedid) DO UPDATE``: replaying a batch changes nothing.

Rules the upsert keeps:

* ``notes`` and ``disposition`` belong to the agent's wrap-up and are never written
  here, so a late replay cannot wipe what the agent typed.
* A provisional (``in_progress``) record never overwrites a finished one: a retried
  batch that arrives after the final record must not turn a call back into a live one.
* A record settled from Asterisk's record (``settled_by='reconciled'``) never
  overwrites a row the live path settled; the reverse is allowed (docs/reliability.md).
* ``customer_id`` is only linked when the caller's number belongs to exactly one
  customer; a family or shop line stays NULL rather than being pinned on one person.
  An existing link is kept when a replay cannot resolve one (the agent may have
  picked the customer during the call).

Failure modes: a database error for the batch (server down, lock timeout) is raised so
the caller can retry the whole batch; one bad record must not sink the others, so
records are sanitised first (lone surrogates, NULs, oversized strings, absurd numbers),
and if the database still rejects the batch, it is retried record by record inside
savepoints and only the rejected records are logged and dropped.

Synchronous on purpose: the service runs it in a worker thread.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, case, func, not_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError

from hotline.calls.records import CallRecord, Outcome, SettledBy
from hotline.customers.lookup import owner_ids, sole_owner
from hotline.db.models import CallLog, Customer
from hotline.phones import to_e164

__all__ = ["CallLogWriter"]

log = logging.getLogger(__name__)

_TABLE = cast(Table, CallLog.__table__)
# Never touched by the upsert: the key, the surrogate id and the agent's wrap-up.
_PRESERVED = frozenset({"id", "linkedid", "notes", "disposition", "wrapped_up_at"})
_UPDATED = [c.name for c in _TABLE.columns if c.name not in _PRESERVED]
_STRING_LIMITS: dict[str, int] = {
    c.name: length
    for c in _TABLE.columns
    if (length := getattr(c.type, "length", None)) is not None
}
_TIME_FIELDS = ("arrived_at", "queued_at", "answered_at", "ended_at")
# Epoch bounds for a plausible Asterisk timestamp: 2000-01-01 .. 2100-01-01.
_MIN_EPOCH, _MAX_EPOCH = 946_684_800.0, 4_102_444_800.0
_MAX_DURATION = 7 * 24 * 3600.0  # a week-long call is a bug, not a call
_MAX_LIST = 100
_INT32_MAX = 2**31 - 1


def _small_int(value: object, low: int, high: int, name: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(name)
        return None
    return value


def _clean_text(value: object, limit: int | None) -> str:
    """Text that every backend accepts: valid UTF-8, no NUL, within the column width."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    # Lone surrogates (from a bad decode upstream) cannot be encoded as UTF-8; a
    # round-trip through UTF-16 keeps valid pairs and turns strays into U+FFFD.
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = text.replace("\x00", "")
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


class CallLogWriter:
    """Upserts call records into ``call_logs``. One instance per engine; thread-safe."""

    def __init__(self, engine: Engine, *, region: str = "CN") -> None:
        dialect = engine.dialect.name
        self._insert: Callable[[Table], postgresql.Insert | sqlite.Insert]
        if dialect == "postgresql":
            self._insert = postgresql.insert
        elif dialect == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"unsupported database dialect {dialect!r}")
        self.engine = engine
        self.region = region
        self.skipped = 0  # records dropped as unusable since start (for metrics)

    def write(self, records: Sequence[CallRecord]) -> int:
        """Upsert ``records`` in one transaction; return how many were written.

        Records dropped as unusable (no linkedid, rejected by the database) are logged
        and not counted. Raises on any database failure that is not about one record,
        leaving nothing written, so the caller can retry the same batch.
        """
        rows = self._prepare(records)
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                self._resolve_customers(conn, rows)
                conn.execute(self._statement(), rows)
            return len(rows)
        except (DataError, IntegrityError) as exc:
            log.warning(
                "call-log batch of %d rejected (%s); retrying record by record",
                len(rows),
                type(exc).__name__,
            )
        written = 0
        with self.engine.begin() as conn:
            self._resolve_customers(conn, rows)
            statement = self._statement()
            for row in rows:
                try:
                    with conn.begin_nested():
                        conn.execute(statement, [row])
                    written += 1
                except (DataError, IntegrityError) as exc:
                    self.skipped += 1
                    log.warning(
                        "call-log record linkedid=%s rejected by the database: %s",
                        row["linkedid"],
                        type(exc).__name__,
                    )
        return written

    # -- preparation (no I/O) -------------------------------------------------------

    def _prepare(self, records: Iterable[CallRecord]) -> list[dict[str, Any]]:
        """Sanitise and deduplicate: the last record of a linkedid in a batch wins.

        Deduplication is required, not cosmetic: PostgreSQL refuses an upsert that
        touches the same row twice in one statement.
        """
        by_linkedid: dict[str, dict[str, Any]] = {}
        for record in records:
            try:
                row = self._row(record)
            except Exception:  # a record we cannot even read must not sink the batch
                self.skipped += 1
                log.exception("call-log record unusable; skipped")
                continue
            if row is None:
                self.skipped += 1
                continue
            by_linkedid.pop(row["linkedid"], None)
            by_linkedid[row["linkedid"]] = row
        return list(by_linkedid.values())

    def _row(self, record: CallRecord) -> dict[str, Any] | None:
        linkedid = _clean_text(record.linkedid, None).strip()
        if not linkedid or len(linkedid) > _STRING_LIMITS["linkedid"]:
            log.warning("call-log record without a usable linkedid (length %d)", len(linkedid))
            return None
        problems: list[str] = []

        def text(name: str, value: object) -> str:
            cleaned = _clean_text(value, _STRING_LIMITS.get(name))
            if cleaned != value and not (value is None and cleaned == ""):
                problems.append(name)
            return cleaned

        def optional_text(name: str, value: object) -> str | None:
            return None if value is None else (text(name, value) or None)

        def seconds(name: str, value: object, low: float, high: float) -> float | None:
            if value is None:
                return None
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                problems.append(name)
                return None
            return float(value)

        try:
            outcome = str(Outcome(record.outcome))
        except ValueError:
            problems.append("outcome")
            outcome = str(Outcome.FAILED)

        caller_number = text("caller_number", record.caller_number)
        caller_e164 = optional_text("caller_e164", record.caller_e164)
        if caller_e164 is None and caller_number:
            caller_e164 = to_e164(caller_number, self.region)

        customer_id = record.customer_id
        if customer_id is not None and (
            isinstance(customer_id, bool)
            or not isinstance(customer_id, int)
            or not 0 < customer_id <= _INT32_MAX
        ):
            problems.append("customer_id")
            customer_id = None

        hangup_cause = record.hangup_cause
        if hangup_cause is not None and (
            isinstance(hangup_cause, bool)
            or not isinstance(hangup_cause, int)
            or not 0 <= hangup_cause <= 1000
        ):
            problems.append("hangup_cause")
            hangup_cause = None

        row: dict[str, Any] = {
            "linkedid": linkedid,
            "outcome": outcome,
            "caller_uniqueid": text("caller_uniqueid", record.caller_uniqueid),
            "caller_channel": text("caller_channel", record.caller_channel),
            "caller_number": caller_number,
            "caller_e164": caller_e164,
            "caller_name": text("caller_name", record.caller_name),
            "customer_id": customer_id,
            "wait_seconds": seconds("wait_seconds", record.wait_seconds, 0, _MAX_DURATION),
            "talk_seconds": seconds("talk_seconds", record.talk_seconds, 0, _MAX_DURATION),
            "queue": optional_text("queue", record.queue),
            "queues": self._text_list("queues", record.queues, problems),
            "agent": optional_text("agent", record.agent),
            "agent_interface": optional_text("agent_interface", record.agent_interface),
            "queue_status": optional_text("queue_status", record.queue_status),
            "hangup_cause": hangup_cause,
            "ivr_path": self._text_list("ivr_path", record.ivr_path, problems),
            "dialect": optional_text("dialect", record.dialect),
            "route_source": optional_text("route_source", record.route_source),
            "priority": _small_int(record.priority, -1000, 1000, "priority", problems),
            "route_reasons": self._text_list("route_reasons", record.route_reasons, problems),
            "candidates": _small_int(record.candidates, 0, 10_000, "candidates", problems),
            "survey_score": _small_int(record.survey_score, 1, 3, "survey_score", problems),
            "customer_link_source": "ivr" if customer_id is not None else None,
            "settled_by": None if record.settled_by is None else str(record.settled_by),
            "end_reason": optional_text("end_reason", record.end_reason),
            "settled_at": None if outcome == str(Outcome.IN_PROGRESS) else datetime.now(UTC),
        }
        for name in _TIME_FIELDS:
            epoch = seconds(name, getattr(record, name), _MIN_EPOCH, _MAX_EPOCH)
            row[name] = None if epoch is None else datetime.fromtimestamp(epoch, UTC)
        if problems:
            # Field names only: the values may be personal data (names, numbers).
            log.warning("call-log record linkedid=%s sanitised: %s", linkedid, ", ".join(problems))
        return row

    @staticmethod
    def _text_list(name: str, values: object, problems: list[str]) -> list[str]:
        if not isinstance(values, list | tuple):
            if values:
                problems.append(name)
            return []
        cleaned = [_clean_text(v, 200) for v in values[:_MAX_LIST] if v is not None]
        if len(values) > _MAX_LIST or cleaned != list(values):
            problems.append(name)
        return cleaned

    # -- database -------------------------------------------------------------------

    def _statement(self) -> Any:
        insert = self._insert(_TABLE)
        excluded = insert.excluded
        table_columns = _TABLE.c
        updates: dict[str, Any] = {name: excluded[name] for name in _UPDATED}
        # Keep an existing link when this record cannot resolve one (see module doc), and
        # never undo an agent's choice: the agent heard the caller, the IVR only the number.
        by_agent = table_columns.customer_link_source == "agent"
        updates["customer_id"] = case(
            (by_agent, table_columns.customer_id),
            else_=func.coalesce(excluded.customer_id, table_columns.customer_id),
        )
        updates["customer_link_source"] = case(
            (by_agent, table_columns.customer_link_source),
            else_=func.coalesce(excluded.customer_link_source, table_columns.customer_link_source),
        )
        updates["survey_score"] = func.coalesce(excluded.survey_score, table_columns.survey_score)
        # When it was settled, and by whom: a replay of the same settlement keeps the first
        # time (writing a batch twice changes nothing); a new settler sets its own.
        updates["settled_at"] = case(
            (
                table_columns.settled_by == excluded.settled_by,
                func.coalesce(table_columns.settled_at, excluded.settled_at),
            ),
            else_=excluded.settled_at,
        )
        in_progress = str(Outcome.IN_PROGRESS)
        # A row the live path settled (it saw the call end) is never overwritten from the
        # record: the record is the fallback for what AMI missed (docs/reliability.md).
        settled_live = and_(
            table_columns.outcome != in_progress,
            table_columns.settled_by == str(SettledBy.LIVE),
        )
        from_record = excluded.settled_by == str(SettledBy.RECONCILED)
        return insert.on_conflict_do_update(
            index_elements=[table_columns.linkedid],
            set_=updates,
            where=and_(
                or_(excluded.outcome != in_progress, table_columns.outcome == in_progress),
                not_(and_(from_record, settled_live)),
            ),
        )

    def _resolve_customers(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Link rows to the caller's number's sole owner (:mod:`hotline.customers.lookup`).

        Also drops ids given by the IVR that no longer exist (a customer deleted while
        the call was up), which would otherwise fail the foreign key for the batch.
        """
        given = {row["customer_id"] for row in rows if row["customer_id"] is not None}
        if given:
            existing = set(conn.scalars(select(Customer.id).where(Customer.id.in_(given))).all())
            for row in rows:
                if row["customer_id"] is not None and row["customer_id"] not in existing:
                    log.warning(
                        "call-log record linkedid=%s names unknown customer id=%s; unlinked",
                        row["linkedid"],
                        row["customer_id"],
                    )
                    row["customer_id"] = None
                    row["customer_link_source"] = None
        numbers = {
            row["caller_e164"]
            for row in rows
            if row["customer_id"] is None and row["caller_e164"] is not None
        }
        if not numbers:
            return
        owners = owner_ids(conn, numbers)
        for row in rows:
            if row["customer_id"] is None and row["caller_e164"] is not None:
                owner = sole_owner(owners.get(row["caller_e164"], frozenset()))
                if owner is not None:
                    row["customer_id"] = owner
                    row["customer_link_source"] = "number"
