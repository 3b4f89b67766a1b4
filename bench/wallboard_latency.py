"""AMI event → wallboard frame latency on the real lab.

A supervisor's socket (``/ws/supervisor``) listens while ``--calls`` callers join an
empty queue at ``--rate`` and leave after a few seconds. For every ``QueueCallerJoin``
and ``QueueCallerLeave`` the bench takes Asterisk's own event timestamp and the wall
clock at which the matching ``caller.waiting`` / ``caller.left`` frame reached the
socket, and prints p50/p99 of the difference, beside the same path measured for the
agent-page follow-ups in bench.screenpop_lead.

    python -m bench.wallboard_latency --calls 100 --rate 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(calls: int, rate: float) -> None:
    import websockets

    from bench.stack import running_stack
    from dialplans.sipp import CallSpec, start_calls

    async with running_stack() as stack:
        joins: dict[str, float] = {}
        leaves: dict[str, float] = {}

        def on_event(event) -> None:
            if event.get("Queue") != "wu":
                return
            if event.name == "QueueCallerJoin":
                joins[event.uniqueid] = event.time
            elif event.name == "QueueCallerLeave":
                leaves[event.uniqueid] = event.time

        stack.service.bridge.subscribe(on_event)
        frames: dict[tuple[str, str], float] = {}
        url = stack.base_url.replace("http", "ws", 1)
        url += f"/ws/supervisor?token={stack.tokens['supervisor']}"
        async with websockets.connect(url, max_size=2**24) as ws:

            async def listen() -> None:
                async for raw in ws:
                    at = time.time()
                    m = json.loads(raw)
                    if m.get("type") in ("caller.waiting", "caller.left"):
                        uid = m.get("uniqueid") or (m.get("caller") or {}).get("uniqueid")
                        frames.setdefault((m["type"], uid), at)

            listener = asyncio.create_task(listen())
            specs = [CallSpec(f"1390000{n:04d}", "墙板压测", queue="wu") for n in range(calls)]
            run = await asyncio.to_thread(start_calls, specs, stack.lab, hold_seconds=3, rate=rate)
            await asyncio.to_thread(run.wait, calls / rate + 60)
            run.cleanup()
            await asyncio.sleep(2)
            listener.cancel()
    join_ms = [(frames[("caller.waiting", u)] - t) * 1000 for u, t in joins.items()
               if ("caller.waiting", u) in frames]  # fmt: skip
    leave_ms = [(frames[("caller.left", u)] - t) * 1000 for u, t in leaves.items()
                if ("caller.left", u) in frames]  # fmt: skip
    print(f"{calls} callers at {rate}/s into an empty queue; ms from Asterisk's event timestamp "
          "to the frame on the supervisor socket")  # fmt: skip
    print(f"{'event → frame':34} {'n':>5} {'p50':>8} {'p99':>8} {'max':>8}")
    for name, values in (("QueueCallerJoin → caller.waiting", join_ms),
                         ("QueueCallerLeave → caller.left", leave_ms)):  # fmt: skip
        if values:
            print(f"{name:34} {len(values):5d} {statistics.median(values):8.2f} "
                  f"{pct(values, 0.99):8.2f} {max(values):8.2f}")  # fmt: skip
        else:
            print(f"{name:34} no frames matched")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.calls, args.rate))


if __name__ == "__main__":
    main()
