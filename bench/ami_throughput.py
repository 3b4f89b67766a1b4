"""AMI throughput: our framing + call tracker vs plain Panoramisk parsing, same bytes.

The stream is the lab recording ``concurrent20.ami`` (20 real queue calls) copied
``--copies`` times with every Uniqueid/Linkedid rewritten per copy, so the tracker sees
thousands of distinct calls, not the same 20 again. Each contender is fed the same
bytes in 4 KiB reads (what a socket gives) and timed over ``--runs`` runs; we print the
median and p99 of per-run events/s, the p50/p99 time to handle one read, and the ratio
to Panoramisk 1.4, side by side.

    python -m bench.ami_throughput [--copies 200] [--runs 15] [--baseline-tree DIR]

``--baseline-tree`` names another checkout of Hotline (e.g. a ``git worktree`` of an
earlier commit): its own bench runs the same stream in a subprocess before and after
ours, and its "framing + tracker" row is printed beside ours, so a refactor is judged
against the code it replaced on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests/fixtures/ami/concurrent20.ami"
READ = 4096
_ID = re.compile(rb"(?<=: )(\d{9,11})\.(\d+)(?=\r\n)")


def build_stream(copies: int) -> tuple[bytes, int]:
    raw = FIXTURE.read_bytes()
    banner, _, body = raw.partition(b"\r\n")
    parts = [banner + b"\r\n"]
    for n in range(copies):
        parts.append(
            _ID.sub(
                lambda m, n=n: m.group(1) + b"." + str(n * 100000 + int(m.group(2))).encode(), body
            )
        )
    data = b"".join(parts)
    return data, data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def panoramisk_parse() -> Callable[[bytes], None]:
    """Panoramisk 1.4 as shipped: AMIProtocol.data_received → Message → Manager.dispatch."""
    from panoramisk import Manager
    from panoramisk.ami_protocol import AMIProtocol

    manager = Manager()
    manager.register_event("*", lambda m, msg: None)
    protocol = AMIProtocol()
    protocol.connection_made(_Transport())
    protocol.factory = manager
    protocol.queue = deque()
    protocol.encoding = "utf8"
    return protocol.data_received


def hotline_framing() -> Callable[[bytes], None]:
    """Our framer alone: bytes → AMIEvent (no tracker), for a like-for-like parse figure."""
    from hotline.ami.framing import AMIFramer

    framer = AMIFramer()

    def feed(data: bytes) -> None:
        for frame in framer.feed(data):
            if frame.name:
                frame.to_event()

    return feed


_trackers: list[object] = []


def hotline_pipeline() -> Callable[[bytes], None]:
    """What the bridge does per read: SafeAMIProtocol framing → sink → CallTracker.feed."""
    from hotline.ami.protocol import SafeAMIProtocol
    from hotline.calls.tracker import CallTracker

    tracker = CallTracker()
    _trackers.append(tracker)

    class Factory:
        record_stream = None

        def __init__(self) -> None:
            self.event_sink = tracker.feed

        def dispatch(self, message: object) -> None:
            pass

    protocol = SafeAMIProtocol(Factory())
    protocol.connection_made(_Transport())
    return protocol.data_received


def run(
    make: Callable[[], Callable[[bytes], None]], data: bytes, runs: int
) -> tuple[list[float], list[float]]:
    durations: list[float] = []
    reads: list[float] = []
    chunks = [data[i : i + READ] for i in range(0, len(data), READ)]
    for _ in range(runs):
        feed = make()
        start = time.perf_counter()
        for chunk in chunks:
            t = time.perf_counter()
            feed(chunk)
            reads.append(time.perf_counter() - t)
        durations.append(time.perf_counter() - start)
    return durations, reads


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline-tree", type=Path, default=None)
    args = parser.parse_args(argv)
    baseline: list[dict[str, dict[str, float]]] = []
    if args.baseline_tree is not None:
        baseline.append(_run_tree(args.baseline_tree, args.copies, max(1, args.runs // 2)))
    data, events = build_stream(args.copies)
    print(
        f"stream: {FIXTURE.name} x{args.copies} = {events} events, {len(data) / 1e6:.1f} MB, "
        f"{READ}-byte reads, {args.runs} runs each"
    )
    contenders = {
        "panoramisk 1.4 parse+dispatch": panoramisk_parse,
        "hotline framing only": hotline_framing,
        "hotline framing + tracker": hotline_pipeline,
    }
    results: dict[str, dict[str, float]] = {}
    for name, make in contenders.items():
        durations, reads = run(make, data, args.runs)
        rates = [events / d for d in durations]
        results[name] = {
            "median_events_per_s": statistics.median(rates),
            "p99_slowest_run_events_per_s": pct(rates, 0.01),
            "read_p50_us": pct(reads, 0.50) * 1e6,
            "read_p99_us": pct(reads, 0.99) * 1e6,
        }
    if args.baseline_tree is not None:
        baseline.append(_run_tree(args.baseline_tree, args.copies, max(1, args.runs // 2)))
        name = "hotline framing + tracker"
        rates = [b[name]["median_events_per_s"] for b in baseline]
        results[f"baseline {_commit(args.baseline_tree)}: framing + tracker"] = {
            "median_events_per_s": statistics.median(rates),
            "p99_slowest_run_events_per_s": min(
                b[name]["p99_slowest_run_events_per_s"] for b in baseline
            ),
            "read_p50_us": statistics.median(b[name]["read_p50_us"] for b in baseline),
            "read_p99_us": max(b[name]["read_p99_us"] for b in baseline),
        }
    closed = _trackers[-1].stats["calls_closed"]  # type: ignore[attr-defined]
    if closed != 20 * args.copies:
        raise SystemExit(
            f"tracker closed {closed} calls, expected {20 * args.copies}: bench invalid"
        )
    print(f"check: the tracker closed {closed} calls per run, as placed")
    base = results["panoramisk 1.4 parse+dispatch"]["median_events_per_s"]
    print(
        f"{'contender':44} {'median ev/s':>12} {'p99 run ev/s':>13} {'read p50 µs':>12} "
        f"{'read p99 µs':>12} {'vs panoramisk':>14}"
    )
    for name, r in results.items():
        median, slow = r["median_events_per_s"], r["p99_slowest_run_events_per_s"]
        print(
            f"{name:44} {median:12,.0f} {slow:13,.0f} {r['read_p50_us']:12.1f} "
            f"{r['read_p99_us']:12.1f} {median / base:13.2f}x"
        )
    return results


def _run_tree(tree: Path, copies: int, runs: int) -> dict[str, dict[str, float]]:
    """This bench as another checkout has it, in a subprocess; its results as a dict."""
    code = (
        "import json, bench.ami_throughput as b; "
        f"r = b.main(['--copies', '{copies}', '--runs', '{runs}']); print(json.dumps(r))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _commit(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or tree.name


if __name__ == "__main__":
    main()
