"""The agent directory: who the agents are, which phone rings them, which dialects they speak.

:mod:`hotline.routing.skills` decides, without I/O, which dialect queues an agent belongs in
and at what penalty; :mod:`hotline.agents.membership` makes Asterisk's queues match. This
module owns the stored directory:

* validates what people type (``cantonese:native``, ``PJSIP/agent-1001``) before it is
  stored, because a stored typo would otherwise surface only at sync time, as an agent
  silently missing from a queue; every value that later travels in an AMI header is also
  checked for characters that could inject a header (CR/LF) or confuse the dialplan;
* saves and removes agents (shared by the API and the CLI, so both refuse the same input);
* loads the directory for the membership sync, keeping apart rows whose stored skills no
  longer parse.

Logging names agents, queues and interfaces (ids), never agents' display names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.db.models import Agent
from hotline.routing.skills import AgentSkills, Skill

__all__ = [
    "AGENT_ID_PATTERN",
    "DIALECT_PATTERN",
    "INTERFACE_PATTERN",
    "InterfaceInUseError",
    "InvalidAgentError",
    "load_agents",
    "load_directory",
    "parse_skill",
    "parse_skills",
    "remove_agent",
    "save_agent",
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


class InvalidAgentError(ValueError):
    """An agent id, interface, name or skill that must not be stored (message says why)."""


class InterfaceInUseError(ValueError):
    """Another agent already has this interface; two agents cannot ring one phone."""

    def __init__(self, interface: str, owner: str) -> None:
        super().__init__(f"interface {interface} already belongs to agent {owner}")
        self.interface = interface
        self.owner = owner


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
