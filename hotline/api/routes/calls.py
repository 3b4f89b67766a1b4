"""``GET /api/calls``: the call log, newest first.

Agents see only the calls they answered (their token's ``agent_id``); supervisors and
admins see every call. The filter is applied in SQL, not after the fact, so ``limit``
means the same for everyone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from hotline.api.auth import Principal, Role, require
from hotline.api.deps import SessionDep, SettingsDep
from hotline.api.errors import (
    BODY_ERRORS,
    CustomerNotAllowed,
    Forbidden,
    NoSuchCall,
    NoSuchCustomer,
    responses,
)
from hotline.api.inputs import IsoDateTime
from hotline.api.routes.customer_access import grants_of, reason_to_open
from hotline.calls.records import Outcome
from hotline.db.models import CallLog, Customer, CustomerLink
from hotline.phones import to_e164

log = logging.getLogger(__name__)

__all__ = ["CallList", "CallOut", "router"]

router = APIRouter(prefix="/api/calls", tags=["calls"])

_INT32_MAX = 2**31 - 1


class CallOut(BaseModel):
    """One call-log row as the API shows it (times in UTC, ISO 8601)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    linkedid: str
    outcome: Outcome
    caller_number: str
    caller_e164: str | None
    caller_name: str
    customer_id: int | None
    arrived_at: datetime | None
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    queue: str | None
    queues: list[str]
    agent: str | None
    agent_interface: str | None
    queue_status: str | None
    hangup_cause: int | None
    ivr_path: list[str]
    notes: str | None
    disposition: str | None
    wrapped_up_at: datetime | None = None
    dialect: str | None = None
    route_source: str | None = None
    priority: int | None = None
    route_reasons: list[str] = []
    candidates: int | None = None
    survey_score: int | None = None
    customer_link_source: str | None = None


class CallList(BaseModel):
    items: list[CallOut]
    count: int  # len(items); there is no total, which would cost a second query


@router.get("", response_model=CallList, name="list")
def list_calls(
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
    customer_id: Annotated[int | None, Query(ge=1, le=_INT32_MAX)] = None,
    number: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Caller number in any form; compared in E.164 when it parses, "
            "else as Asterisk gave it (withheld or malformed numbers).",
        ),
    ] = None,
    since: Annotated[
        IsoDateTime | None,
        Query(description="ISO 8601; calls that arrived at or after it. Naive means UTC."),
    ] = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CallList:
    """List calls, newest arrival first, filtered by customer, number, time and outcome."""
    query = select(CallLog)
    if not principal.has(Role.SUPERVISOR):
        query = query.where(CallLog.agent == principal.agent_id if principal.agent_id else false())
    if customer_id is not None:
        query = query.where(CallLog.customer_id == customer_id)
    if number is not None:
        e164 = to_e164(number, settings.default_region)
        if e164 is not None:
            query = query.where(CallLog.caller_e164 == e164)
        else:
            query = query.where(CallLog.caller_number == number.strip())
    if since is not None:  # aware, in UTC (IsoDateTime)
        query = query.where(CallLog.arrived_at >= since)
    if outcome is not None:
        query = query.where(CallLog.outcome == str(outcome))
    query = query.order_by(CallLog.arrived_at.desc().nulls_last(), CallLog.id.desc()).limit(limit)
    rows = session.scalars(query).all()
    items = [CallOut.model_validate(row) for row in rows]
    return CallList(items=items, count=len(items))


# -- the agent's part of a call ----------------------------------------------------------


class WrapUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: Annotated[str, Field(max_length=4000)] = ""
    disposition: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Annotated[int, Field(ge=1, le=_INT32_MAX)]


def _call_for(session: Session, call_id: str, principal: Principal) -> CallLog:
    """The call by Linkedid (what the pop carries) or row id; agents only their own."""
    query = select(CallLog).where(CallLog.linkedid == call_id)
    if call_id.isdigit() and len(call_id) < 10:
        query = select(CallLog).where(or_(CallLog.linkedid == call_id, CallLog.id == int(call_id)))
    call = session.scalars(query.limit(1)).first()
    if call is None:
        raise NoSuchCall()
    if not principal.has(Role.SUPERVISOR) and call.agent != principal.agent_id:
        raise Forbidden("only the agent who took the call may do that")
    return call


@router.post(
    "/{call_id}/wrapup",
    response_model=CallOut,
    name="wrapup",
    responses=responses(Forbidden, NoSuchCall, *BODY_ERRORS),
)
def wrap_up(
    call_id: Annotated[str, Path(max_length=150)],
    body: WrapUpIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
) -> CallOut:
    """Store the agent's notes and disposition on the call log (the tracker never
    overwrites them)."""
    call = _call_for(session, call_id, principal)
    call.notes = body.notes
    call.disposition = body.disposition
    call.wrapped_up_at = datetime.now(UTC)
    session.commit()
    return CallOut.model_validate(call)


@router.post(
    "/{call_id}/customer",
    name="link-customer",
    responses=responses(Forbidden, CustomerNotAllowed, NoSuchCall, NoSuchCustomer, *BODY_ERRORS),
)
def link_customer(
    request: Request,
    call_id: Annotated[str, Path(max_length=150)],
    body: LinkIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
) -> dict[str, object]:
    """Switch (or set) the customer a call is linked to. Audited; the tracker's later
    writes keep an agent's choice. On a live call an agent may link any customer; after
    it, only one they may open (docs/access.md)."""
    call = _call_for(session, call_id, principal)
    if session.get(Customer, body.customer_id) is None:
        raise NoSuchCustomer()
    live = call.outcome == str(Outcome.IN_PROGRESS) and call.ended_at is None
    grants = grants_of(request)
    if not live and reason_to_open(session, principal, body.customer_id, grants) is None:
        raise CustomerNotAllowed(
            "the call has ended: link a customer of your own calls or searches",
            details={"customer_id": body.customer_id},
        )
    session.add(
        CustomerLink(
            call_id=call.id,
            from_customer_id=call.customer_id,
            to_customer_id=body.customer_id,
            agent_id=principal.agent_id,
        )
    )
    log.info(
        "call %s customer link %s → %s by agent %s",
        call.linkedid,
        call.customer_id,
        body.customer_id,
        principal.agent_id,
    )
    call.customer_id = body.customer_id
    call.customer_link_source = "agent"
    session.commit()
    return {
        "call": CallOut.model_validate(call).model_dump(mode="json"),
        "customer_id": body.customer_id,
    }
