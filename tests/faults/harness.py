"""The processes a fault needs: ``hotline serve`` as a real child, a private Redis, the proxies.

``hotline serve`` runs as a subprocess so it can be killed with SIGKILL and started again
on the same database, as an operator's process manager would. The served tree is
selectable (``HOTLINE_FAULTS_TREE``, default this checkout) so the same suite measures the
code before a change and after it (docs/reliability.md). Its output goes to one log file
per test, appended across restarts, whose tail goes into every assertion message.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dialplans.config import LabConfig
from tests.support.fault_proxy import FaultProxy

HERE = Path(__file__).resolve()
CHECKOUT = HERE.parents[2]
TREE = Path(os.environ.get("HOTLINE_FAULTS_TREE") or CHECKOUT).resolve()
PYTHON = os.environ.get("HOTLINE_FAULTS_PYTHON") or sys.executable

# Passes after every login and handover; this is the periodic backstop (default 60 s).
RECONCILE_INTERVAL = os.environ.get("HOTLINE_FAULTS_RECONCILE_INTERVAL", "10")

_SEED = """
import sys
from hotline.db.session import make_engine, session_factory, upgrade
from hotline.agents.directory import save_agent
from hotline.api.auth import Role, create_token
url, queue, *agents = sys.argv[1:]
upgrade(url)
engine = make_engine(url)
with session_factory(engine)() as session:
    for spec in agents:
        agent_id, interface = spec.split("=", 1)
        save_agent(session, agent_id, interface=interface, skills=[queue + ":native"])
print("TOKEN=" + create_token(engine, role=Role.SUPERVISOR, name="fault suite"))
engine.dispose()
"""


def tree_label() -> str:
    """Which code is served, for the results: ``after`` for this checkout, else the tree's
    commit (``before@86c7d5a``)."""
    if TREE == CHECKOUT:
        return os.environ.get("HOTLINE_FAULTS_LABEL", "after")
    head = subprocess.run(
        ["git", "-C", str(TREE), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return os.environ.get("HOTLINE_FAULTS_LABEL", f"before@{head or TREE.name}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["PYTHONPATH"] = str(TREE)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def seed(database_url: str, queue: str, lab: LabConfig) -> str:
    """Migrate the database with the served tree, put the lab's agents in ``queue`` through
    the agents directory, and return a supervisor token (for ``/api/health``)."""
    agents = [f"{a.id}={a.interface}" for a in lab.agents]
    done = subprocess.run(
        [PYTHON, "-c", _SEED, database_url, queue, *agents],
        cwd=TREE,
        env=_tree_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("TOKEN="):
            return line.removeprefix("TOKEN=")
    raise RuntimeError(f"seeding {database_url} failed: {done.stderr[-1500:]}")


class RedisServer:
    """A private ``redis-server`` on a free loopback port that a test may stop and start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "redis.log", "ab") as out:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.workdir)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not answer PING")

    def pause(self) -> None:
        """SIGSTOP: the server holds every connection and answers nothing (a frozen host)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Serve:
    """``hotline serve`` of the served tree, wired through the proxies; restartable."""

    database: str  # the database's name on the PostgreSQL the proxy fronts
    record_database: str
    lab: LabConfig
    ami: FaultProxy
    pg: FaultProxy
    redis: RedisServer
    log_file: Path
    token: str
    api_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    wanted: bool = False  # a process manager's view: restart it if it dies on its own
    unplanned_exits: int = 0
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watcher: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        pg = f"postgresql+psycopg://postgres@127.0.0.1:{self.pg.port}"
        env = _tree_env()
        env.update(
            HOTLINE_DATABASE_URL=f"{pg}/{self.database}",
            HOTLINE_RECORD_URL=f"{pg}/{self.record_database}",
            HOTLINE_REDIS_URL=self.redis.url,
            HOTLINE_AMI_HOST="127.0.0.1",
            HOTLINE_AMI_PORT=str(self.ami.port),
            HOTLINE_AMI_USER=self.lab.ami_user,
            HOTLINE_AMI_SECRET=self.lab.ami_secret,
            HOTLINE_AGI_BIND=f"{self.lab.agi_host}:{self.lab.agi_port}",
            HOTLINE_API_BIND=f"127.0.0.1:{self.api_port}",
            HOTLINE_RECONCILE_INTERVAL=RECONCILE_INTERVAL,
            HOTLINE_RECONCILE_LOOKBACK="600",
        )
        return env

    def start(self) -> None:
        with self._lock:
            self.wanted = True
            self._spawn()
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        """Restart a process that exited on its own after 1 s, as ``Restart=always`` would
        (a service that cannot start while its database is down must come back later)."""
        while not self.closed:
            time.sleep(0.2)
            with self._lock:
                if not self.wanted or self.proc is None or self.proc.poll() is None:
                    continue
                exited_at = time.monotonic()
                self.unplanned_exits += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - exited_at)))
            with self._lock:
                if self.wanted and self.proc is not None and self.proc.poll() is not None:
                    self._spawn()

    def _spawn(self) -> None:
        self.starts += 1
        with open(self.log_file, "ab") as out:
            out.write(f"\n==== start {self.starts} at {time.time():.3f} ====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [PYTHON, "-c", "from hotline.cli import app; app()", "serve"],
                cwd=TREE,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        """SIGKILL: nothing in memory survives, nothing is flushed."""
        with self._lock:
            self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._wait_agi_port_free()

    def stop(self) -> None:
        """SIGTERM, for good (the end of a test)."""
        with self._lock:
            self.wanted = False
            self.closed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._wait_agi_port_free()

    def _wait_agi_port_free(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((self.lab.agi_host, self.lab.agi_port))
                    return
                except OSError:
                    time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self, timeout: float = 1.0) -> tuple[float, int | None, dict[str, object]]:
        """(seconds taken, status code or None on no answer, body) of ``GET /api/health``."""
        started = time.monotonic()
        try:
            response = httpx.get(
                f"http://127.0.0.1:{self.api_port}/api/health",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout,
            )
        except httpx.HTTPError:
            return time.monotonic() - started, None, {}
        try:
            body = response.json()
        except ValueError:
            body = {}
        return time.monotonic() - started, response.status_code, body

    def wait_api(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"hotline serve exited:\n{self.log_tail()}")
            _, status, _ = self.health(timeout=1.0)
            if status is not None:
                return
            time.sleep(0.1)
        raise TimeoutError(f"hotline serve's API did not answer:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def wait_lab_ports_free(lab: LabConfig, timeout: float = 15.0) -> None:
    """After Asterisk was stopped or killed, until its AMI and SIP ports can be bound again.

    ``Lab.pid()`` calls a process gone once its main thread is a zombie, but a killed
    Asterisk's other threads may still be tearing down and holding its sockets for a
    moment; ``Lab.up`` would then refuse to start ("AMI port 5038 is taken").
    """
    checks = (
        (socket.SOCK_STREAM, lab.ami_host, lab.ami_port),
        (socket.SOCK_DGRAM, lab.sip_host, lab.sip_port),
    )
    deadline = time.monotonic() + timeout
    for kind, host, port in checks:
        while True:
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"port {port} still taken {timeout:.0f} s after Asterisk stopped"
                        ) from None
            time.sleep(0.05)
