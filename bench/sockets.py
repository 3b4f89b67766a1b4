"""Pages on one process: 2,000 agent sockets + 50 supervisor sockets on one API process.

The API runs in a child process (uvicorn, the real app) so its memory and CPU are its own;
this process opens the pages (``websockets``) and watches them. The child publishes the
pops itself, stamped with the wall clock, so delivery is measured from XADD (or the
in-memory publish) to the page's receive on one host clock. Phases:

1. open every socket (each must get its hello);
2. ``--idle`` seconds with nothing published (600 in the full run): CPU of the API
   process, and every socket must still be open;
3. ``--seconds`` of pops at ``--rate`` per second (20), each to one agent among all of
   them: delivery p50/p99 and CPU.

``--bus redis`` is the one reader per process; ``--bus memory`` the in-process bus, the
baseline (no network hop, same fan-out), run the same way in the same invocation.

    python -m bench.sockets --agents 2000 --supervisors 50 --idle 600 --bus redis memory
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


async def _run(
    bus_kind: str, agents: int, supervisors: int, idle: float, seconds: float, rate: float
) -> dict[str, Any]:
    from hotline.api.auth import Role, create_token
    from hotline.db.session import make_engine, upgrade

    tmp = tempfile.mkdtemp(prefix="hotline-bench-sockets-")
    db_url = f"sqlite:///{tmp}/bench.sqlite3"
    upgrade(db_url)
    engine = make_engine(db_url)
    ids = [f"{10000 + n}" for n in range(agents)]
    tokens = {a: create_token(engine, role=Role.AGENT, name=a, agent_id=a) for a in ids}
    sup = create_token(engine, role=Role.SUPERVISOR, name="sup")
    engine.dispose()
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.sockets", "--serve", db_url, bus_kind, str(port), prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        rss_empty = _rss_mb(child.pid)
        base = f"ws://127.0.0.1:{port}"
        pages = [Page(f"{base}/ws/agent?token={tokens[a]}") for a in ids]
        pages += [Page(f"{base}/ws/supervisor?token={sup}") for _ in range(supervisors)]
        opened = asyncio.Semaphore(0)
        started = time.perf_counter()
        tasks = []
        for page in pages:  # in waves, as pages come in after a restart
            tasks.append(asyncio.create_task(page.run(opened)))
            if len(tasks) % 200 == 0:
                await asyncio.sleep(0.05)
        for _ in pages:
            await opened.acquire()
        open_s = time.perf_counter() - started
        hellos = sum(p.hello for p in pages)
        await asyncio.sleep(2)  # let the open burst settle before measuring
        rss_open = _rss_mb(child.pid)
        cpu0, t0 = _cpu_seconds(child.pid), time.perf_counter()
        await asyncio.sleep(idle)
        cpu_idle = (_cpu_seconds(child.pid) - cpu0) / (time.perf_counter() - t0) * 100
        dropped_idle = sum(p.closed is not None for p in pages)
        count = int(rate * seconds)
        cpu0, t0 = _cpu_seconds(child.pid), time.perf_counter()
        child.stdin.write(f"pops {rate} {count} {' '.join(ids)}\n")
        child.stdin.flush()
        await asyncio.to_thread(child.stdout.readline)
        await asyncio.sleep(1)
        cpu_pops = (_cpu_seconds(child.pid) - cpu0) / (time.perf_counter() - t0) * 100
        latencies = [ms for p in pages for ms in p.latencies]
        result = {
            "bus": bus_kind,
            "agents": agents,
            "supervisors": supervisors,
            "hello": hellos,
            "open_s": round(open_s, 1),
            "idle_s": idle,
            "dropped": sum(p.closed is not None for p in pages),
            "dropped_idle": dropped_idle,
            "rss_mb_empty": round(rss_empty, 1),
            "rss_mb_open": round(rss_open, 1),
            "kb_per_socket": round((rss_open - rss_empty) * 1024 / len(pages), 1),
            "cpu_idle_pct": round(cpu_idle, 2),
            "pops": count,
            "delivered": len(latencies),
            "pop_p50_ms": round(pct(latencies, 0.5), 2) if latencies else None,
            "pop_p99_ms": round(pct(latencies, 0.99), 2) if latencies else None,
            "cpu_pops_pct": round(cpu_pops, 2),
        }
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return result
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


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
    for kind in args.bus:
        result = asyncio.run(
            _run(kind, args.agents, args.supervisors, args.idle, args.seconds, args.rate)
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
