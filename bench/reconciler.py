"""Reconciler classification throughput: calls settled from CEL + queue_log per second.

The input is every lab recording under ``tests/fixtures/record/`` (``dialplans/record.py``:
the AMI stream, CEL and queue_log of the same calls), copied ``--copies`` times with
every Uniqueid/Linkedid rewritten per copy, so each copy is a distinct set of calls.

Two contenders on the same calls, in the same run:

* **record**: :func:`hotline.record.cel_calls.caller_calls` groups all the rows (as the
  reconciler does with a batch it fetched), then :func:`hotline.record.classify.classify`
  settles each caller call from its rows and queue_log lines; timed per call.
* **live tracker** (the baseline): a fresh :class:`~hotline.calls.tracker.CallTracker`
  fed the same calls' AMI events (already framed: the framer is
  ``bench.ami_throughput``'s subject), timed per recording copy and divided by its calls.

Printed: calls/s (median of ``--runs`` runs), and the median and p99 of the time per
call. The database part (1 M CEL rows on PostgreSQL, rows settled per second through
the store and the writer) is the reconciler's own bench, added beside this one.

    python -m bench.reconciler [--copies 500] [--runs 7]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from hotline.ami.events import AMIEvent
from hotline.ami.framing import AMIFramer
from hotline.calls.records import Outcome
from hotline.calls.tracker import CallTracker
from hotline.record.cel_calls import CallerCall, caller_calls
from hotline.record.classify import classify
from hotline.record.entries import CelEvent, QueueLogEntry
from tests.support.record_replay import read_cel, read_queue_log, recordings

SHORT = 5.0
_ID = re.compile(r"^(\d{9,11})\.(\d+)$")
_AMI_ID = re.compile(rb"(?<=: )(\d{9,11})\.(\d+)(?=\r\n)")
_BIG = 100_000  # sequence offset per copy: far above any recording's own numbers


def _fresh(value: str, copy: int) -> str:
    match = _ID.match(value)
    if match is None:
        return value
    return f"{match.group(1)}.{copy * _BIG + int(match.group(2))}"


class Scenario:
    """One recording: its CEL rows, queue_log lines and AMI bytes."""

    def __init__(self, cel_csv: Path) -> None:
        stem = cel_csv.name.removesuffix(".cel.csv")
        self.name = stem
        self.cel = read_cel(cel_csv)
        self.queue_log = read_queue_log(cel_csv.with_name(stem + ".queue_log"))
        raw = cel_csv.with_name(stem + ".ami").read_bytes()
        banner, _, self.ami_body = raw.partition(b"\r\n")
        self.ami_banner = banner + b"\r\n"

    def cel_copy(self, copy: int, first_id: int) -> list[CelEvent]:
        return [
            replace(
                e,
                id=first_id + i,
                uniqueid=_fresh(e.uniqueid, copy),
                linkedid=_fresh(e.linkedid, copy),
            )
            for i, e in enumerate(self.cel)
        ]

    def queue_log_copy(self, copy: int) -> list[QueueLogEntry]:
        return [
            replace(
                e,
                callid=_fresh(e.callid, copy),
                data=tuple(_fresh(d, copy) for d in e.data),
            )
            for e in self.queue_log
        ]

    def ami_copy(self, copy: int) -> bytes:
        return _AMI_ID.sub(
            lambda m: m.group(1) + b"." + str(copy * _BIG + int(m.group(2))).encode(),
            self.ami_body,
        )


def _events(data: bytes) -> list[AMIEvent]:
    framer = AMIFramer()
    return [f.to_event() for f in framer.feed(data) if f.name]


def build(
    scenarios: list[Scenario], copies: int
) -> tuple[list[CelEvent], list[QueueLogEntry], list[bytes]]:
    cel: list[CelEvent] = []
    queue_log: list[QueueLogEntry] = []
    streams: list[bytes] = []
    for copy in range(copies):
        for scenario in scenarios:
            cel.extend(scenario.cel_copy(copy, len(cel) + 1))
            queue_log.extend(scenario.queue_log_copy(copy))
            streams.append(scenario.ami_banner + scenario.ami_copy(copy))
    return cel, queue_log, streams


def run_record(
    cel: list[CelEvent], queue_log: list[QueueLogEntry]
) -> tuple[float, list[float], int, float]:
    """(seconds in all, seconds per call, calls settled, grouping seconds)."""
    started = time.perf_counter()
    calls: list[CallerCall] = caller_calls(cel)
    by_callid: dict[str, list[QueueLogEntry]] = {}
    for entry in queue_log:
        by_callid.setdefault(entry.callid, []).append(entry)
    grouped = time.perf_counter() - started
    per_call: list[float] = []
    settled = 0
    for call in calls:
        lines = [e for uid in {r.uniqueid for r in call.rows} for e in by_callid.get(uid, ())]
        t0 = time.perf_counter()
        record = classify(call.rows, lines, short_abandon_seconds=SHORT, linkedid=call.linkedid)
        per_call.append(time.perf_counter() - t0)
        settled += record is not None
    return time.perf_counter() - started, per_call, settled, grouped


def run_tracker(streams: list[list[AMIEvent]]) -> tuple[float, list[float], int]:
    """(seconds in all, seconds per call, calls closed); one tracker, the streams in turn."""
    tracker = CallTracker(short_abandon_seconds=SHORT)
    per_call: list[float] = []
    closed = 0
    total = 0.0
    for events in streams:
        t0 = time.perf_counter()
        done = 0
        for event in events:
            for record in tracker.feed(event):
                done += record.outcome is not Outcome.IN_PROGRESS
        spent = time.perf_counter() - t0
        total += spent
        closed += done
        per_call.extend([spent / done] * done if done else [])
    return total, per_call, closed


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    found = recordings()
    if not found:
        print("no recordings under tests/fixtures/record/ (dialplans/record.py makes them)")
        return 1
    scenarios = [Scenario(p) for p in found]
    cel, queue_log, streams = build(scenarios, args.copies)
    print(
        f"{len(scenarios)} recordings x {args.copies} copies: {len(cel):,} CEL rows, "
        f"{len(queue_log):,} queue_log lines, {sum(len(s) for s in streams) / 1e6:.1f} MB AMI"
    )
    rec_rates, trk_rates, rec_calls, trk_calls, groupings = [], [], [], [], []
    rec_settled = trk_closed = 0
    for _ in range(args.runs):
        total, per_call, rec_settled, grouped = run_record(cel, queue_log)
        rec_rates.append(len(per_call) / total)
        rec_calls.extend(per_call)
        groupings.append(grouped)
        events = [_events(s) for s in streams]  # fresh events: each caches its typed view
        total, per_call, trk_closed = run_tracker(events)
        trk_rates.append(trk_closed / total)
        trk_calls.extend(per_call)
    print(f"caller calls: record {len(rec_calls) // args.runs:,} ({rec_settled:,} settled),")
    print(f"              live tracker closed {trk_closed:,}")
    print(f"{'':22}{'calls/s':>12}{'p50 per call':>16}{'p99 per call':>16}")
    for label, rates, calls in (
        ("record (classify)", rec_rates, rec_calls),
        ("live tracker (AMI)", trk_rates, trk_calls),
    ):
        print(
            f"{label:22}{statistics.median(rates):>12,.0f}"
            f"{_p(calls, 0.5) * 1e6:>13.0f} µs{_p(calls, 0.99) * 1e6:>13.0f} µs"
        )
    print(f"grouping all rows into calls: {statistics.median(groupings) * 1e3:.1f} ms per run")
    print(
        f"record / tracker throughput: "
        f"{statistics.median(rec_rates) / statistics.median(trk_rates):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
