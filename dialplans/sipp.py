"""SIPp callers and agents' phones for the lab, the demo, tests and benches.

SIPp gives us real SIP on the wire (INVITE, CANCEL, INFO DTMF, BYE) without pretending
to be Asterisk. Scenario timings (ring, talk, hold) are written into the XML before
each run because SIPp's ``timeout`` attributes cannot come from the injection file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dialplans.config import LabAgent, LabConfig

SCENARIOS = Path(__file__).with_name("sipp")
Behaviour = Literal["answer", "reject", "decline", "noanswer"]
_INVITE_LOG = re.compile(r"INVITE\s+(\S+)\s+(\d+)\.\d+\.(\d+)(?:\.\d+)?(?: linkedid=(\S*))?")


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


@dataclass(slots=True)
class SippRun:
    """A running SIPp process and where its files are."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    log_file: Path
    kind: str
    started: float = field(default_factory=time.time)

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise SippError(f"SIPp {self.kind} still running after {timeout} s") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

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
        ),
        encoding="utf-8",
    )
    cmd = [
        sipp_binary(),
        "-sf", str(scenario),
        "-i", lab.sip_host,
        "-p", str(agent.port),
        "-mp", str(_free_media_port(lab.sip_host)),
        "-nostdin",
        "-trace_logs", "-log_file", str(workdir / "agent_logs.log"),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
    ]  # fmt: skip
    return _spawn(cmd, workdir, f"agent {agent.id}")


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
    cmd = [
        sipp_binary(),
        f"{lab.sip_host}:{lab.sip_port}",
        "-sf", str(scenario),
        "-inf", str(injection),
        "-s", exten,
        "-i", lab.sip_host,
        "-p", str(free_udp_port(lab.sip_host)),
        "-mp", str(_free_media_port(lab.sip_host)),
        "-m", str(n),
        "-l", str(concurrent or n),
        "-r", f"{rate:g}",
        "-rp", "1000",
        "-nostdin",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_stat", "-stf", str(workdir / "stats.csv"),
    ]  # fmt: skip
    return _spawn(cmd, workdir, f"{n} calls")


def place_calls(
    calls: list[CallSpec], lab: LabConfig, *, hold_seconds: float, **kw: object
) -> SippRun:
    """Place calls and wait until SIPp has finished them all."""
    run = start_calls(calls, lab, hold_seconds=hold_seconds, **kw)  # type: ignore[arg-type]
    run.wait(timeout=hold_seconds + 120 + len(calls))
    return run


def _spawn(cmd: list[str], workdir: Path, kind: str) -> SippRun:
    log_file = workdir / "sipp.out"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "TERM": "dumb"},
        )
    run = SippRun(proc=proc, workdir=workdir, log_file=log_file, kind=kind)
    time.sleep(0.05)
    if proc.poll() not in (None, 0):
        raise SippError(f"SIPp {kind} failed to start: {run.output()[-500:]}")
    return run
