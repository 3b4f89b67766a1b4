"""Live state: AMI event → changed wallboard view latency, and events/s, on lab recordings.

Every recorded stream in ``tests/fixtures/ami`` is parsed once, then replayed through a
fresh :class:`~hotline.live.state.LiveState` ``--runs`` times. Two figures:

* **latency**: per event, ``feed(event)`` plus building the JSON view of everything the
  returned changes name (``queue_view``/``agent_view``; a full ``snapshot`` for a reset):
  what the supervisor WebSocket has to do before it can send a frame. Median and p99
  over all events, and over the events that changed something;
* **throughput**: ``feed`` alone, events/s over whole replays (median and p99 of runs).

The end-to-end "AMI event → wallboard frame" figure needs the WebSocket and is measured
separately once it exists; this one bounds the part the AMI consumer pays.

    python -m bench.live_latency [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from hotline.ami.events import AMIEvent
from hotline.ami.framing import AMIFramer
from hotline.live.state import AgentUpdated, LiveState, QueueUpdated, StateReset

FIXTURES = Path(__file__).resolve().parent.parent / "tests/fixtures/ami"


def load() -> list[AMIEvent]:
    events: list[AMIEvent] = []
    for path in sorted(FIXTURES.glob("*.ami")):
        framer = AMIFramer()
        events += [f.to_event() for f in framer.feed(path.read_bytes()) if f.name]
    return events


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_pass(events: list[AMIEvent], all_ns: list[int], changed_ns: list[int]) -> None:
    live = LiveState()
    clock = time.perf_counter_ns
    for event in events:
        start = clock()
        changes = live.feed(event)
        now = event.time
        for change in changes:
            if isinstance(change, QueueUpdated):
                live.queue_view(change.queue, now)
            elif isinstance(change, AgentUpdated):
                live.agent_view(change.interface, now)
            elif isinstance(change, StateReset):
                live.snapshot(now)
            else:
                change.as_dict()
        elapsed = clock() - start
        all_ns.append(elapsed)
        if changes:
            changed_ns.append(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    events = load()
    all_ns: list[int] = []
    changed_ns: list[int] = []
    one_pass(events, [], [])  # warm-up
    for _ in range(args.runs):
        one_pass(events, all_ns, changed_ns)
    rates = []
    for _ in range(args.runs):
        live = LiveState()
        feed = live.feed
        start = time.perf_counter()
        for event in events:
            feed(event)
        rates.append(len(events) / (time.perf_counter() - start))
    print(f"live state on {len(events)} recorded AMI events x {args.runs} runs")
    print(
        f"event → view, all events:     p50 {statistics.median(all_ns) / 1e3:7.2f} µs"
        f"   p99 {percentile(all_ns, 0.99) / 1e3:7.2f} µs"
    )
    print(
        f"event → view, changing ones:  p50 {statistics.median(changed_ns) / 1e3:7.2f} µs"
        f"   p99 {percentile(changed_ns, 0.99) / 1e3:7.2f} µs"
        f"   ({len(changed_ns) // args.runs} of {len(events)} events per run)"
    )
    print(
        f"feed throughput:              p50 {statistics.median(rates):9,.0f} events/s"
        f"   p99(slow) {percentile(rates, 0.01):9,.0f} events/s"
    )


if __name__ == "__main__":
    main()
