"""Screen-pop lead time on the real lab: does the page have the caller before the phone rings?

Runs the whole stack (Asterisk 22 lab, CallService with FastAGI, the API on uvicorn),
four agents' pages (WebSocket clients that ack pops as the page does) and four agents'
phones (SIPp, stamping each INVITE and its X-Hotline-Linkedid), then places ``--calls``
known callers at a steady ``--rate``. Two modes, side by side:

- ``hold``: the pre-dial step waits for the page's ack (bounded by --ack-timeout);
- ``race``: the pre-dial step publishes and lets the phone ring at once (ack timeout 0),
  i.e. the pop races the INVITE as an event-driven pop would.

Prints, per mode: lead time (INVITE time minus pop arrival; positive = pop first)
min/p1/p50/p99, the share of pops that were first, the pre-dial hold (ack wait) p50/p99,
and AMI event → WebSocket frame latency (AgentConnect → ``call.connected``) p50/p99.

    python -m bench.screenpop_lead --calls 200 --rate 2 [--baseline-tree DIR]

``--baseline-tree`` names another checkout of Hotline (a ``git worktree`` of an earlier
commit): its own bench runs the ``hold`` mode first, in a subprocess on the same lab, and
its row is printed above ours, so a change is judged against the code it replaced in the
same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered))))]


async def run_mode(mode: str, calls: int, rate: float, ack_timeout: float) -> dict[str, object]:
    from bench.stack import running_stack
    from dialplans.sipp import CallSpec, start_agent, start_calls
    from hotline.customers.rows import with_name_keys
    from hotline.db.models import Customer, CustomerPhone
    from hotline.db.session import make_engine, session_factory
    from tests.support.agent_client import AgentClient

    numbers = [f"1360000{n:04d}" for n in range(calls)]
    connects: dict[str, float] = {}
    phones, clients = [], []
    async with running_stack(pop_ack_timeout=ack_timeout) as stack:
        engine = make_engine(stack.db_url)
        with session_factory(engine)() as session:
            for n, number in enumerate(numbers):
                customer = with_name_keys(Customer(name=f"压测客户{n}"))
                session.add(customer)
                session.flush()
                session.add(CustomerPhone(customer_id=customer.id, e164=f"+86{number}"))
            session.commit()
        engine.dispose()
        service, cfg = stack.service, stack.lab

        def on_event(event) -> None:
            if event.name == "AgentConnect":
                connects[event.linkedid] = event.time

        service.bridge.subscribe(on_event)
        try:
            for agent in cfg.agents:
                remove = {
                    "Action": "QueueRemove",
                    "Queue": "mandarin",
                    "Interface": agent.interface,
                }
                await service.bridge.send_action(remove)
                await service.bridge.send_action(
                    {**remove, "Action": "QueueAdd", "MemberName": agent.id}
                )
                phones.append(start_agent(agent, cfg, ring_seconds=0.3, talk_seconds=0.5))
                client = AgentClient(stack.base_url, stack.tokens[agent.id])
                await client.__aenter__()
                clients.append(client)
            specs = [CallSpec(n, "压测", queue="mandarin") for n in numbers]
            run = await asyncio.to_thread(
                start_calls, specs, cfg, hold_seconds=120, rate=rate, concurrent=calls
            )
            await asyncio.to_thread(run.wait, calls / rate + 300)
            await asyncio.sleep(2)
            run.cleanup()
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)
            for agent in cfg.agents:
                await service.bridge.send_action(
                    {"Action": "QueueRemove", "Queue": "mandarin", "Interface": agent.interface}
                )
            invites: dict[str, float] = {}
            for phone in phones:
                invites.update(phone.invites_by_linkedid())
                phone.cleanup()

    leads, ws_latency = [], []
    pops = 0
    for client in clients:
        for received in client.of_type("screenpop"):
            pops += 1
            linkedid = received.message["linkedid"]
            if linkedid in invites:
                leads.append((invites[linkedid] - received.at) * 1000)
        for received in client.of_type("call.connected"):
            at = connects.get(received.message["linkedid"])
            if at is not None:
                ws_latency.append((received.at - at) * 1000)
    stats = service.publisher.stats.as_dict()
    first = sum(1 for lead in leads if lead > 0)
    return {
        "mode": mode,
        "calls": calls,
        "pops": pops,
        "matched": len(leads),
        "first_share": first / len(leads) if leads else 0.0,
        "lead_min": min(leads) if leads else None,
        "lead_p1": pct(leads, 0.01) if leads else None,
        "lead_p50": statistics.median(leads) if leads else None,
        "lead_p99": pct(leads, 0.99) if leads else None,
        "hold_p50": stats["ack_wait_ms_p50"],
        "hold_p99": stats["ack_wait_ms_p99"],
        "ack_timeouts": stats["ack_timeouts"],
        "ws_p50": statistics.median(ws_latency) if ws_latency else None,
        "ws_p99": pct(ws_latency, 0.99) if ws_latency else None,
    }


def fmt(value: object) -> str:
    return f"{value:8.2f}" if isinstance(value, float) else f"{value!s:>8}"


def baseline_row(tree: Path, args: argparse.Namespace) -> str:
    """The ``hold`` row of this bench as another checkout runs it (its own stack and code)."""
    command = [
        sys.executable, "-m", "bench.screenpop_lead", "--no-race", "--calls", str(args.calls),
        "--rate", str(args.rate), "--ack-timeout", str(args.ack_timeout),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    out = subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True, text=True)
    rows = [line for line in out.stdout.splitlines() if line.split()[:1] == ["hold"]]
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if not rows:
        return "baseline: no hold row in its output"
    return rows[-1].replace("hold".rjust(12), f"base {commit}"[:12].rjust(12), 1)


async def main_async(args: argparse.Namespace) -> None:
    before = baseline_row(args.baseline_tree, args) if args.baseline_tree else None
    results = [await run_mode("hold", args.calls, args.rate, args.ack_timeout)]
    if not args.no_race:
        results.append(await run_mode("race", args.calls, args.rate, 0.0))
    print(
        f"{args.calls} known callers at {args.rate}/s, 4 agents (ring 0.3 s, talk 0.5 s); "
        "times in ms; lead = INVITE − pop arrival (positive: pop first)"
    )
    cols = [
        "mode",
        "pops",
        "matched",
        "first_share",
        "lead_min",
        "lead_p1",
        "lead_p50",
        "lead_p99",
        "hold_p50",
        "hold_p99",
        "ack_timeouts",
        "ws_p50",
        "ws_p99",
    ]
    print(" ".join(f"{c:>12}" for c in cols))
    if before is not None:
        print(before)
    for r in results:
        print(" ".join(f"{fmt(r[c]):>12}" for c in cols))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--ack-timeout", type=float, default=0.5)
    parser.add_argument("--no-race", action="store_true")
    parser.add_argument("--baseline-tree", type=Path, default=None)
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(main_async(args))
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
