"""The agent directory (who rings, with which dialect skills) and the queue sync.

``/api/agents`` itself is the live agent state; the directory lives under
``/api/agents/directory`` so the two never clash. Supervisors read the directory and may
re-apply membership (``POST /api/agents/sync``) when they suspect Asterisk drifted; only
admins change it, because a wrong skill sends callers to an agent who cannot understand
them. Saving does not touch Asterisk: the database must not wait on AMI, and a sync is
one explicit call (or happens by itself at the next AMI login).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from hotline.agents.directory import (
    AGENT_ID_PATTERN,
    InterfaceInUseError,
    load_directory,
    parse_skills,
    remove_agent,
    save_agent,
    validate_interface,
    validate_name,
)
from hotline.agents.membership import MembershipSyncError, sync_membership
from hotline.api.auth import Role, require
from hotline.api.deps import BridgeDep, SessionDep, SessionmakerDep, SettingsDep
from hotline.api.errors import (
    BODY_ERRORS,
    AMINotConnected,
    Forbidden,
    InterfaceInUse,
    NoSuchAgent,
    ServiceNotRunning,
    responses,
)
from hotline.db.models import Agent
from hotline.routing.skills import AgentSkills

__all__ = ["AgentIn", "AgentList", "AgentOut", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/agents", tags=["agents"])

AgentId = Annotated[str, Path(max_length=80, pattern=AGENT_ID_PATTERN.pattern)]


class AgentOut(BaseModel):
    """One agent as the directory shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    interface: str
    skills: list[str]
    created_at: datetime | None = None


class AgentList(BaseModel):
    items: list[AgentOut]
    count: int


class AgentIn(BaseModel):
    """The whole agent (PUT replaces): skills are ``<dialect>:<native|good|fallback>``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)] = ""
    interface: Annotated[str, Field(min_length=3, max_length=255)]
    skills: Annotated[list[Annotated[str, Field(max_length=60)]], Field(max_length=50)] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("interface")
    @classmethod
    def _interface(cls, value: str) -> str:
        return validate_interface(value)

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        return [f"{d}:{s.value}" for d, s in parse_skills(value).items()]


@router.get(
    "/directory",
    response_model=AgentList,
    name="directory",
    dependencies=[Depends(require(Role.SUPERVISOR))],
    responses=responses(Forbidden),
)
def list_directory(session: SessionDep) -> AgentList:
    """Every agent with interface and skills, by id (invalid stored skills shown as stored)."""
    rows = session.scalars(select(Agent).order_by(Agent.id)).all()
    items = [AgentOut.model_validate(row) for row in rows]
    return AgentList(items=items, count=len(items))


@router.put(
    "/directory/{agent_id}",
    response_model=AgentOut,
    name="put",
    dependencies=[Depends(require(Role.ADMIN))],
    responses={
        201: {"model": AgentOut, "description": "created"},
        **responses(Forbidden, InterfaceInUse, *BODY_ERRORS),
    },
)
def put_agent(
    agent_id: AgentId, body: AgentIn, session: SessionDep, response: Response
) -> AgentOut:
    """Create or replace an agent (200 replaced, 201 created, 409 interface taken)."""
    try:
        row, created = save_agent(
            session, agent_id, interface=body.interface, skills=body.skills, name=body.name
        )
    except InterfaceInUseError as exc:
        raise InterfaceInUse(
            str(exc), details={"interface": exc.interface, "agent_id": exc.owner}
        ) from None
    if created:
        response.status_code = status.HTTP_201_CREATED
    return AgentOut.model_validate(row)


@router.delete(
    "/directory/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="delete",
    dependencies=[Depends(require(Role.ADMIN))],
    responses=responses(Forbidden, NoSuchAgent),
)
def delete_agent(agent_id: AgentId, session: SessionDep) -> Response:
    """Remove an agent; the next sync takes it out of its queues."""
    if not remove_agent(session, agent_id):
        raise NoSuchAgent()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/sync",
    name="sync",
    dependencies=[Depends(require(Role.SUPERVISOR))],
    responses=responses(Forbidden, ServiceNotRunning, AMINotConnected),
)
async def sync_now(
    bridge: BridgeDep, sessions: SessionmakerDep, settings: SettingsDep
) -> dict[str, Any]:
    """Re-apply queue membership from the directory now; returns the sync report."""
    if bridge is None:
        raise ServiceNotRunning()
    if not bridge.connected:
        raise AMINotConnected()

    def load() -> tuple[list[AgentSkills], list[Agent]]:
        with sessions() as session:
            return load_directory(session)

    agents, bad = await run_in_threadpool(load)
    try:
        report = await sync_membership(
            bridge, agents, settings.queue_names, leave_alone={row.interface for row in bad}
        )
    except MembershipSyncError as exc:
        raise AMINotConnected(str(exc)) from None
    report.left_alone = [row.id for row in bad]
    return report.as_dict()
