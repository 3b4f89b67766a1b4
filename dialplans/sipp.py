"""SIPp callers and agents' phones for the lab, the demo, tests and benches.

SIPp gives us real SIP on the wire (INVITE, CANCEL, INFO DTMF, BYE) without pretending
to be Asterisk. Scenario timings (ring, talk, hold) are written into the XML before
each run because SIPp's ``timeout`` attributes cannot come from the injection file.

Every answered SIPp call streams RTP (silence, PCMU) for as long as it lasts: the lab's
endpoints hang up a call that receives no RTP for ``rtp_timeout`` seconds
(docs/lab.md, "Cleaning up"), as a real phone that vanished would be.

No SIPp outlives its owner (docs/lab.md, "Cleaning up"): each run is its own process
group, :meth:`SippRun.stop` ends the group and reaps it, runs still alive at interpreter
exit are stopped, and the kernel sends SIGTERM to a SIPp whose parent dies (even by
``kill -9``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from dialplans.config import LabAgent, LabConfig

SCENARIOS = Path(__file__).with_name("sipp")
Behaviour = Literal["answer", "reject", "decline", "noanswer"]
_INVITE_LOG = re.compile(r"INVITE\s+(\S+)\s+(\d+)\.\d+\.(\d+)(?:\.\d+)?(?: linkedid=(\S*))?")

STOP_GRACE = 2.0  # seconds SIPp gets to exit on SIGTERM before SIGKILL (it exits at once)
_KILL_WAIT = 5.0  # seconds to wait for the kernel after SIGKILL
_SILENCE = b"\xff" * 8000  # one second of PCMU silence; rtp_stream loops it (payload 0)
_PR_SET_PDEATHSIG = 1  # prctl(2)
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class SippError(RuntimeError):
    pass


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if not path:
        raise SippError("SIPp is missing: apt-get install sip-tester")
    return path


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _free_media_port(host: str = "127.0.0.1") -> int:
    """An even port whose successor is free too (SIPp binds RTP and RTCP)."""
    for _ in range(50):
        port = free_udp_port(host) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind((host, port))
                b.bind((host, port + 1))
            return port
        except OSError:
            continue
    raise SippError("no free media port pair")


def _csv_field(text: str) -> str:
    """SIPp injection files split on ';' and lines: neither may appear in a field."""
    return text.replace(";", ",").replace("\n", " ").replace("\r", " ").replace('"', "'")


@dataclass(slots=True)
class CallSpec:
    number: str
    name: str = ""
    queue: str = ""
    queue_timeout: int | None = None
    dtmf: str = ""
    overflow: str = ""  # the queue to try next when the first lets the caller go


@dataclass(slots=True, eq=False)
class SippRun:
    """A running SIPp process (the leader of its own process group) and its files.

    ``sip_port`` is the local SIP port: Asterisk sees a caller's calls come from
    ``sip_host:sip_port``, which is how the demo finds the channels of its own calls.
    ``interface`` is the agent's (``PJSIP/agent-1001``) for a phone, empty for callers.
    Use it as a context manager, or call :meth:`cleanup`, so that it never outlives you.
    """

    proc: subprocess.Popen[bytes]
    workdir: Path
    log_file: Path
    kind: str
    sip_port: int = 0
    interface: str = ""
    started: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SippError(f"SIPp {self.kind} still running after {timeout} s") from None
        self.stop()  # reaped: forget it, and end anything left in its group
        return code

    def stop(self, grace: float = STOP_GRACE) -> int:
        """End SIPp and everything in its process group, and reap it; idempotent.

        SIGTERM first (SIPp exits at once, without BYE), SIGKILL after ``grace``.
        The group is signalled again after the leader exits but before it is reaped,
        while its process-group id cannot have been reused.
        """
        if self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            if not _exited(self.proc.pid, grace):
                _signal_group(self.proc.pid, signal.SIGKILL)
                _exited(self.proc.pid, _KILL_WAIT)
            _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers of the group
            self.proc.wait()
        _forget(self)
        return self.proc.returncode

    def vanish(self) -> None:
        """Die like a crashed phone or a cut line: SIGKILL, no BYE, no more RTP; reaped."""
        if self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGKILL)
        self.stop()

    def output(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def invites(self) -> dict[str, float]:
        """Call-ID → wall-clock time the agent's phone received the INVITE."""
        return {callid: at for callid, at, _ in self._invites()}

    def invites_by_linkedid(self) -> dict[str, float]:
        """Asterisk Linkedid (X-Hotline-Linkedid) → time the INVITE arrived."""
        return {linkedid: at for _, at, linkedid in self._invites() if linkedid}

    def _invites(self) -> list[tuple[str, float, str]]:
        found: list[tuple[str, float, str]] = []
        for path in self.workdir.glob("*_logs.log"):
            for m in _INVITE_LOG.finditer(path.read_text(errors="replace")):
                at = int(m.group(2)) + int(m.group(3)) / 1e6
                found.append((m.group(1), at, (m.group(4) or "").strip()))
        return found

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SippRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


_LIVE: dict[int, SippRun] = {}
_LIVE_LOCK = threading.Lock()


def _forget(run: SippRun) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(run.pid, None)


def live_runs() -> list[SippRun]:
    """Every SIPp this process started and has not stopped yet."""
    with _LIVE_LOCK:
        return list(_LIVE.values())


def stop_all(grace: float = STOP_GRACE) -> int:
    """Stop every SIPp still running (also registered with :mod:`atexit`); how many."""
    runs = live_runs()
    for run in runs:
        run.stop(grace)
    return len(runs)


atexit.register(stop_all)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _exited(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``pid`` to exit, leaving it unreaped (a zombie)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already
            return True
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _die_with(parent: int) -> Callable[[], None]:
    """``preexec_fn``: the kernel sends SIGTERM to SIPp when its parent dies.

    PR_SET_PDEATHSIG fires when the *thread* that started SIPp ends: a run started
    from a worker thread (``asyncio.to_thread``) lives as long as that thread's pool,
    which asyncio shuts down with its loop. That is early enough: nothing keeps a SIPp
    past the loop that owns it.
    """

    def child() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)

    return child


def _render(name: str, **values: object) -> str:
    text = (SCENARIOS / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(key, str(value))
    return text


def start_agent(
    agent: LabAgent,
    lab: LabConfig,
    *,
    behaviour: Behaviour = "answer",
    ring_seconds: float = 1.0,
    talk_seconds: float = 5.0,
) -> SippRun:
    """Start the phone of ``agent``; it serves calls one after another until stopped."""
    workdir = Path(tempfile.mkdtemp(prefix=f"hotline-agent-{agent.id}-"))
    scenario = workdir / "agent.xml"
    scenario.write_text(
        _render(
            "agent.xml",
            RING_MS=max(1, int(ring_seconds * 1000)),
            TALK_MS=max(1, int(talk_seconds * 1000)),
            BEHAVIOUR=behaviour,
            SILENCE_FILE=_write_silence(workdir),
        ),
        encoding="utf-8",
    )
    cmd = [
        sipp_binary(),
        "-sf", str(scenario),
        "-i", lab.sip_host,
        "-p", str(agent.port),
        "-mp", str(_free_media_port(lab.sip_host)),
        *_control_args(lab.sip_host),
        "-nostdin",
        "-trace_logs", "-log_file", str(workdir / "agent_logs.log"),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
    ]  # fmt: skip
    return _spawn(cmd, workdir, f"agent {agent.id}", sip_port=agent.port, interface=agent.interface)


def start_calls(
    calls: list[CallSpec],
    lab: LabConfig,
    *,
    hold_seconds: float,
    exten: str = "4008001234",
    rate: float = 10.0,
    concurrent: int | None = None,
    dtmf_gap_seconds: float = 0.5,
) -> SippRun:
    """Place ``calls`` (one SIPp run) at ``rate`` per second; returns at once."""
    if not calls:
        raise SippError("no calls to place")
    workdir = Path(tempfile.mkdtemp(prefix="hotline-calls-"))
    scenario = workdir / "caller.xml"
    scenario.write_text(
        _render(
            "caller.xml",
            HOLD_MS=max(1, int(hold_seconds * 1000)),
            DTMF_GAP_MS=max(1, int(dtmf_gap_seconds * 1000)),
            SILENCE_FILE=_write_silence(workdir),
        ),
        encoding="utf-8",
    )
    lines = ["SEQUENTIAL"]
    for c in calls:
        timeout = "" if c.queue_timeout is None else str(int(c.queue_timeout))
        digits = re.sub(r"[^0-9*#]", "", c.dtmf)
        fields = [c.number, c.name, c.queue, timeout, digits, c.overflow]
        lines.append(";".join(_csv_field(f) for f in fields))
    injection = workdir / "calls.csv"
    injection.write_text("\n".join(lines) + "\n", encoding="utf-8")
    n = len(calls)
    sip_port = free_udp_port(lab.sip_host)
    cmd = [
        sipp_binary(),
        f"{lab.sip_host}:{lab.sip_port}",
        "-sf", str(scenario),
        "-inf", str(injection),
        "-s", exten,
        "-i", lab.sip_host,
        "-p", str(sip_port),
        "-mp", str(_free_media_port(lab.sip_host)),
        *_control_args(lab.sip_host),
        "-m", str(n),
        "-l", str(concurrent or n),
        "-r", f"{rate:g}",
        "-rp", "1000",
        "-nostdin",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_stat", "-stf", str(workdir / "stats.csv"),
    ]  # fmt: skip
    return _spawn(cmd, workdir, f"{n} calls", sip_port=sip_port)


def place_calls(
    calls: list[CallSpec], lab: LabConfig, *, hold_seconds: float, **kw: object
) -> SippRun:
    """Place calls and wait until SIPp has finished them all."""
    run = start_calls(calls, lab, hold_seconds=hold_seconds, **kw)  # type: ignore[arg-type]
    run.wait(timeout=hold_seconds + 120 + len(calls))
    return run


def _write_silence(workdir: Path) -> Path:
    """The audio the scenarios stream (``exec rtp_stream``), so Asterisk hears RTP."""
    path = workdir / "silence.ulaw"
    path.write_bytes(_SILENCE)
    return path


def _control_args(host: str) -> list[str]:
    """SIPp's UDP control socket on loopback (it binds every address and only 60
    ports from 8888 by default)."""
    return ["-ci", host, "-cp", str(free_udp_port(host))]


def _spawn(
    cmd: list[str], workdir: Path, kind: str, *, sip_port: int, interface: str = ""
) -> SippRun:
    log_file = workdir / "sipp.out"
    with open(log_file, "wb") as out:
        # Its own session: a Ctrl-C meant for the owner does not reach SIPp, so the
        # owner can hang its calls up first; the owner ends the group (stop()).
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "TERM": "dumb"},
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),  # prctl only (see _die_with)
        )
    run = SippRun(
        proc=proc,
        workdir=workdir,
        log_file=log_file,
        kind=kind,
        sip_port=sip_port,
        interface=interface,
    )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = run
    time.sleep(0.05)
    if proc.poll() not in (None, 0):
        output = run.output()[-500:]
        run.cleanup()
        raise SippError(f"SIPp {kind} failed to start: {output}")
    return run
