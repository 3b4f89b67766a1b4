"""The agent directory and its I/O edge: database rows in, AMI queue membership out.

:mod:`hotline.routing.skills` decides, without I/O, which dialect queues an agent belongs in
and at what penalty. This module does the rest:

* validates what people type (``cantonese:native``, ``PJSIP/agent-1001``) before it is
  stored, because a stored typo would otherwise surface only at sync time, as an agent
  silently missing from a queue; every value that later travels in an AMI header is also
  checked for characters that could inject a header (CR/LF) or confuse the dialplan;
* saves and removes agents (shared by the API and the CLI, so both refuse the same input);
* :func:`sync_membership` asks Asterisk what the queues hold (``QueueStatus``), diffs it
  against the skills and sends QueueAdd/QueueRemove/QueuePenalty one by one. One refused
  action is counted and the rest still go out: a half-applied membership is better than
  none for callers waiting now, and the next sync retries the rest;
* :func:`membership_login_hook` re-runs the sync after every AMI login. Dynamic members
  die with the Asterisk process, so after a restart the queues are empty until this runs.

Logging names agents, queues and interfaces (ids), never agents' display names.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hotline.db.models import Agent
from hotline.routing.skills import (
    AgentSkills,
    Skill,
    current_members,
    desired_members,
    plan,
)

__all__ = [
    "AGENT_ID_PATTERN",
    "DIALECT_PATTERN",
    "INTERFACE_PATTERN",
    "InterfaceInUseError",
    "InvalidAgentError",
    "MembershipHook",
    "MembershipSyncError",
    "SyncReport",
    "load_agents",
    "load_directory",
    "membership_login_hook",
    "parse_skill",
    "parse_skills",
    "remove_agent",
    "save_agent",
    "sync_membership",
    "validate_agent_id",
    "validate_interface",
    "validate_name",
]

log = logging.getLogger(__name__)

# MemberName in every queue event and the agent id on API tokens: keep it plain.
AGENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,79}$")
# Tech/resource as Asterisk dials it: PJSIP/agent-1001, Local/1001@agents/n, SIP/1001.
INTERFACE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[A-Za-z0-9._@:/+=-]{1,240}$")
# Dialect ids are queue names (DEFAULT_QUEUES: mandarin, cantonese, minnan, wu, ...).
DIALECT_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LEVELS = ", ".join(s.value for s in Skill)

QUEUE_STATUS_TIMEOUT = 10.0
ACTION_TIMEOUT = 5.0


class InvalidAgentError(ValueError):
    """An agent id, interface, name or skill that must not be stored (message says why)."""


class InterfaceInUseError(ValueError):
    """Another agent already has this interface; two agents cannot ring one phone."""

    def __init__(self, interface: str, owner: str) -> None:
        super().__init__(f"interface {interface} already belongs to agent {owner}")
        self.interface = interface
        self.owner = owner


class MembershipSyncError(RuntimeError):
    """Asterisk's current membership could not be read, so nothing was changed.

    Planning against a guessed membership could remove members that are really there or
    re-add ones that are, so without a ``QueueStatus`` answer the sync does nothing.
    """


# -- validation --------------------------------------------------------------------------


def validate_agent_id(agent_id: str) -> str:
    """The agent id, stripped; it becomes the queue MemberName, so it must be header-safe."""
    value = agent_id.strip()
    if not AGENT_ID_PATTERN.fullmatch(value):
        raise InvalidAgentError(
            f"agent id {agent_id!r} must be 1-80 characters: letters, digits, . _ @ -"
        )
    return value


def validate_interface(interface: str) -> str:
    """The interface, stripped, if it looks like ``Tech/resource`` (``PJSIP/agent-1001``)."""
    value = interface.strip()
    if not INTERFACE_PATTERN.fullmatch(value):
        raise InvalidAgentError(
            f"interface {interface!r} must look like PJSIP/agent-1001 (Tech/resource, "
            "no spaces, commas or control characters)"
        )
    return value


def validate_name(name: str) -> str:
    """The display name, stripped; only control characters and length are refused."""
    value = name.strip()
    if len(value) > 200:
        raise InvalidAgentError("name must be at most 200 characters")
    if _CONTROL.search(value):
        raise InvalidAgentError("name must not contain control characters")
    return value


def parse_skill(text: str) -> tuple[str, Skill]:
    """``"Cantonese:Native"`` → ``("cantonese", Skill.NATIVE)``; anything else is refused.

    Case and surrounding spaces are forgiven (people type them); an unknown level is not,
    because guessing would put an agent in a queue at the wrong penalty.
    """
    dialect, sep, level = text.strip().lower().partition(":")
    dialect, level = dialect.strip(), level.strip()
    if not sep or not dialect or not level:
        raise InvalidAgentError(f"skill {text!r} must be <dialect>:<{'|'.join(Skill)}>")
    if not DIALECT_PATTERN.fullmatch(dialect):
        raise InvalidAgentError(
            f"skill {text!r}: dialect must be lower-case letters, digits, _ or - (e.g. cantonese)"
        )
    try:
        skill = Skill(level)
    except ValueError:
        raise InvalidAgentError(
            f"skill {text!r}: unknown level {level!r} (use one of: {_LEVELS})"
        ) from None
    return dialect, skill


def parse_skills(texts: Iterable[str]) -> dict[str, Skill]:
    """Skill strings → ``{dialect: Skill}``; a dialect given twice is refused as ambiguous."""
    skills: dict[str, Skill] = {}
    for text in texts:
        dialect, skill = parse_skill(text)
        if dialect in skills:
            raise InvalidAgentError(f"dialect {dialect!r} is given more than once")
        skills[dialect] = skill
    return skills


def _skill_strings(skills: Mapping[str, Skill]) -> list[str]:
    return [f"{dialect}:{skill.value}" for dialect, skill in skills.items()]


# -- the directory (database) ------------------------------------------------------------


def load_directory(session: Session) -> tuple[list[AgentSkills], list[Agent]]:
    """``(valid agents, agents whose stored skills do not parse)``, ordered by id.

    Rows only get invalid by bypassing :func:`save_agent` (hand-edited database). Such an
    agent is reported apart so the sync can leave its membership as Asterisk has it,
    rather than remove it from queues because of one bad word.
    """
    good: list[AgentSkills] = []
    bad: list[Agent] = []
    for row in session.scalars(select(Agent).order_by(Agent.id)):
        try:
            skills = parse_skills(row.skills or [])
        except (InvalidAgentError, TypeError, AttributeError):
            log.warning("agent %s has invalid stored skills; its membership is left alone", row.id)
            bad.append(row)
            continue
        good.append(AgentSkills(agent_id=row.id, interface=row.interface, skills=skills))
    return good, bad


def load_agents(session: Session) -> list[AgentSkills]:
    """Every agent with valid skills, as :func:`~hotline.routing.skills.desired_members` wants."""
    return load_directory(session)[0]


def save_agent(
    session: Session,
    agent_id: str,
    *,
    interface: str,
    skills: Sequence[str],
    name: str = "",
) -> tuple[Agent, bool]:
    """Create or replace an agent; return ``(row, created)``. Commits.

    Everything is validated first (:class:`InvalidAgentError`); an interface owned by a
    different agent raises :class:`InterfaceInUseError` rather than a database error, so
    both the API and the CLI can say which agent holds it.
    """
    agent_id = validate_agent_id(agent_id)
    interface = validate_interface(interface)
    name = validate_name(name)
    canonical = _skill_strings(parse_skills(skills))
    owner = session.scalars(
        select(Agent.id).where(Agent.interface == interface, Agent.id != agent_id)
    ).first()
    if owner is not None:
        raise InterfaceInUseError(interface, owner)
    row = session.get(Agent, agent_id)
    created = row is None
    if row is None:
        row = Agent(id=agent_id, name=name, interface=interface, skills=canonical)
        session.add(row)
    else:
        row.name, row.interface, row.skills = name, interface, canonical
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # Lost a race with a concurrent save of the same interface (or id).
        owner = session.scalars(select(Agent.id).where(Agent.interface == interface)).first()
        if owner is not None and owner != agent_id:
            raise InterfaceInUseError(interface, owner) from None
        raise
    log.info("agent %s %s (%s)", agent_id, "created" if created else "updated", interface)
    return row, created


def remove_agent(session: Session, agent_id: str) -> bool:
    """Delete an agent; ``False`` if there was none. Commits. The next sync removes it
    from the queues (it is not done here: the database must not wait on Asterisk)."""
    row = session.get(Agent, agent_id)
    if row is None:
        return False
    session.delete(row)
    session.commit()
    log.info("agent %s removed", agent_id)
    return True


# -- membership sync (AMI) ---------------------------------------------------------------


class _Bridge(Protocol):
    """What the sync needs of :class:`~hotline.ami.bridge.AMIBridge` (tests may fake it)."""

    @property
    def connected(self) -> bool: ...

    async def send_action(
        self, action: Mapping[str, Any], as_list: bool | None = None, *, timeout: float = 10.0
    ) -> Any: ...


@dataclass(slots=True)
class SyncReport:
    """What one sync found and did; ``failures`` say which actions Asterisk refused."""

    queues: list[str]
    desired: int = 0
    current: int = 0
    static: int = 0
    planned: int = 0
    applied: int = 0
    failed: int = 0
    not_sent: int = 0  # the link dropped mid-sync; the next login's sync does them
    left_alone: list[str] = field(default_factory=list)  # agents with invalid stored skills
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.not_sent == 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _headers(item: Any) -> Mapping[str, str] | None:
    """A QueueStatus list item's headers: our framer's ``Frame`` when present, else the
    panoramisk Message itself (a dict of headers)."""
    frame = getattr(item, "frame", None)
    if frame is not None:
        return frame.headers  # type: ignore[no-any-return]
    return item if isinstance(item, Mapping) else None


def _response_ok(response: Any) -> tuple[bool, str]:
    first = response[0] if isinstance(response, list) and response else response
    headers = _headers(first) or {}
    status = str(headers.get("Response", ""))
    return status == "Success", str(headers.get("Message", "")) or status or "no response"


async def _read_members(bridge: _Bridge, timeout: float) -> tuple[list[Any], list[Any]]:
    try:
        result = await bridge.send_action({"Action": "QueueStatus"}, as_list=True, timeout=timeout)
    except Exception as exc:
        raise MembershipSyncError(f"QueueStatus failed: {type(exc).__name__}") from exc
    items = result if isinstance(result, list) else [result]
    ok, message = _response_ok(items)
    if not ok:
        raise MembershipSyncError(f"QueueStatus refused: {message}")
    events = [
        headers
        for item in items[1:]
        if (headers := _headers(item)) is not None and headers.get("Event") == "QueueMember"
    ]
    return current_members(events)


_locks: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_for(bridge: object) -> asyncio.Lock:
    """One sync at a time per bridge: two overlapping syncs (login hook and an API call)
    would plan against the same snapshot and send every QueueAdd twice."""
    lock = _locks.get(bridge)
    if lock is None:
        lock = _locks[bridge] = asyncio.Lock()
    return lock


async def sync_membership(
    bridge: _Bridge,
    agents: Iterable[AgentSkills],
    queues: Collection[str],
    *,
    leave_alone: Collection[str] = (),
    timeout: float = ACTION_TIMEOUT,
    status_timeout: float = QUEUE_STATUS_TIMEOUT,
) -> SyncReport:
    """Make the dialect ``queues`` in Asterisk hold exactly the members ``agents`` call for.

    Only ``queues`` are touched (others may be run by hand); static members (queues.conf)
    and interfaces in ``leave_alone`` are never changed. Each action is sent and checked on
    its own; a refusal or timeout is counted in the report and the sync goes on. If the
    link drops mid-way the rest is counted as ``not_sent`` (the next login syncs again).

    Raises :class:`MembershipSyncError` only when the current membership cannot be read;
    an unknown skill in ``agents`` raises ``ValueError`` before anything is sent.
    """
    queue_list = sorted(set(queues))
    desired = desired_members(agents, queue_list)
    async with _lock_for(bridge):
        dynamic, static = await _read_members(bridge, status_timeout)
        keep = set(leave_alone)
        actions = [
            a
            for a in plan(desired, dynamic, managed_queues=queue_list, static=static)
            if a["Interface"] not in keep
        ]
        report = SyncReport(
            queues=queue_list,
            desired=len(desired),
            current=len(dynamic),
            static=len(static),
            planned=len(actions),
        )
        for index, action in enumerate(actions):
            if not bridge.connected:
                report.not_sent = len(actions) - index
                log.warning("AMI link lost during membership sync; %d not sent", report.not_sent)
                break
            try:
                response = await bridge.send_action(action, timeout=timeout)
            except Exception as exc:
                ok, message = False, type(exc).__name__
            else:
                ok, message = _response_ok(response)
            if ok:
                report.applied += 1
                log.info(
                    "%s %s %s%s",
                    action["Action"],
                    action["Queue"],
                    action["Interface"],
                    f" penalty {action['Penalty']}" if "Penalty" in action else "",
                )
                continue
            report.failed += 1
            report.failures.append(
                {
                    "action": action["Action"],
                    "queue": action["Queue"],
                    "interface": action["Interface"],
                    "message": message[:200],
                }
            )
            log.warning(
                "%s %s %s failed: %s",
                action["Action"],
                action["Queue"],
                action["Interface"],
                message[:200],
            )
    log.info(
        "queue membership sync: %d desired, %d current, %d applied, %d failed",
        report.desired,
        report.current,
        report.applied,
        report.failed,
    )
    return report


class MembershipHook:
    """``await hook(bridge)`` loads the agents and syncs; install with
    ``bridge.add_login_hook(hook)`` so membership is back right after an Asterisk restart.

    A database error skips the sync instead of syncing an empty directory, which would
    remove every agent from every queue. The last report is kept for health pages.
    """

    def __init__(
        self, sessions: sessionmaker[Session] | Callable[[], Session], queues: Collection[str]
    ) -> None:
        self.sessions = sessions
        self.queues = tuple(queues)
        self.last_report: SyncReport | None = None
        self.last_error: str | None = None
        self.runs = 0

    def __repr__(self) -> str:
        return f"MembershipHook(queues={self.queues!r})"

    def _load(self) -> tuple[list[AgentSkills], list[Agent]]:
        with self.sessions() as session:
            return load_directory(session)

    async def __call__(self, bridge: _Bridge) -> None:
        self.runs += 1
        try:
            agents, bad = await asyncio.to_thread(self._load)
        except SQLAlchemyError as exc:
            # The class name only: the error text may carry SQL parameters.
            self.last_error = f"database: {type(exc).__name__}"
            log.warning("membership sync skipped: cannot read agents (%s)", type(exc).__name__)
            return
        try:
            report = await sync_membership(
                bridge, agents, self.queues, leave_alone={row.interface for row in bad}
            )
        except MembershipSyncError as exc:
            self.last_error = str(exc)
            log.warning("membership sync skipped: %s", exc)
            return
        report.left_alone = [row.id for row in bad]
        self.last_report, self.last_error = report, None


def membership_login_hook(
    sessions: sessionmaker[Session] | Callable[[], Session], queues: Collection[str]
) -> MembershipHook:
    """A login hook (``bridge.add_login_hook(...)``) that re-applies queue membership.

    ``sessions`` opens a database session (a ``sessionmaker``); ``queues`` are the dialect
    queues Hotline manages (``settings.queue_names``). Returns a :class:`MembershipHook`.
    """
    return MembershipHook(sessions, queues)
