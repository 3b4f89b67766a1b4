"""Pages on one process: 2,000 agent sockets + 50 supervisor sockets on one API process.

The API runs in a child process (uvicorn, the real app) so its memory and CPU are its own;
this process opens the pages (``websockets``) and watches them. The child publishes the
pops itself, stamped with the wall clock, so delivery is measured from XADD (or the
in-memory publish) to the page's receive on one host clock. Phases:

1. open every socket at once, in one burst, on a fresh database (every token unchecked,
   every stream new, as after a restart): each must get its hello; memory per socket;
2. ``--idle`` seconds with nothing published (600 in the full run): CPU of the API
   process, and every socket must still be open;
3. ``--seconds`` of pops at ``--rate`` per second (20), each to one agent among all of
   them: delivery p50/p99 and CPU.

``--bus redis`` is the few readers per process; ``--bus memory`` the in-process bus, the
baseline (no network hop, same fan-out), each in its own API process in the same
invocation: the bursts one after the other, the idle period shared (each process's CPU
is its own), the pops one process at a time.

    python -m bench.sockets --idle 600            # the full run: 2,000 + 50, ~12 min
    python -m bench.sockets --idle 10 --seconds 10  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

REDIS_URL = os.environ.get("HOTLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TICK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the API process ------------------------------------------------------------------------


async def _serve(db_url: str, bus_kind: str, port: int, prefix: str) -> None:
    import uvicorn

    from hotline.api.app import create_app
    from hotline.bus import Bus, MemoryBus, RedisBus
    from hotline.settings import load_settings
    from tests.support.pages import BusOnly

    bus: Bus = RedisBus(REDIS_URL, prefix=prefix) if bus_kind == "redis" else MemoryBus()
    settings = load_settings(
        database_url=db_url,
        redis_url=REDIS_URL if bus_kind == "redis" else None,
        api_bind=f"127.0.0.1:{port}",
    )
    app = create_app(settings, service=BusOnly(bus))  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "pops":  # pops <rate> <count> <agent> <agent> ...
            rate, count, agents = float(line[1]), int(line[2]), line[3:]
            started = time.perf_counter()
            for n in range(count):
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                agent = random.choice(agents)
                await bus.publish(f"agent:{agent}", {"type": "screenpop", "sent_at": time.time()})
            print("done", flush=True)
    server.should_exit = True
    await serving


# -- the pages ------------------------------------------------------------------------------


@dataclass
class Page:
    url: str
    hello: bool = False
    closed: str | None = None
    latencies: list[float] = field(default_factory=list)
    ws: Any = None

    async def run(self, opened: asyncio.Semaphore) -> None:
        import websockets

        try:
            async with websockets.connect(self.url, open_timeout=60, max_queue=None) as ws:
                self.ws = ws
                async for raw in ws:
                    at = time.time()
                    frame = json.loads(raw)
                    if not self.hello:
                        self.hello = True
                        opened.release()
                    elif frame.get("type") == "screenpop":
                        self.latencies.append((at - frame["sent_at"]) * 1000)
                self.closed = f"closed {ws.close_code}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.closed = type(exc).__name__
        finally:
            if not self.hello:
                opened.release()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Served:
    """One API child process (one bus kind) and the pages opened on it."""

    kind: str
    child: subprocess.Popen[str]
    ids: list[str]
    pages: list[Page]
    rss_empty: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _tokens(db_url: str, agents: int) -> tuple[list[str], dict[str, str], str]:
    from hotline.api.auth import Role, create_token
    from hotline.db.session import make_engine, upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    ids = [f"{10000 + n}" for n in range(agents)]
    tokens = {a: create_token(engine, role=Role.AGENT, name=a, agent_id=a) for a in ids}
    sup = create_token(engine, role=Role.SUPERVISOR, name="sup")
    engine.dispose()
    return ids, tokens, sup


def _start(kind: str, agents: int, supervisors: int) -> Served:
    """A fresh database (every token unchecked, as after a restart) and an API child."""
    import socket

    tmp = tempfile.mkdtemp(prefix="hotline-bench-sockets-")
    db_url = f"sqlite:///{tmp}/bench.sqlite3"
    ids, tokens, sup = _tokens(db_url, agents)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.sockets", "--serve", db_url, kind, str(port), prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the {kind} API process did not start")
    base = f"ws://127.0.0.1:{port}"
    pages = [Page(f"{base}/ws/agent?token={tokens[a]}") for a in ids]
    pages += [Page(f"{base}/ws/supervisor?token={sup}") for _ in range(supervisors)]
    served = Served(kind, child, ids, pages, rss_empty=_rss_mb(child.pid))
    served.result = {"bus": kind, "agents": agents, "supervisors": supervisors}
    return served


async def _open(served: Served) -> None:
    """Every page at once, in one burst (as after a restart): each must get its hello."""
    opened = asyncio.Semaphore(0)
    started = time.perf_counter()
    served.tasks = [asyncio.create_task(page.run(opened)) for page in served.pages]
    for _ in served.pages:
        await opened.acquire()
    served.result["open_s"] = round(time.perf_counter() - started, 1)
    served.result["hello"] = sum(p.hello for p in served.pages)
    refused: dict[str, int] = {}
    for page in served.pages:
        if not page.hello:
            refused[page.closed or "?"] = refused.get(page.closed or "?", 0) + 1
    served.result["refused"] = refused
    await asyncio.sleep(2)  # let the burst settle before measuring memory
    rss_open = _rss_mb(served.child.pid)
    served.result.update(
        rss_mb_empty=round(served.rss_empty, 1),
        rss_mb_open=round(rss_open, 1),
        kb_per_socket=round((rss_open - served.rss_empty) * 1024 / len(served.pages), 1),
    )


async def _idle(all_served: list[Served], idle: float) -> None:
    """Nothing published for ``idle`` seconds, every API process at once (each idles on
    its own; their CPU is each one's own): CPU, and every page must still be open."""
    cpu0 = {s.kind: _cpu_seconds(s.child.pid) for s in all_served}
    t0 = time.perf_counter()
    await asyncio.sleep(idle)
    took = time.perf_counter() - t0
    for served in all_served:
        cpu = (_cpu_seconds(served.child.pid) - cpu0[served.kind]) / took * 100
        served.result.update(
            idle_s=idle,
            cpu_idle_pct=round(cpu, 2),
            dropped_idle=sum(p.closed is not None for p in served.pages if p.hello),
        )


async def _pops(served: Served, seconds: float, rate: float) -> None:
    """``rate`` pops a second for ``seconds``, each to one agent among all of them."""
    child = served.child
    assert child.stdin is not None and child.stdout is not None
    count = int(rate * seconds)
    cpu0, t0 = _cpu_seconds(child.pid), time.perf_counter()
    child.stdin.write(f"pops {rate} {count} {' '.join(served.ids)}\n")
    child.stdin.flush()
    await asyncio.to_thread(child.stdout.readline)
    await asyncio.sleep(1)
    cpu_pops = (_cpu_seconds(child.pid) - cpu0) / (time.perf_counter() - t0) * 100
    latencies = [ms for p in served.pages for ms in p.latencies]
    served.result.update(
        pops=count,
        delivered=len(latencies),
        pop_p50_ms=round(pct(latencies, 0.5), 2) if latencies else None,
        pop_p99_ms=round(pct(latencies, 0.99), 2) if latencies else None,
        pop_max_ms=round(max(latencies), 2) if latencies else None,
        cpu_pops_pct=round(cpu_pops, 2),
        dropped=sum(p.closed is not None for p in served.pages if p.hello),
    )


async def _stop(served: Served) -> None:
    for task in served.tasks:
        task.cancel()
    await asyncio.gather(*served.tasks, return_exceptions=True)
    child = served.child
    if child.stdin is not None:
        child.stdin.close()
    try:
        await asyncio.to_thread(child.wait, 30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


async def _run(
    kinds: list[str], agents: int, supervisors: int, idle: float, seconds: float, rate: float
) -> list[dict[str, Any]]:
    """Each bus in its own API process, side by side: bursts one after the other, the idle
    period shared, pops one process at a time (so neither measures the other's load)."""
    all_served: list[Served] = []
    try:
        for kind in kinds:
            served = _start(kind, agents, supervisors)
            all_served.append(served)
            await _open(served)
            print(f"{kind}: {served.result}", file=sys.stderr, flush=True)
        await _idle(all_served, idle)
        for served in all_served:
            await _pops(served, seconds, rate)
        return [s.result for s in all_served]
    finally:
        for served in all_served:
            await _stop(served)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        db_url, bus_kind, port, prefix = sys.argv[2:6]
        asyncio.run(_serve(db_url, bus_kind, int(port), prefix))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--supervisors", type=int, default=50)
    parser.add_argument("--idle", type=float, default=600, help="seconds idle (full run: 600)")
    parser.add_argument("--seconds", type=float, default=30, help="seconds of pops")
    parser.add_argument("--rate", type=float, default=20, help="pops per second")
    parser.add_argument("--bus", nargs="+", default=["redis", "memory"])
    args = parser.parse_args()
    results = asyncio.run(
        _run(args.bus, args.agents, args.supervisors, args.idle, args.seconds, args.rate)
    )
    for result in results:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
