"""Reading Asterisk's record out of the ``cel`` and ``queue_log`` tables.

On PostgreSQL Asterisk writes both tables itself (cel_pgsql with ``usegmtime``, the
realtime queue_log with ``queue_log_realtime_use_gmt``); on SQLite the ingester copies
Asterisk's files into the same tables (:mod:`hotline.record.ingest`). Either way the
times in them are naive UTC, read here into epoch seconds, and the values handed on
are the typed entries of :mod:`hotline.record.entries`.

A call's Linkedid can change under a channel (a transfer or a pickup bridges two calls,
and the younger call's channels take the older Linkedid from then on), so
:func:`cel_for` returns, for each Linkedid asked, its own rows *and* every row of the
channels that ever carried it: the classifier then sees each of those channels whole.

Synchronous SQLAlchemy Core: the reconciler runs on a worker thread.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from hotline.db.models import Cel, QueueLog, RecordCursor
from hotline.record.entries import CelEvent, QueueLogEntry

__all__ = [
    "cel_for",
    "ended_since",
    "epoch",
    "last_event_at",
    "last_id_before",
    "load_cursor",
    "naive_utc",
    "queue_log_for",
    "save_cursor",
]

_CEL = cast(Table, Cel.__table__)
_QUEUE_LOG = cast(Table, QueueLog.__table__)
_CURSORS = cast(Table, RecordCursor.__table__)
Bind = Engine | Connection
_CHUNK = 500  # ids per IN (...): well under every backend's parameter limit


def epoch(value: datetime) -> float:
    """A naive UTC datetime (as both backends hand it back) in epoch seconds; an aware one
    as it says."""
    return value.replace(tzinfo=UTC).timestamp() if value.tzinfo is None else value.timestamp()


def naive_utc(epoch: float) -> datetime:
    """Epoch seconds as the naive UTC datetime the record's tables hold."""
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


@contextmanager
def _connected(bind: Bind) -> Iterator[Connection]:
    """The caller's connection as it is (its transaction, its snapshot), or a new one."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _cel_event(row: Any) -> CelEvent:
    return CelEvent(
        id=int(row.id),
        eventtype=row.eventtype,
        eventtime=epoch(row.eventtime),
        uniqueid=row.uniqueid,
        linkedid=row.linkedid,
        channame=row.channame,
        cid_num=row.cid_num,
        cid_name=row.cid_name,
        exten=row.exten,
        context=row.context,
        appname=row.appname,
        appdata=row.appdata,
        peer=row.peer,
        userdeftype=row.userdeftype,
        extra=row.extra,
    )


def cel_for(bind: Bind, linkedids: Sequence[str]) -> dict[str, list[CelEvent]]:
    """Each Linkedid's CEL rows, ordered by id, with the whole of every channel of it.

    A Linkedid's channels are those with at least one row under it; every row of those
    channels is returned with it, whatever Linkedid the row carries (before a merge the
    younger call's channels carried their own). A channel can so appear under two asked
    Linkedids, whole under each. Linkedids with no row at all are absent.
    """
    wanted = sorted(set(linkedids))
    out: dict[str, list[CelEvent]] = {}
    with _connected(bind) as conn:
        for chunk in _chunks(wanted):
            own = list(conn.execute(select(_CEL).where(_CEL.c.linkedid.in_(chunk))))
            channels: dict[str, set[str]] = defaultdict(set)  # Linkedid → its uniqueids
            for row in own:
                channels[row.linkedid].add(row.uniqueid)
            owners: dict[str, set[str]] = defaultdict(set)  # uniqueid → asked Linkedids
            for linkedid, uids in channels.items():
                for uid in uids:
                    owners[uid].add(linkedid)
            rows = {int(row.id): row for row in own}
            for uid_chunk in _chunks(sorted(owners)):
                query = select(_CEL).where(
                    _CEL.c.uniqueid.in_(uid_chunk), _CEL.c.linkedid.not_in(chunk)
                )
                rows.update((int(row.id), row) for row in conn.execute(query))
            grouped: dict[str, list[CelEvent]] = defaultdict(list)
            for row_id in sorted(rows):
                row = rows[row_id]
                event = _cel_event(row)
                belongs = set(owners.get(row.uniqueid, ()))
                if row.linkedid in channels:
                    belongs.add(row.linkedid)
                for linkedid in belongs:
                    grouped[linkedid].append(event)
            out.update(grouped)
    return out


def queue_log_for(bind: Bind, callids: Sequence[str]) -> dict[str, list[QueueLogEntry]]:
    """Each caller channel's queue_log facts, in the order Asterisk wrote them."""
    out: dict[str, list[QueueLogEntry]] = defaultdict(list)
    wanted = sorted(set(callids))
    with _connected(bind) as conn:
        for chunk in _chunks(wanted):
            query = (
                select(_QUEUE_LOG).where(_QUEUE_LOG.c.callid.in_(chunk)).order_by(_QUEUE_LOG.c.id)
            )
            for row in conn.execute(query):
                data = [row.data1 or "", row.data2 or "", row.data3 or "", row.data4 or ""]
                data.append(row.data5 or "")
                while data and not data[-1]:  # the file has no trailing empty fields either
                    data.pop()
                out[row.callid].append(
                    QueueLogEntry(
                        time=epoch(row.time),
                        callid=row.callid,
                        queue=row.queuename,
                        agent=row.agent,
                        event=row.event.upper(),
                        data=tuple(data),
                    )
                )
    return dict(out)


def last_event_at(bind: Bind, linkedids: Sequence[str]) -> dict[str, float]:
    """When the record last heard of each Linkedid (its newest CEL row); absent: never."""
    out: dict[str, float] = {}
    with _connected(bind) as conn:
        for chunk in _chunks(sorted(set(linkedids))):
            query = (
                select(_CEL.c.linkedid, func.max(_CEL.c.eventtime))
                .where(_CEL.c.linkedid.in_(chunk))
                .group_by(_CEL.c.linkedid)
            )
            for linkedid, newest in conn.execute(query):
                if newest is not None:
                    out[str(linkedid)] = epoch(newest)
    return out


def ended_since(bind: Bind, *, after_id: int, limit: int) -> list[tuple[int, str]]:
    """``(id, linkedid)`` of ``LINKEDID_END`` rows after ``after_id``, oldest first."""
    query = (
        select(_CEL.c.id, _CEL.c.linkedid)
        .where(_CEL.c.eventtype == "LINKEDID_END", _CEL.c.id > after_id)
        .order_by(_CEL.c.id)
        .limit(limit)
    )
    with _connected(bind) as conn:
        return [(int(i), str(linkedid)) for i, linkedid in conn.execute(query)]


def last_id_before(engine: Engine, moment: datetime) -> int:
    """The highest CEL id written before ``moment`` (0 when none): a cursor start."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    query = select(func.max(_CEL.c.id)).where(_CEL.c.eventtime < naive)
    with engine.connect() as conn:
        value = conn.scalar(query)
    return int(value or 0)


def load_cursor(engine: Engine, source: str) -> int | None:
    with engine.connect() as conn:
        value = conn.scalar(select(_CURSORS.c.position).where(_CURSORS.c.source == source))
    return None if value is None else int(value)


def save_cursor(engine: Engine, source: str, position: int, identity: str = "") -> None:
    """Upsert one reader's position (idempotent)."""
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(_CURSORS)
    statement = insert.values(source=source, identity=identity, position=position)
    statement = statement.on_conflict_do_update(
        index_elements=[_CURSORS.c.source],
        set_={"identity": identity, "position": position},
    )
    with engine.begin() as conn:
        conn.execute(statement)
