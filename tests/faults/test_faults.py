"""The fault suite (docs/reliability.md): for each fault, calls in every state,
the fault, the calls end; then within a bound the call log has 0 missing, 0 doubled, 0
stuck ``in_progress`` and 0 wrong outcomes or agents against Asterisk's queue_log, and
the time it took to settle is recorded.

Each test is one fault on the real lab (Asterisk 22, SIPp, PostgreSQL, Redis) with
``hotline serve`` as a child process (tests/faults/conftest.py). ``HOTLINE_FAULTS_TREE``
serves another checkout with the same harness, which is how the "before" column of
docs/reliability.md was measured.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest

from dialplans.config import LabConfig
from dialplans.lab import Lab
from tests.faults.calls import FAST_RING, SLOW_RING, Numbers, call_mix, gap_calls, load_mix
from tests.faults.harness import wait_lab_ports_free
from tests.faults.scenario import FaultRun
from tests.faults.truth import read_queue_log

pytestmark = pytest.mark.asterisk

MakeRun = Callable[[str], FaultRun]
FAULT_AT = 3.0  # seconds into the mix: 2 calls talking, 2 ringing, 4 queued, 1 in the IVR


async def test_ami_killed_1s(fault_run: MakeRun) -> None:
    """The AMI link is reset and refused for 1 s, then comes back; four calls start inside
    that second (their Newchannel, and for the IVR call more, are never seen on AMI)."""
    run = fault_run("ami_killed_1s")
    numbers = Numbers()
    run.place(call_mix(numbers, run.extra["queue"], fault_at=FAULT_AT))
    run.place(gap_calls(numbers, run.extra["queue"], start=FAULT_AT + 0.1, spread=0.45))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.ami.cut()
    await run.outage(1.0)
    run.serve.ami.restore()
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_ami_down_30s(fault_run: MakeRun) -> None:
    """AMI down 30 s while every call of the mix answers, times out or abandons."""
    run = fault_run("ami_down_30s")
    run.place(call_mix(Numbers(), run.extra["queue"], fault_at=FAULT_AT))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.ami.cut()
    await run.outage(30.0)
    run.serve.ami.restore()
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_ami_down_30s_calls_start_in_gap(fault_run: MakeRun) -> None:
    """AMI down 30 s, and four calls start (and end) inside the gap: AMI never saw them."""
    run = fault_run("ami_down_30s_calls_in_gap")
    numbers = Numbers()
    run.place(call_mix(numbers, run.extra["queue"], fault_at=FAULT_AT))
    run.place(gap_calls(numbers, run.extra["queue"], start=FAULT_AT + 2.0))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.ami.cut()
    await run.outage(30.0)
    run.serve.ami.restore()
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_serve_kill9_down_60s(fault_run: MakeRun) -> None:
    """``hotline serve`` killed -9; calls end and new ones come and go for 60 s; restart."""
    run = fault_run("serve_kill9_down_60s")
    numbers = Numbers()
    run.place(call_mix(numbers, run.extra["queue"], fault_at=FAULT_AT))
    run.place(gap_calls(numbers, run.extra["queue"], start=FAULT_AT + 2.0))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.kill9()
    await run.outage(60.0)
    run.serve.start()
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_serve_kill9_live_restart_3s(fault_run: MakeRun) -> None:
    """Killed -9 while the calls are live, back 3 s later: it must adopt them."""
    run = fault_run("serve_kill9_restart_3s")
    run.place(call_mix(Numbers(), run.extra["queue"], fault_at=FAULT_AT))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.kill9()
    await run.outage(3.0)
    run.serve.start()
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_asterisk_restarted_mid_call(
    fault_run: MakeRun, lab: Lab, lab_config: LabConfig
) -> None:
    """Asterisk stopped (SIGTERM, its orderly shutdown) and started again mid-call: the
    calls it cut are ``failed`` with the reason (answered ones stay answered)."""
    run = fault_run("asterisk_restarted")
    run.place(call_mix(Numbers(), run.extra["queue"], fault_at=FAULT_AT + 1.0))
    await run.at(FAULT_AT + 1.0)
    await run.strike(cut=True)
    await asyncio.to_thread(lab.down)
    await asyncio.to_thread(wait_lab_ports_free, lab_config)
    await asyncio.to_thread(lab.up, lab_config)
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_asterisk_killed_mid_call(
    fault_run: MakeRun, lab: Lab, lab_config: LabConfig
) -> None:
    """Asterisk killed -9 mid-call (no hang-up, no LINKEDID_END, no queue_log exit), then
    started again: the cut calls are ``failed`` with the reason."""
    run = fault_run("asterisk_killed")
    run.place(call_mix(Numbers(), run.extra["queue"], fault_at=FAULT_AT + 1.0))
    await run.at(FAULT_AT + 1.0)
    await run.strike(cut=True)
    pid = lab.pid()
    assert pid is not None, "the lab's Asterisk is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lab.pid() is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.to_thread(wait_lab_ports_free, lab_config)
    await asyncio.to_thread(lab.up, lab_config)
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_redis_stopped_15s(fault_run: MakeRun) -> None:
    """Redis frozen (SIGSTOP) 15 s while calls ring agents: the call log stays right and
    the pre-dial step (the pop) does not hold the agent's phone back."""
    run = fault_run("redis_stopped_15s")
    run.serve.redis.pause()
    try:
        run.place(call_mix(Numbers(), run.extra["queue"], fault_at=FAULT_AT))
        await run.at(FAULT_AT)
        await run.strike()
        await run.outage(15.0 - FAULT_AT)
    finally:
        run.serve.redis.resume()
    run.end_fault()
    delay = _predial_delay(run)
    run.extra["predial_delay_max_s"] = delay
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)
    assert delay is not None and delay <= PREDIAL_BOUND, (
        f"with Redis down the first calls reached their agent {delay} s later than the "
        f"phone's ring time (bound {PREDIAL_BOUND} s)\n{run.serve.log_tail()}"
    )


PREDIAL_BOUND = 2.5  # s: the pop's ack wait (0.5 s) + the queue_log's whole seconds


def _predial_delay(run: FaultRun) -> float | None:
    """The worst (queue_log hold time − the answering phone's ring time) of the calls
    that found an agent free: the time the pre-dial step held the phone back."""
    with open(run.queue_log, errors="replace") as fh:
        fh.seek(run._log_offset)
        by_call = read_queue_log(fh)
    first_wave = {c.number for c in run.planned if c.at == 0.0}
    rings = {"1001": FAST_RING, "1002": FAST_RING, "1003": SLOW_RING, "1004": SLOW_RING}
    delays = []
    for entries in by_call.values():
        if not any(e.event == "ENTERQUEUE" and e.field(2) in first_wave for e in entries):
            continue
        connect = next((e for e in entries if e.event == "CONNECT"), None)
        if connect is not None and connect.agent in rings:
            delays.append(float(connect.field(1)) - rings[connect.agent])
    return max(delays) if delays else None


async def test_postgres_down_30s(fault_run: MakeRun) -> None:
    """PostgreSQL frozen for the service 30 s (the proxy holds every byte): calls go on,
    ``/api/health`` answers within 1 s naming the database, and the log catches up."""
    run = fault_run("postgres_down_30s")
    run.place(call_mix(Numbers(), run.extra["queue"], fault_at=FAULT_AT))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.pg.blackhole()
    health: list[float] = []
    for probe_at in (FAULT_AT + 2.0, FAULT_AT + 10.0, FAULT_AT + 20.0):
        await run.at(probe_at)
        took, status, _ = await asyncio.to_thread(run.serve.health, 3.0)
        health.append(round(took, 2) if status is not None else float("inf"))
    await run.at(FAULT_AT + 30.0)
    run.serve.pg.restore()
    run.end_fault()
    run.extra["health_max_s"] = max(health)
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)
    assert max(health) <= 1.0, f"/api/health took {health} s with the database down"


async def test_postgres_down_30s_kill9_inside(fault_run: MakeRun) -> None:
    """PostgreSQL stopped 30 s (connections reset and refused) and ``hotline serve``
    killed -9 10 s into it, restarted at once: what it held in memory must not be lost."""
    run = fault_run("postgres_down_30s_kill9")
    numbers = Numbers()
    run.place(call_mix(numbers, run.extra["queue"], fault_at=FAULT_AT))
    run.place(gap_calls(numbers, run.extra["queue"], start=FAULT_AT + 2.0))
    await run.at(FAULT_AT)
    await run.strike()
    run.serve.pg.cut()
    await run.at(FAULT_AT + 10.0)
    run.serve.kill9()
    run.serve.start()
    await run.at(FAULT_AT + 30.0)
    run.serve.pg.restore()
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)


async def test_load_200_calls_at_5_per_s(fault_run: MakeRun) -> None:
    """200 calls at 5 per second (half IVR only, half queued on four agents), no fault."""
    run = fault_run("load_200_at_5s")
    planned = load_mix(Numbers(), run.extra["queue"], calls=200, rate=5.0)
    ivr = [c for c in planned if c.ivr]
    queued = [c for c in planned if not c.ivr]
    run.place_stream(ivr, rate=2.5)
    run.place_stream(queued, rate=2.5)
    run.end_fault()
    verdict = await run.settle()
    assert verdict.ok, run.failure(verdict)
