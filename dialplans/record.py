"""Record raw AMI streams from the lab as test fixtures (``hotline lab record``).

The tracker's and the wallboard's tests replay what Asterisk 22 really sends, byte for
byte (the cacofonisk pattern), instead of what we believe it sends. Each scenario places
SIPp calls against the running lab, and sends the AMI actions a supervisor or an agent's
phone would (transfer, pause, withdraw), while a plain socket captures the AMI bytes.
The capture is written to ``tests/fixtures/ami/[<family>/]<scenario>.ami`` together with
a JSON file saying what was placed; docs/lab.md lists the families and what each shows.

The first seven scenarios sit at the top of the folder, where several test modules read
them by name; later families each have a sub-folder.

With ``asterisk_record=True`` (``hotline lab record --asterisk-record``) a scenario also
keeps what Asterisk itself wrote down about the same calls: the CEL lines cel_custom
appended to its CSV and the lines app_queue appended to the queue_log while the scenario
ran. They go, with the same AMI bytes, to ``tests/fixtures/record/<scenario>.*``, where
the reconciler's classification is checked against the live tracker call for call.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dialplans.config import CEL_CSV_FIELDS, LabConfig
from dialplans.lab import Lab
from dialplans.sipp import Behaviour, CallSpec, SippRun, place_calls, start_agent, start_calls

log = logging.getLogger(__name__)

Frame = dict[str, str]


class RecordError(RuntimeError):
    """A scenario could not be played as written (an AMI action failed, an event never came)."""


class AMICapture:
    """Capture every byte the AMI sends to a fresh login, on a thread.

    The same login sends the scenario's actions, so their responses are in the recording
    too (the replay skips responses, as the bridge's consumer does).
    """

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.data = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._actions = 0
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
            with self._lock:
                self.data.extend(chunk)

    def send(self, text: str) -> None:
        self._sock.sendall(text.encode())

    def frames(self) -> list[Frame]:
        """What arrived so far, one dict per frame (first value of each header)."""
        with self._lock:
            text = bytes(self.data).decode("utf-8", errors="replace")
        frames = []
        for block in text.split("\r\n\r\n"):
            frame: Frame = {}
            for line in block.split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep:
                    frame.setdefault(key, value)
            frames.append(frame)
        return frames

    def wait_for(self, event: str, timeout: float = 20.0, **match: str) -> Frame:
        """The first frame of ``event`` whose headers include ``match`` (polls the capture)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames():
                if frame.get("Event") == event and all(frame.get(k) == v for k, v in match.items()):
                    return frame
            time.sleep(0.05)
        raise RecordError(f"no {event} {match} within {timeout:g} s")

    def action(self, name: str, **headers: str) -> Frame:
        """Send an AMI action and wait for its response; an error response raises."""
        self._actions += 1
        action_id = f"rec-{self._actions}-{name.lower()}"
        lines = [f"Action: {name}", *(f"{k}: {v}" for k, v in headers.items())]
        self.send("\r\n".join([*lines, f"ActionID: {action_id}"]) + "\r\n\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for frame in self.frames():
                if frame.get("ActionID") == action_id and "Response" in frame:
                    if frame["Response"] == "Error":
                        raise RecordError(f"{name} {headers}: {frame.get('Message')}")
                    return frame
            time.sleep(0.02)
        raise RecordError(f"no response to {name} within 10 s")

    def stop(self, settle: float = 1.0) -> bytes:
        time.sleep(settle)  # let the last Hangup events arrive
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        with self._lock:
            return bytes(self.data)


Run = Callable[[LabConfig, AMICapture], dict[str, object]]
LabRun = Callable[[Lab, LabConfig, AMICapture], dict[str, object]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    run: Run | None
    family: str = ""  # sub-folder of the fixtures; "" for the first seven, at the top
    lab_run: LabRun | None = None  # instead of ``run``: a scenario that stops the lab

    def play(self, lab: Lab, config: LabConfig, cap: AMICapture) -> dict[str, object]:
        if self.lab_run is not None:
            return self.lab_run(lab, config, cap)
        assert self.run is not None, self.name
        return self.run(config, cap)

    @property
    def relative(self) -> Path:
        return Path(self.family) / f"{self.name}.ami" if self.family else Path(f"{self.name}.ami")


@dataclass(frozen=True, slots=True)
class Phone:
    """How an agent's SIPp phone treats every call it gets."""

    behaviour: Behaviour = "answer"
    ring: float = 0.5
    talk: float = 3.0

    def describe(self) -> dict[str, object]:
        if self.behaviour == "answer":
            return {"behaviour": "answer", "ring_seconds": self.ring, "talk_seconds": self.talk}
        if self.behaviour == "noanswer":
            return {"behaviour": "noanswer"}
        return {"behaviour": self.behaviour, "ring_seconds": self.ring}


def _interface(agent_id: str) -> str:
    return f"PJSIP/agent-{agent_id}"


@contextmanager
def staffed(
    cfg: LabConfig,
    cap: AMICapture,
    members: Mapping[str, tuple[str, ...]],
    phones: Mapping[str, Phone],
) -> Iterator[dict[str, object]]:
    """Queue members added over AMI and their phones running; both undone on exit.

    Yields the part of the scenario's JSON that says who was in which queue and how
    each phone behaved.
    """
    for queue, ids in members.items():
        for agent_id in ids:
            cap.action("QueueAdd", Queue=queue, Interface=_interface(agent_id), MemberName=agent_id)
    runs: list[SippRun] = []
    try:
        for agent_id, p in phones.items():
            runs.append(
                start_agent(
                    cfg.agent(agent_id),
                    cfg,
                    behaviour=p.behaviour,
                    ring_seconds=p.ring,
                    talk_seconds=p.talk,
                )
            )
        yield {
            "members": {q: list(ids) for q, ids in members.items()},
            "phones": {i: p.describe() for i, p in phones.items()},
        }
    finally:
        for run in runs:
            run.cleanup()
        for queue, ids in members.items():
            for agent_id in ids:
                cap.action("QueueRemove", Queue=queue, Interface=_interface(agent_id))


def _call(spec: CallSpec, hold: float) -> dict[str, object]:
    """The JSON line describing one placed call."""
    placed: dict[str, object] = {"number": spec.number, "name": spec.name, "hold_seconds": hold}
    for key in ("queue", "queue_timeout", "dtmf", "overflow"):
        value = getattr(spec, key)
        if value not in ("", None):
            placed[key] = value
    return placed


# -- the first seven (top level; other test modules read them by name) --------------------


def _answered(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    with staffed(cfg, cap, {"cantonese": ("1001",)}, {"1001": Phone(ring=2, talk=3)}):
        place_calls([CallSpec("13800138000", "张伟客户", queue="cantonese")], cfg, hold_seconds=30)
    return {"agent": "1001", "ring_seconds": 2, "talk_seconds": 3, "queue": "cantonese"}


def _abandoned(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    with staffed(cfg, cap, {"minnan": ("1002",)}, {"1002": Phone("noanswer")}):
        place_calls([CallSpec("+8659212345678", "陈美玲", queue="minnan")], cfg, hold_seconds=6)
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
    phones = {"1003": Phone("reject", ring=1), "1004": Phone(ring=1, talk=2)}
    with staffed(cfg, cap, {"wu": ("1003", "1004")}, phones):
        place_calls([CallSpec("13912345678", "王芳", queue="wu")], cfg, hold_seconds=30)
    return {"queue": "wu", "agents": {"1003": "reject", "1004": "answer"}}


def _ivr_only(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    place_calls(
        [CallSpec("13700000001", "IVR 客户")], cfg, hold_seconds=30, exten=cfg.ivr_only_exten
    )
    return {"exten": cfg.ivr_only_exten}


def _concurrent(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    ids = ("1001", "1002", "1003", "1004")
    with staffed(cfg, cap, {"mandarin": ids}, {i: Phone(ring=0.3, talk=0.5) for i in ids}):
        calls = [CallSpec(f"1380000{n:04d}", f"客户{n}") for n in range(20)]
        start_calls(calls, cfg, hold_seconds=60, rate=20).wait(timeout=120)
    return {"calls": 20, "agents": list(ids)}


FIRST_SEVEN = (
    Scenario("answered", "known caller, Chinese name, rings 2 s, talks 3 s", _answered),
    Scenario("abandoned", "caller hangs up after 6 s while the agent rings", _abandoned),
    Scenario("short_abandoned", "caller hangs up after 2 s in an empty queue", _short_abandoned),
    Scenario("timeout", "queue timeout after 3 s, caller still there", _timeout),
    Scenario("rna_then_answer", "first agent rejects, second answers", _ring_no_answer_then_answer),
    Scenario("ivr_only", "IVR message, never queued", _ivr_only),
    Scenario("concurrent20", "20 calls at 20/s over 4 agents", _concurrent),
)


# -- the families (one sub-folder each) --------------------------------------------------


def _transfer(
    cfg: LabConfig, cap: AMICapture, action: str, target: str, *, to_queue: str = ""
) -> dict[str, object]:
    """An agent of cantonese takes the call and, a second later, transfers it to ``target``.

    ``action`` is the AMI action that plays the agent's transfer key: ``BlindTransfer``
    (the caller leaves at once) or ``Atxfer`` (the agent consults ``target`` first and the
    transfer completes when the agent hangs up).
    """
    members = {"cantonese": ("1001",), **({to_queue: ("1002",)} if to_queue else {})}
    phones = {"1001": Phone(talk=3 if action == "Atxfer" else 20), "1002": Phone(talk=4)}
    spec = CallSpec("13800138000", "张伟", queue="cantonese")
    with staffed(cfg, cap, members, phones) as staff:
        caller = start_calls([spec], cfg, hold_seconds=30)
        agent = cap.wait_for("AgentConnect", Queue="cantonese")["DestChannel"]
        time.sleep(1)
        cap.action(action, Channel=agent, Exten=target, Context="hotline-transfer")
        caller.wait(timeout=60)
        caller.cleanup()
    return {**staff, "calls": [_call(spec, 30)], "transfer": {"action": action, "to": target}}


def _blind_to_agent(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    return _transfer(cfg, cap, "BlindTransfer", "1002")


def _blind_to_queue(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    return _transfer(cfg, cap, "BlindTransfer", "mandarin", to_queue="mandarin")


def _attended_to_agent(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    return _transfer(cfg, cap, "Atxfer", "1002")


def _attended_to_queue(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    return _transfer(cfg, cap, "Atxfer", "80001", to_queue="mandarin")  # 80001: mandarin


def _simple(
    members: Mapping[str, tuple[str, ...]],
    phones: Mapping[str, Phone],
    specs: list[tuple[CallSpec, float]],
) -> Run:
    """A scenario that only places calls (each SIPp run its own hold) against a staff."""

    def run(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
        with staffed(cfg, cap, members, phones) as staff:
            runs = [start_calls([spec], cfg, hold_seconds=hold) for spec, hold in specs]
            for sipp in runs:
                sipp.wait(timeout=90)
                sipp.cleanup()
        return {**staff, "calls": [_call(spec, hold) for spec, hold in specs]}

    return run


def _paused_then_answered(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    spec = CallSpec("075512345678", "黄先生", queue="minnan")
    with staffed(cfg, cap, {"minnan": ("1003",)}, {"1003": Phone(talk=2)}) as staff:
        cap.action("QueuePause", Interface=_interface("1003"), Paused="true", Reason="training")
        caller = start_calls([spec], cfg, hold_seconds=30)
        cap.wait_for("QueueCallerJoin", Queue="minnan")
        time.sleep(2)
        cap.action("QueuePause", Interface=_interface("1003"), Paused="false")
        caller.wait(timeout=60)
        caller.cleanup()
    return {**staff, "calls": [_call(spec, 30)], "pause": {"1003": "training, 2 s after join"}}


def _withdrawn(overflow: str) -> Run:
    """A supervisor takes a waiting caller out of cantonese (QUEUESTATUS=WITHDRAW)."""

    def run(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
        spec = CallSpec("13600136000", "刘女士", queue="cantonese", overflow=overflow)
        members = {overflow: ("1004",)} if overflow else {}
        with staffed(cfg, cap, members, {"1004": Phone(talk=2)}) as staff:
            caller = start_calls([spec], cfg, hold_seconds=30)
            channel = cap.wait_for("QueueCallerJoin", Queue="cantonese")["Channel"]
            time.sleep(1.5)
            cap.action(
                "QueueWithdrawCaller", Queue="cantonese", Caller=channel, WithdrawInfo="supervisor"
            )
            caller.wait(timeout=60)
            caller.cleanup()
        return {**staff, "calls": [_call(spec, 30)], "withdrawn": "1.5 s after join"}

    return run


def _bridged_from_queue(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    """A supervisor rings agent 1002 (Originate) and bridges a waiting caller to that call."""
    spec = CallSpec("13800138009", "桥接客户", queue="wu")
    with staffed(cfg, cap, {}, {"1002": Phone(ring=0.3, talk=3)}) as staff:
        caller = start_calls([spec], cfg, hold_seconds=30)
        channel = cap.wait_for("QueueCallerJoin", Queue="wu")["Channel"]
        time.sleep(1)
        cap.action(
            "Originate", Channel=_interface("1002"), Application="Wait", Data="20", Async="true"
        )
        agent = cap.wait_for("OriginateResponse", Response="Success")["Channel"]
        cap.action("Bridge", Channel1=channel, Channel2=agent)
        caller.wait(timeout=60)
        caller.cleanup()
    return {**staff, "calls": [_call(spec, 30)], "bridge": "1 s after join, to 1002's call"}


_MIX = [
    (CallSpec("13800000101", "耐心一", queue="mandarin"), 30.0),
    (CallSpec("13800000102", "耐心二", queue="mandarin"), 30.0),
    (CallSpec("13800000103", "耐心三", queue="mandarin"), 30.0),
    (CallSpec("13800000104", "急躁一", queue="mandarin"), 2.5),
    (CallSpec("13800000105", "急躁二", queue="mandarin"), 5.8),
    (CallSpec("13800000106", "限时", queue="mandarin", queue_timeout=2), 30.0),
]

FAMILIES = (
    Scenario(
        "blind_to_agent",
        "agent 1001 answers, then blind-transfers the caller to agent 1002's phone",
        _blind_to_agent,
        "transfer",
    ),
    Scenario(
        "blind_to_queue",
        "agent 1001 (cantonese) answers, then blind-transfers the caller to mandarin",
        _blind_to_queue,
        "transfer",
    ),
    Scenario(
        "attended_to_agent",
        "agent 1001 answers, consults agent 1002 (Atxfer), hangs up: caller talks to 1002",
        _attended_to_agent,
        "transfer",
    ),
    Scenario(
        "attended_to_queue",
        "agent 1001 answers, consults the mandarin queue (Atxfer 80001), hangs up",
        _attended_to_queue,
        "transfer",
    ),
    Scenario(
        "gone_while_ringing",
        "caller hangs up after 2 s while the only agent's phone rings (short abandon)",
        _simple(
            {"wu": ("1003",)},
            {"1003": Phone("noanswer")},
            [(CallSpec("02161230001", "吴先生", queue="wu"), 2.0)],
        ),
        "ringing",
    ),
    Scenario(
        "gone_while_rejected",
        "the only agent rejects every ring; caller hangs up after 7 s",
        _simple(
            {"minnan": ("1001",)},
            {"1001": Phone("reject", ring=0.5)},
            [(CallSpec("05921230002", "林小姐", queue="minnan"), 7.0)],
        ),
        "ringing",
    ),
    Scenario(
        "decline_then_answer",
        "agent 1001 declines (603), agent 1002 answers",
        _simple(
            {"sichuanese": ("1001", "1002")},
            {"1001": Phone("decline", ring=0.5), "1002": Phone(ring=0.5, talk=2)},
            [(CallSpec("02881230003", "张先生", queue="sichuanese"), 30.0)],
        ),
        "reject",
    ),
    Scenario(
        "all_reject_timeout",
        "agent 1003 rejects (486), 1004 declines (603), the queue times out after 3 s",
        _simple(
            {"cantonese": ("1003", "1004")},
            {"1003": Phone("reject", ring=0.3), "1004": Phone("decline", ring=0.3)},
            [(CallSpec("02081230004", "陈先生", queue="cantonese", queue_timeout=3), 30.0)],
        ),
        "reject",
    ),
    Scenario(
        "timeout_then_answered",
        "wu (empty) times out after 2 s; the caller overflows to mandarin, 1004 answers",
        _simple(
            {"mandarin": ("1004",)},
            {"1004": Phone(talk=2)},
            [(CallSpec("02161230005", "周女士", "wu", 2, overflow="mandarin"), 30.0)],
        ),
        "overflow",
    ),
    Scenario(
        "timeout_twice",
        "wu then minnan (both empty) each time out after 2 s; then the dialplan hangs up",
        _simple({}, {}, [(CallSpec("02161230006", "郑先生", "wu", 2, overflow="minnan"), 30.0)]),
        "overflow",
    ),
    Scenario(
        "withdrawn",
        "a supervisor withdraws the caller from cantonese; the dialplan hangs up",
        _withdrawn(""),
        "overflow",
    ),
    Scenario(
        "withdrawn_to_next",
        "a supervisor withdraws the caller from cantonese; it overflows to mandarin, answered",
        _withdrawn("mandarin"),
        "overflow",
    ),
    Scenario(
        "caller_hangs_up_first",
        "agent 1002 answers and would talk 10 s; the caller hangs up 3 s after arrival",
        _simple(
            {"cantonese": ("1002",)},
            {"1002": Phone(talk=10)},
            [(CallSpec("13800138007", "何先生", queue="cantonese"), 3.0)],
        ),
        "connected",
    ),
    Scenario(
        "paused_then_answered",
        "the only agent is paused (training) when the caller joins, unpaused 2 s later",
        _paused_then_answered,
        "connected",
    ),
    Scenario(
        "bridged_from_queue",
        "a supervisor originates a call to agent 1002 and bridges a waiting caller into it",
        _bridged_from_queue,
        "merge",
    ),
    Scenario(
        "mixed_six",
        "6 calls at once on 2 agents talking 5.5 s: 3 patient, 2 impatient (2.5 s, 5.8 s), "
        "1 with a queue timeout of 2 s",
        _simple(
            {"mandarin": ("1001", "1002")},
            {"1001": Phone(ring=0.3, talk=5.5), "1002": Phone(ring=0.3, talk=5.5)},
            _MIX,
        ),
        "mix",
    ),
)


def _cut_by_restart(lab: Lab, cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    """Asterisk stops (``hotline lab down``: SIGTERM) while one caller talks to 1001 and
    another waits in wu, then starts again: the calls the system cut (``failed``).

    The capture's login dies with Asterisk, and queue members with it
    (``persistentmembers = no``), so nothing is undone over AMI afterwards.
    """
    talking = CallSpec("13800138011", "断线一", queue="cantonese")
    waiting = CallSpec("02161230012", "断线二", queue="wu")
    cap.action("QueueAdd", Queue="cantonese", Interface=_interface("1001"), MemberName="1001")
    runs = [start_agent(cfg.agent("1001"), cfg, ring_seconds=0.5, talk_seconds=30)]
    try:
        runs.append(start_calls([talking], cfg, hold_seconds=30))
        cap.wait_for("AgentConnect", Queue="cantonese")
        runs.append(start_calls([waiting], cfg, hold_seconds=30))
        cap.wait_for("QueueCallerJoin", Queue="wu")
        time.sleep(1)
        shutdown_at = time.time()
        lab.down()
        lab.up(cfg)
    finally:
        for run in runs:
            run.cleanup()
    return {
        "members": {"cantonese": ["1001"]},
        "phones": {"1001": Phone(ring=0.5, talk=30).describe()},
        "calls": [_call(talking, 30), _call(waiting, 30)],
        "shutdown_at": shutdown_at,
        "asterisk_started_at": started_at(lab),
    }


FAILED = (
    Scenario(
        "cut_by_restart",
        "Asterisk stops (SIGTERM) while a caller talks to 1001 and another waits, then starts",
        None,
        "failed",
        _cut_by_restart,
    ),
)

SCENARIOS = {s.name: s for s in (*FIRST_SEVEN, *FAMILIES, *FAILED)}
# What ``hotline lab record`` plays by default: the AMI fixtures never stop the lab.
AMI_DEFAULT = tuple(s.name for s in (*FIRST_SEVEN, *FAMILIES))
# ... and with ``--asterisk-record``: one or more scenarios per outcome family the
# reconciler classifies (tests/fixtures/record/, docs/lab.md), kept small (~430 KB):
# the other transfers and rna_then_answer also pass, but add 150 KB for little.
RECORD_DEFAULT = (
    "answered",
    "abandoned",
    "short_abandoned",
    "timeout",
    "ivr_only",
    "withdrawn",
    "timeout_then_answered",
    "timeout_twice",
    "caller_hangs_up_first",
    "blind_to_queue",
    "attended_to_queue",
    "bridged_from_queue",
    "mixed_six",
    "cut_by_restart",
)


class AsteriskRecord:
    """What Asterisk appends to its own record (CEL CSV, queue_log) during a scenario.

    The files only grow while the lab runs (a restart appends too), so the sizes taken
    before the scenario mark where its lines begin. CEL is written from Stasis, after
    the AMI events of the same moment: :meth:`take` waits until every Linkedid in the
    new lines has its ``LINKEDID_END`` (the last row Asterisk writes for a call) before
    it reads, and gives up after ``timeout`` (a call cut by a crash never gets one).
    """

    _TYPE = next(i for i, (column, _f) in enumerate(CEL_CSV_FIELDS) if column == "eventtype")
    _LINKEDID = next(i for i, (column, _f) in enumerate(CEL_CSV_FIELDS) if column == "linkedid")

    def __init__(self, lab: Lab) -> None:
        self.cel_path = lab.cel_file
        self.queue_log_path = lab.queue_log()
        self.cel_from = _size(self.cel_path)
        self.queue_log_from = _size(self.queue_log_path)

    def _open_linkedids(self, cel: bytes) -> set[str]:
        started: set[str] = set()
        ended: set[str] = set()
        for row in csv.reader(io.StringIO(cel.decode("utf-8", errors="replace"))):
            if len(row) <= max(self._TYPE, self._LINKEDID):
                continue
            kind, linkedid = row[self._TYPE], row[self._LINKEDID]
            (ended if kind == "LINKEDID_END" else started).add(linkedid)
        return started - ended

    def take(self, timeout: float = 10.0) -> tuple[bytes, bytes]:
        """The scenario's CEL lines and queue_log lines (whole lines only)."""
        deadline = time.monotonic() + timeout
        while True:
            cel = _complete_lines(_read_from(self.cel_path, self.cel_from))
            still_open = self._open_linkedids(cel)
            if not still_open:
                break
            if time.monotonic() >= deadline:
                log.warning("no LINKEDID_END for %s within %g s", sorted(still_open), timeout)
                break
            time.sleep(0.1)
        queue_log = _complete_lines(_read_from(self.queue_log_path, self.queue_log_from))
        return cel, queue_log


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def _complete_lines(data: bytes) -> bytes:
    """Up to the last newline: a line being written is not read half."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def started_at(lab: Lab) -> float | None:
    """When the lab's Asterisk process started (epoch s, 10 ms), from /proc; None if down."""
    pid = lab.pid()
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            ticks = int(fh.read().rsplit(") ", 1)[1].split()[19])
        with open("/proc/stat") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def record(
    lab: Lab,
    config: LabConfig,
    names: list[str],
    out_dir: Path,
    *,
    asterisk_record: bool = False,
) -> list[Path]:
    """Play ``names`` and write their recordings; returns the paths written.

    A recording that already exists is skipped, never overwritten: tests pin what it
    holds (its ``.expected.json``, and ``queue_log`` lines for the first seven), so
    re-recording one is a deliberate step: delete it, record, regenerate the expectation.

    ``asterisk_record``: also keep Asterisk's own record of the calls, and write every
    scenario flat into ``out_dir`` as ``<name>.ami``, ``.cel.csv``, ``.queue_log`` and
    ``.json`` (with ``asterisk_started_at`` and ``default_dialect``, the dialplan's
    ``DIALECT`` before the IVR decides, which CEL does not show).
    """
    lab.up(config)
    written = []
    for name in names:
        scenario = SCENARIOS[name]
        path = out_dir / (f"{name}.ami" if asterisk_record else scenario.relative)
        if path.exists():
            log.warning("%s exists: not recorded again (delete it first)", path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        marks = AsteriskRecord(lab) if asterisk_record else None
        cap = AMICapture(config)
        time.sleep(0.3)
        meta: dict[str, object] = {}
        if marks is not None:  # what the reconciler is told besides the record
            meta = {"asterisk_started_at": started_at(lab), "default_dialect": config.default_queue}
        meta.update(scenario.play(lab, config, cap))
        data = cap.stop()
        if marks is not None:
            cel, queue_log = marks.take()
            path.with_suffix(".cel.csv").write_bytes(cel)
            path.with_suffix(".queue_log").write_bytes(queue_log)
        path.write_bytes(data)
        meta = {"scenario": name, "description": scenario.description, **meta}
        text = json.dumps(meta, ensure_ascii=False, indent=2) + "\n"
        path.with_suffix(".json").write_text(text, encoding="utf-8")
        written.append(path)
    return written


__all__ = [
    "AMI_DEFAULT",
    "RECORD_DEFAULT",
    "SCENARIOS",
    "AMICapture",
    "AsteriskRecord",
    "Phone",
    "RecordError",
    "Scenario",
    "record",
    "staffed",
    "started_at",
]
