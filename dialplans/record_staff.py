"""How a lab recording scenario is written: its record, the agents' phones, the staff.

Kept apart from the scenarios themselves so each scenario reads as the calls it places
and the actions it sends, and the set-up every one repeats (queue members added over AMI,
SIPp phones answering as told, all undone on exit even when the scenario fails) is
written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dialplans.config import LabConfig
from dialplans.lab import Lab
from dialplans.record_ami import AMICapture
from dialplans.sipp import Behaviour, CallSpec, SippRun, start_agent

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


def interface(agent_id: str) -> str:
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
            cap.action("QueueAdd", Queue=queue, Interface=interface(agent_id), MemberName=agent_id)
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
                cap.action("QueueRemove", Queue=queue, Interface=interface(agent_id))


def placed(spec: CallSpec, hold: float) -> dict[str, object]:
    """The JSON line describing one placed call."""
    line: dict[str, object] = {"number": spec.number, "name": spec.name, "hold_seconds": hold}
    for key in ("queue", "queue_timeout", "dtmf", "overflow"):
        value = getattr(spec, key)
        if value not in ("", None):
            line[key] = value
    return line


__all__ = ["LabRun", "Phone", "Run", "Scenario", "interface", "placed", "staffed"]
