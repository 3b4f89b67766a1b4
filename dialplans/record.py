"""Record raw AMI streams from the lab as test fixtures (``hotline lab record``).

The tracker's tests replay what Asterisk 22 really sends, byte for byte (the cacofonisk
pattern), instead of what we believe it sends. Each scenario places SIPp calls against
the running lab while a plain socket captures the AMI bytes; the capture is written to
``tests/fixtures/ami/<scenario>.ami`` together with a JSON file saying what was placed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dialplans.config import LabConfig
from dialplans.lab import Lab
from dialplans.sipp import CallSpec, SippRun, place_calls, start_agent, start_calls


class AMICapture:
    """Capture every byte the AMI sends to a fresh login, on a thread."""

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.data = bytearray()
        self._stop = threading.Event()
        self._sock = socket.create_connection((config.ami_host, config.ami_port), timeout=5)
        self._sock.sendall(
            (
                f"Action: Login\r\nUsername: {config.ami_user}\r\n"
                f"Secret: {config.ami_secret}\r\n\r\n"
            ).encode()
        )
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.data.extend(chunk)

    def send(self, text: str) -> None:
        self._sock.sendall(text.encode())

    def stop(self, settle: float = 1.0) -> bytes:
        time.sleep(settle)  # let the last Hangup events arrive
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        return bytes(self.data)


@dataclass(slots=True)
class Scenario:
    name: str
    description: str
    run: Callable[[LabConfig, AMICapture], dict[str, object]]


def _queue_add(cap: AMICapture, queue: str, agent_id: str, penalty: int = 0) -> None:
    cap.send(
        f"Action: QueueAdd\r\nQueue: {queue}\r\nInterface: PJSIP/agent-{agent_id}\r\n"
        f"MemberName: {agent_id}\r\nPenalty: {penalty}\r\n"
        f"ActionID: rec-add-{queue}-{agent_id}\r\n\r\n"
    )


def _queue_remove(cap: AMICapture, queue: str, agent_id: str) -> None:
    cap.send(
        f"Action: QueueRemove\r\nQueue: {queue}\r\nInterface: PJSIP/agent-{agent_id}\r\n"
        f"ActionID: rec-rm-{queue}-{agent_id}\r\n\r\n"
    )


def _answered(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    _queue_add(cap, "cantonese", "1001")
    agent = start_agent(cfg.agent("1001"), cfg, ring_seconds=2, talk_seconds=3)
    try:
        place_calls([CallSpec("13800138000", "张伟客户", queue="cantonese")], cfg, hold_seconds=30)
    finally:
        agent.cleanup()
        _queue_remove(cap, "cantonese", "1001")
    return {"agent": "1001", "ring_seconds": 2, "talk_seconds": 3, "queue": "cantonese"}


def _abandoned(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    _queue_add(cap, "minnan", "1002")
    agent = start_agent(cfg.agent("1002"), cfg, behaviour="noanswer")
    try:
        place_calls([CallSpec("+8659212345678", "陈美玲", queue="minnan")], cfg, hold_seconds=6)
    finally:
        agent.cleanup()
        _queue_remove(cap, "minnan", "1002")
    return {"hold_seconds": 6, "queue": "minnan"}


def _short_abandoned(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    place_calls([CallSpec("02161234567", "Wu Caller", queue="wu")], cfg, hold_seconds=2)
    return {"hold_seconds": 2, "queue": "wu"}


def _timeout(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    place_calls(
        [CallSpec("02887654321", "李四", queue="sichuanese", queue_timeout=3)], cfg, hold_seconds=30
    )
    return {"queue_timeout": 3, "queue": "sichuanese"}


def _ring_no_answer_then_answer(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    # 1003 rejects, 1004 answers: the pop goes to 1003, is withdrawn, then 1004 connects.
    _queue_add(cap, "wu", "1003")
    _queue_add(cap, "wu", "1004")
    a3 = start_agent(cfg.agent("1003"), cfg, behaviour="reject", ring_seconds=1)
    a4 = start_agent(cfg.agent("1004"), cfg, ring_seconds=1, talk_seconds=2)
    try:
        place_calls([CallSpec("13912345678", "王芳", queue="wu")], cfg, hold_seconds=30)
    finally:
        a3.cleanup()
        a4.cleanup()
        _queue_remove(cap, "wu", "1003")
        _queue_remove(cap, "wu", "1004")
    return {"queue": "wu", "agents": {"1003": "reject", "1004": "answer"}}


def _ivr_only(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    place_calls(
        [CallSpec("13700000001", "IVR 客户")], cfg, hold_seconds=30, exten=cfg.ivr_only_exten
    )
    return {"exten": cfg.ivr_only_exten}


def _concurrent(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    ids = ["1001", "1002", "1003", "1004"]
    for agent_id in ids:
        _queue_add(cap, "mandarin", agent_id)
    agents: list[SippRun] = [
        start_agent(cfg.agent(i), cfg, ring_seconds=0.3, talk_seconds=0.5) for i in ids
    ]
    try:
        calls = [CallSpec(f"1380000{n:04d}", f"客户{n}") for n in range(20)]
        run = start_calls(calls, cfg, hold_seconds=60, rate=20)
        run.wait(timeout=120)
    finally:
        for a in agents:
            a.cleanup()
        for agent_id in ids:
            _queue_remove(cap, "mandarin", agent_id)
    return {"calls": 20, "agents": ids}


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("answered", "known caller, Chinese name, rings 2 s, talks 3 s", _answered),
        Scenario("abandoned", "caller hangs up after 6 s while the agent rings", _abandoned),
        Scenario(
            "short_abandoned", "caller hangs up after 2 s in an empty queue", _short_abandoned
        ),
        Scenario("timeout", "queue timeout after 3 s, caller still there", _timeout),
        Scenario(
            "rna_then_answer", "first agent rejects, second answers", _ring_no_answer_then_answer
        ),
        Scenario("ivr_only", "IVR message, never queued", _ivr_only),
        Scenario("concurrent20", "20 calls at 20/s over 4 agents", _concurrent),
    )
}


def record(lab: Lab, config: LabConfig, names: list[str], out_dir: Path) -> list[Path]:
    lab.up(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        scenario = SCENARIOS[name]
        cap = AMICapture(config)
        time.sleep(0.3)
        meta = scenario.run(config, cap)
        data = cap.stop()
        path = out_dir / f"{name}.ami"
        path.write_bytes(data)
        meta = {"scenario": name, "description": scenario.description, **meta}
        path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n")
        written.append(path)
    return written
