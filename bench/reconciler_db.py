"""The reconciler on PostgreSQL: rows settled per second from a million CEL rows.

What an operator meets after a long outage: Asterisk went on writing its record while
``hotline serve`` was down, so the ``cel`` table holds a day of calls, half of them with
an open (``in_progress``) row the live path wrote before the gap, half with no row at
all. One :meth:`hotline.record.reconciler.Reconciler.run_once` settles them all.

The calls are generated, not recorded (a million rows of lab calls would take hours to
place): the two shapes the reconciler sees most, an answered call (18 CEL rows, 4
queue_log lines) and an abandoned one (8 rows, 2 lines), in the proportion 3:1, with the
columns cel_pgsql and the realtime queue_log fill. They are loaded with COPY.

Printed, in the same run:

* **reconciler**: the whole pass (find what to settle, read the record, classify,
  upsert), calls settled per second and CEL rows read per second; per batch of 2,000
  calls the median and p99 time per call;
* **baseline, the writer alone**: the same final records upserted by the call-log
  writer as the live path does it, calls per second; the difference is what reading
  and classifying the record costs.

    python -m bench.reconciler_db [--cel-rows 1000000] [--url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select, text

from hotline.calls.records import CallRecord
from hotline.calls.writer import CallLogWriter
from hotline.db.models import CallLog, Cel
from hotline.db.session import make_engine, upgrade
from hotline.record import reconciler as reconciler_module
from hotline.record.reconciler import Reconciler
from tests.support.postgres import ensure_database

T0 = 1_800_000_000.0
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = "hotline_bench_reconciler"
CEL_COLUMNS = (
    "eventtype",
    "eventtime",
    "userdeftype",
    "cid_name",
    "cid_num",
    "exten",
    "context",
    "channame",
    "appname",
    "appdata",
    "uniqueid",
    "linkedid",
    "extra",
)
QUEUE_LOG_COLUMNS = ("time", "callid", "queuename", "agent", "event", "data1", "data2", "data3")
ANSWERED_ROWS, ABANDONED_ROWS = 18, 8


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _hangup(source: str) -> str:
    return json.dumps({"hangupcause": 16, "hangupsource": source, "dialstatus": ""})


def _call(n: int, answered: bool) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """One call's CEL rows and queue_log lines, ``n`` making its ids and times unique."""
    base = T0 + n * 2.0
    uid = f"{int(base)}.{n}"
    chan = f"PJSIP/trunk-{n:08x}"
    num = f"138{n:08d}"
    cel: list[tuple[str, ...]] = []
    log: list[tuple[str, ...]] = []

    def row(kind: str, at: float, u: str, c: str, **kw: str) -> None:
        cel.append(
            (
                kind,
                _stamp(base + at),
                kw.get("userdeftype", ""),
                "",
                kw.get("num", num),
                "4000",
                "from-trunk",
                c,
                kw.get("appname", ""),
                kw.get("appdata", ""),
                u,
                uid,
                kw.get("extra", ""),
            )
        )

    def line(at: float, agent: str, event: str, *data: str) -> None:
        padded = (*data, "", "", "")[:3]
        log.append((_stamp(float(int(base + at))), uid, "cantonese", agent, event, *padded))

    def user(at: float, name: str, extra: str) -> None:
        payload = json.dumps({"extra": extra})
        row(
            "USER_DEFINED",
            at,
            uid,
            chan,
            userdeftype=name,
            appname="CELGenUserEvent",
            extra=payload,
        )

    row("CHAN_START", 0.0, uid, chan)
    row("ANSWER", 0.01, uid, chan, appname="Answer")
    user(
        0.2, "CustomerIdentified", "CustomerID=&Candidates=0&Dialect=cantonese&DialectSource=region"
    )
    user(0.3, "IvrStep", "Step=welcome")
    row("APP_START", 0.5, uid, chan, appname="Queue", appdata="cantonese,t,,,30")
    line(0.5, "NONE", "ENTERQUEUE", "", num, "1")
    if answered:
        agent_uid, agent = f"{int(base) + 1}.{n}", f"PJSIP/agent-1001-{n:08x}"
        row("CHAN_START", 1.0, agent_uid, agent, num="1001")
        row("ANSWER", 2.5, agent_uid, agent, num="1001")
        line(2.5, "1001", "CONNECT", "2", agent_uid, "1")
        row("BRIDGE_ENTER", 2.51, uid, chan)
        row("BRIDGE_ENTER", 2.512, agent_uid, agent, num="1001")
        row("BRIDGE_EXIT", 30.0, agent_uid, agent, num="1001")
        row("HANGUP", 30.0, agent_uid, agent, num="1001", extra=_hangup(agent))
        row("CHAN_END", 30.0, agent_uid, agent, num="1001")
        line(30.0, "1001", "COMPLETEAGENT", "2", "28", "1")
        row("BRIDGE_EXIT", 30.01, uid, chan)
        row("APP_END", 30.02, uid, chan, appname="Queue")
        user(30.03, "QueueResult", "queue=cantonese&status=&member=PJSIP/agent-1001")
        row("HANGUP", 31.0, uid, chan, extra=_hangup(agent))
        row("CHAN_END", 31.0, uid, chan)
        row("LINKEDID_END", 31.0, uid, "")
    else:
        row("HANGUP", 20.0, uid, chan, extra=_hangup(chan))
        line(20.0, "NONE", "ABANDON", "1", "1", "19")
        row("CHAN_END", 20.0, uid, chan)
        row("LINKEDID_END", 20.0, uid, "")
    return cel, log


def _tsv(rows: Iterator[tuple[str, ...]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    for count, values in enumerate(rows, start=1):
        escaped = (
            v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") for v in values
        )
        buffer.write("\t".join(escaped) + "\n")
        if count % 20_000 == 0:
            yield buffer.getvalue().encode()
            buffer = io.StringIO()
    yield buffer.getvalue().encode()


def load(engine: Engine, calls: int) -> tuple[int, list[str]]:
    """COPY the calls' record in; open rows for every other call. Returns CEL rows, ids."""
    cel_rows: list[tuple[str, ...]] = []
    log_rows: list[tuple[str, ...]] = []
    linkedids: list[str] = []
    for n in range(calls):
        cel, log = _call(n, answered=n % 4 != 3)
        cel_rows.extend(cel)
        log_rows.extend(log)
        linkedids.append(cel[0][10])
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, columns, rows in (
            ("cel", CEL_COLUMNS, cel_rows),
            ("queue_log", QUEUE_LOG_COLUMNS, log_rows),
        ):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for chunk in _tsv(iter(rows)):
                    copy.write(chunk)
        raw.commit()
    finally:
        raw.close()
    provisional = [
        CallRecord(linkedid=lid, caller_uniqueid=lid, caller_number="138", arrived_at=T0)
        for lid in linkedids[::2]
    ]
    writer = CallLogWriter(engine)
    for start in range(0, len(provisional), 2000):
        writer.write(provisional[start : start + 2000])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE cel; ANALYZE queue_log; ANALYZE call_logs"))
    return len(cel_rows), linkedids


class _TimedReconciler(Reconciler):
    """Times each batch of :meth:`_classify` + write (the loop in ``run_once``)."""

    batch_seconds: list[float]
    batch_sizes: list[int]

    def _classify(self, linkedids, asterisk_started_at):  # type: ignore[no-untyped-def]
        names = list(linkedids)
        started = time.perf_counter()
        records = super()._classify(names, asterisk_started_at)
        self.batch_seconds.append(time.perf_counter() - started)
        self.batch_sizes.append(len(names))
        return records


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _fresh_database(url: str) -> str:
    return ensure_database(url.rsplit("/", 1)[0] + "/postgres", DB_NAME, fresh=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cel-rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=ADMIN_URL, help="any database URL of the server")
    args = parser.parse_args(argv)
    per_call = (3 * ANSWERED_ROWS + ABANDONED_ROWS) / 4
    calls = max(4, int(args.cel_rows / per_call))
    url = _fresh_database(args.url)
    engine = make_engine(url, pool_size=4)
    upgrade(engine)
    started = time.perf_counter()
    cel_count, _ = load(engine, calls)
    print(
        f"loaded {cel_count:,} CEL rows, {calls:,} calls in {time.perf_counter() - started:.1f} s"
    )

    reconciler = _TimedReconciler(engine, CallLogWriter(engine), lookback_seconds=10 * 86_400)
    reconciler.batch_seconds, reconciler.batch_sizes = [], []
    started = time.perf_counter()
    report = reconciler.run_once(live=frozenset(), now=T0 + calls * 2.0 + 60)
    elapsed = time.perf_counter() - started
    settled = report.settled + report.created
    with engine.connect() as conn:
        open_rows = conn.scalar(select(func.count()).where(CallLog.outcome == "in_progress"))
        outcomes = dict(
            conn.execute(select(CallLog.outcome, func.count()).group_by(CallLog.outcome)).all()
        )
        cel_total = int(conn.scalar(select(func.count()).select_from(Cel)) or 0)
    per_call_ms = [
        s / n * 1000
        for s, n in zip(reconciler.batch_seconds, reconciler.batch_sizes, strict=True)
        if n
    ]

    # Baseline: the same final rows through the writer alone, into a fresh table.
    with engine.connect() as conn:
        finals = [
            CallRecord(
                linkedid=row.linkedid,
                outcome=row.outcome,
                caller_uniqueid=row.caller_uniqueid,
                caller_number=row.caller_number,
                arrived_at=row.arrived_at.timestamp(),
                ended_at=row.ended_at.timestamp() if row.ended_at else None,
                agent=row.agent,
                queue=row.queue,
            )
            for row in conn.execute(select(CallLog))
        ]
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE call_logs CASCADE"))
    writer = CallLogWriter(engine)
    batch_ms: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(finals), 2000):
        chunk = finals[start : start + 2000]
        t = time.perf_counter()
        writer.write(chunk)
        batch_ms.append((time.perf_counter() - t) / len(chunk) * 1000)
    baseline = time.perf_counter() - started

    print(f"CEL rows in the table: {cel_total:,}; calls: {calls:,}")
    print(
        f"reconciler pass: {elapsed:.1f} s; settled {report.settled:,} open rows, "
        f"created {report.created:,}"
    )
    print(f"  outcomes: {outcomes}; still open: {open_rows}")
    print(
        f"  {settled / elapsed:,.0f} calls/s, {cel_total / elapsed:,.0f} CEL rows/s; per call "
        f"median {statistics.median(per_call_ms):.3f} ms, p99 {_p(per_call_ms, 0.99):.3f} ms "
        f"(read + classify, per batch of {reconciler_module._BATCH:,})"
    )
    print(
        f"baseline, the writer alone: {len(finals) / baseline:,.0f} calls/s; per call median "
        f"{statistics.median(batch_ms):.3f} ms, p99 {_p(batch_ms, 0.99):.3f} ms"
    )
    engine.dispose()
    return 0 if open_rows == 0 and settled == calls else 1


if __name__ == "__main__":
    sys.exit(main())
