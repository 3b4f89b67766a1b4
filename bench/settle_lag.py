"""Settle lag after a restart: how soon the call log is right once ``hotline serve`` is back.

On the real lab (Asterisk 22, SIPp callers and four agents' phones, PostgreSQL, a private
Redis) with the fault suite's harness (tests/faults/): each round places a mix of calls
in every state (tests/faults/calls.py ``call_mix``), kills ``hotline serve`` with
SIGKILL three seconds in, lets every call end while it is down, and starts it again.
Measured from the restart (the process is spawned):

* **API up**: ``/api/health`` answers (the process imported, migrated, listening);
* **settled**: every call of the round has its right row (0 missing, doubled, stuck or
  wrong against Asterisk's queue_log, as the fault suite judges it), polled every 0.25 s
  once the API is up.

Baseline, in the same run: rounds with no fault, measured from the moment the last call
of the round ended in Asterisk to the call log being right (the live path's own lag).

    python -m bench.settle_lag [--rounds 5] [--baseline 3]

The goal is a settle lag under 5 s after a restart (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from dialplans.config import LabConfig
from dialplans.lab import Lab
from dialplans.sipp import start_agent
from hotline.db.session import upgrade
from hotline.lab import record_db
from tests.faults.ami_probe import AMIProbe
from tests.faults.calls import FAST_RING, FAST_TALK, SLOW_RING, SLOW_TALK, Numbers, call_mix
from tests.faults.harness import RedisServer, Serve, seed
from tests.faults.scenario import FaultRun
from tests.support.fault_proxy import FaultProxy
from tests.support.postgres import ensure_database

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RECORD_DB = "hotline_lab_record"  # the e2e suite's: one lab, one record
DB = "hotline_bench_settle"
LAB_ROOT = Path("/var/lib/hotline/sid-root")
KILL_AT = 3.0


def _database(name: str, *, fresh: bool) -> str:
    url = ensure_database(ADMIN_URL, name, fresh=fresh)
    upgrade(url)
    return url


async def _until_health(serve: Serve, started: float) -> float:
    while True:
        _latency, status, _body = await asyncio.to_thread(serve.health, 0.5)
        if status == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.05)


async def _round(make: object, index: int, *, fault: bool) -> tuple[float | None, float | None]:
    assert callable(make)
    run: FaultRun = make(f"settle_lag_{'fault' if fault else 'baseline'}_{index}")
    try:
        run.place(call_mix(Numbers(), run.extra["queue"], fault_at=KILL_AT))
        if not fault:
            verdict = await run.settle()
            assert verdict.ok, run.failure(verdict)
            return None, verdict.settle_seconds
        await run.at(KILL_AT)
        run.serve.kill9()
        await run.calls_ended()  # every call ends while the service is down
        started = time.monotonic()
        run.serve.start()
        run.end_fault()
        api_up = await _until_health(run.serve, started)
        verdict = await run.settle()  # polls every 0.25 s, returns once the log is right
        assert verdict.ok, run.failure(verdict)
        return api_up, time.monotonic() - started
    finally:
        run.cleanup()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} -"
    return (
        f"{name:<34} median {statistics.median(values):6.2f} s   p99 {_p(values, 0.99):6.2f} s"
        f"   ({', '.join(f'{v:.2f}' for v in values)})"
    )


async def main_async(rounds: int, baseline: int) -> int:
    record_url = _database(RECORD_DB, fresh=False)
    pg_url = _database(DB, fresh=True)
    lab_config = LabConfig.default(record_db=record_db(record_url))
    lab = Lab(LAB_ROOT)
    lab.up(lab_config)
    probe = AMIProbe(lab_config)
    queue = lab_config.queues[0].name
    interfaces = [a.interface for a in lab_config.agents[:4]]
    phones = [
        start_agent(
            agent,
            lab_config,
            ring_seconds=FAST_RING if i < 2 else SLOW_RING,
            talk_seconds=FAST_TALK if i < 2 else SLOW_TALK,
        )
        for i, agent in enumerate(lab_config.agents[:4])
    ]
    work = Path(tempfile.mkdtemp(prefix="hotline-settle-"))
    redis = RedisServer(work / "redis")
    redis.start()
    pg = make_url(ADMIN_URL)
    api_up: list[float] = []
    settled: list[float] = []
    live: list[float] = []
    try:
        with (
            FaultProxy(lab_config.ami_host, lab_config.ami_port, name="ami-proxy") as ami,
            FaultProxy(pg.host or "127.0.0.1", pg.port or 5432, name="pg-proxy") as db,
        ):
            serve = Serve(
                database=DB,
                record_database=RECORD_DB,
                lab=lab_config,
                ami=ami,
                pg=db,
                redis=redis,
                log_file=work / "serve.log",
                token=seed(pg_url, queue, lab_config),
            )
            serve.start()
            serve.wait_api()
            await asyncio.to_thread(probe.wait_members, queue, interfaces)

            def make(name: str) -> FaultRun:
                run = FaultRun(
                    name=name,
                    lab=lab_config,
                    serve=serve,
                    probe=probe,
                    database_url=pg_url,
                    queue_log=lab.queue_log(),
                )
                run.extra["queue"] = queue
                return run

            for i in range(baseline):
                _, lag = await _round(make, i, fault=False)
                if lag is not None:
                    live.append(lag)
            for i in range(rounds):
                up, lag = await _round(make, i, fault=True)
                if up is not None and lag is not None:
                    api_up.append(up)
                    settled.append(lag)
                await asyncio.to_thread(probe.wait_members, queue, interfaces)
            serve.stop()
    finally:
        for phone in phones:
            phone.cleanup()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{rounds} restarts after kill -9, 9 calls each ended while down; {baseline} rounds "
        "with no fault"
    )
    print(_line("restart -> API up", api_up))
    print(_line("restart -> call log right", settled))
    print(_line("baseline: calls ended -> right", live))
    return 0 if settled and max(settled) < 5.0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=int, default=3)
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.rounds, args.baseline))


if __name__ == "__main__":
    sys.exit(main())
