"""The lab scenarios ``hotline lab record`` can play, one function each.

Each places SIPp calls and sends the AMI actions a supervisor or an agent's phone would
(transfer, pause, withdraw), and returns what it placed for the recording's JSON; the
catalog and what is played by default are in :mod:`dialplans.record`. docs/lab.md lists
the families and what each shows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from dialplans.config import LabConfig
from dialplans.lab import Lab
from dialplans.record_ami import AMICapture
from dialplans.record_asterisk import started_at
from dialplans.record_staff import Phone, Run, Scenario, interface, placed, staffed
from dialplans.sipp import CallSpec, place_calls, start_agent, start_calls

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
    return {**staff, "calls": [placed(spec, 30)], "transfer": {"action": action, "to": target}}


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
        return {**staff, "calls": [placed(spec, hold) for spec, hold in specs]}

    return run


def _paused_then_answered(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    spec = CallSpec("075512345678", "黄先生", queue="minnan")
    with staffed(cfg, cap, {"minnan": ("1003",)}, {"1003": Phone(talk=2)}) as staff:
        cap.action("QueuePause", Interface=interface("1003"), Paused="true", Reason="training")
        caller = start_calls([spec], cfg, hold_seconds=30)
        cap.wait_for("QueueCallerJoin", Queue="minnan")
        time.sleep(2)
        cap.action("QueuePause", Interface=interface("1003"), Paused="false")
        caller.wait(timeout=60)
        caller.cleanup()
    return {**staff, "calls": [placed(spec, 30)], "pause": {"1003": "training, 2 s after join"}}


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
        return {**staff, "calls": [placed(spec, 30)], "withdrawn": "1.5 s after join"}

    return run


def _bridged_from_queue(cfg: LabConfig, cap: AMICapture) -> dict[str, object]:
    """A supervisor rings agent 1002 (Originate) and bridges a waiting caller to that call."""
    spec = CallSpec("13800138009", "桥接客户", queue="wu")
    with staffed(cfg, cap, {}, {"1002": Phone(ring=0.3, talk=3)}) as staff:
        caller = start_calls([spec], cfg, hold_seconds=30)
        channel = cap.wait_for("QueueCallerJoin", Queue="wu")["Channel"]
        time.sleep(1)
        cap.action(
            "Originate", Channel=interface("1002"), Application="Wait", Data="20", Async="true"
        )
        agent = cap.wait_for("OriginateResponse", Response="Success")["Channel"]
        cap.action("Bridge", Channel1=channel, Channel2=agent)
        caller.wait(timeout=60)
        caller.cleanup()
    return {**staff, "calls": [placed(spec, 30)], "bridge": "1 s after join, to 1002's call"}


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
    cap.action("QueueAdd", Queue="cantonese", Interface=interface("1001"), MemberName="1001")
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
        "calls": [placed(talking, 30), placed(waiting, 30)],
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


__all__ = ["FAILED", "FAMILIES", "FIRST_SEVEN"]
