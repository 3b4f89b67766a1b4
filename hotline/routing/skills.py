"""Agents' dialect skills → queue membership, and the AMI actions that make Asterisk match.

Each dialect queue holds the agents who understand that dialect, with a penalty from their
skill (native 0, good 5, fallback 10). The caller joins with ``QUEUE_MAX_PENALTY=0`` and the
queue rule widens it as the wait grows (``[widen]`` in dialplans/templates/queuerules.conf),
so a Cantonese caller first rings native speakers and later a bilingual agent *without
losing the place in line*: Asterisk fixes a caller's rules when the caller enters the queue
and keeps the position while the eligible pool grows.

Pure functions: :func:`desired_members` says what membership should be, :func:`plan` diffs it
against what ``QueueStatus`` reports and returns QueueAdd/QueueRemove/QueuePenalty actions as
dicts. :mod:`hotline.agents.membership` sends them, and re-runs the plan after every AMI
login, which is how membership survives an Asterisk restart (dynamic members are lost with
the process).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "PENALTY",
    "AgentSkills",
    "Member",
    "Skill",
    "current_members",
    "desired_members",
    "plan",
]


class Skill(enum.StrEnum):
    NATIVE = "native"
    GOOD = "good"
    FALLBACK = "fallback"


PENALTY: Mapping[Skill, int] = {Skill.NATIVE: 0, Skill.GOOD: 5, Skill.FALLBACK: 10}


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSkills:
    """An agent's phone interface and dialect skills (dialect id → skill)."""

    agent_id: str
    interface: str
    skills: Mapping[str, Skill | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, order=True)
class Member:
    """One queue membership: ``(queue, interface, member_name, penalty)``."""

    queue: str
    interface: str
    member_name: str
    penalty: int


def desired_members(agents: Iterable[AgentSkills], queues: Collection[str]) -> list[Member]:
    """Membership the skills call for, sorted; skills for dialects without a queue are skipped.

    An unknown skill word raises ``ValueError``: this runs when skills are saved or at
    start-up, not in a call, and a typo must not silently drop an agent from a queue.
    """
    members = []
    for agent in agents:
        for dialect, skill in agent.skills.items():
            if dialect not in queues:
                continue
            penalty = PENALTY[Skill(skill)]
            members.append(Member(dialect, agent.interface, agent.agent_id, penalty))
    return sorted(members)


def current_members(events: Iterable[Mapping[str, str]]) -> tuple[list[Member], list[Member]]:
    """``(dynamic, static)`` members from QueueStatus ``QueueMember`` items (or
    ``QueueMemberAdded`` events).

    QueueStatus names fields ``Name``/``Location`` while the member events use
    ``MemberName``/``Interface``; both are accepted. Static members (queues.conf) cannot be
    changed over AMI, so they are returned apart and :func:`plan` leaves them alone.
    """
    dynamic: list[Member] = []
    static: list[Member] = []
    for event in events:
        if event.get("Event", "QueueMember") not in ("QueueMember", "QueueMemberAdded"):
            continue
        interface = event.get("Interface") or event.get("Location") or ""
        queue = event.get("Queue", "")
        if not interface or not queue:
            continue
        try:
            penalty = int(event.get("Penalty", "0") or 0)
        except ValueError:
            penalty = 0
        member = Member(
            queue, interface, event.get("MemberName") or event.get("Name") or "", penalty
        )
        (dynamic if event.get("Membership", "dynamic") == "dynamic" else static).append(member)
    return dynamic, static


def plan(
    desired: Iterable[Member],
    current: Iterable[Member],
    *,
    managed_queues: Collection[str] | None = None,
    static: Iterable[Member] = (),
) -> list[dict[str, str]]:
    """AMI actions turning ``current`` into ``desired``: removes, then adds, then penalties.

    Only queues in ``managed_queues`` (default: those named in ``desired``) are touched, so
    queues we do not own keep their members. Members in ``static`` are never added, removed
    or re-penalised (Asterisk refuses to change them). Removes go first so an agent moving
    between interfaces is never in a queue twice. A member whose name changed is removed and
    re-added, because QueueAdd cannot rename and MemberName is how events name the agent.
    """
    want = {(m.queue, m.interface): m for m in desired}
    have = {(m.queue, m.interface): m for m in current}
    fixed = {(m.queue, m.interface) for m in static}
    queues = set(managed_queues) if managed_queues is not None else {q for q, _ in want}

    removes, adds, penalties = [], [], []
    for key, member in sorted(have.items()):
        if member.queue not in queues or key in fixed:
            continue
        target = want.get(key)
        if target is None or target.member_name != member.member_name:
            removes.append(
                {"Action": "QueueRemove", "Queue": member.queue, "Interface": member.interface}
            )
    for key, target in sorted(want.items()):
        if target.queue not in queues or key in fixed:
            continue
        now = have.get(key)
        if now is None or now.member_name != target.member_name:
            adds.append(
                {
                    "Action": "QueueAdd",
                    "Queue": target.queue,
                    "Interface": target.interface,
                    "MemberName": target.member_name,
                    "Penalty": str(target.penalty),
                }
            )
        elif now.penalty != target.penalty:
            penalties.append(
                {
                    "Action": "QueuePenalty",
                    "Queue": target.queue,
                    "Interface": target.interface,
                    "Penalty": str(target.penalty),
                }
            )
    return removes + adds + penalties
