"""``GET /api/calls``: the call log, newest first.

Agents see only the calls they answered (their token's ``agent_id``); supervisors and
admins see every call. The filter is applied in SQL, not after the fact, so ``limit``
means the same for everyone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import false, select

from hotline.api import SessionDep
from hotline.auth import Principal, Role, require
from hotline.calls.records import Outcome
from hotline.db.models import CallLog
from hotline.phones import to_e164

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


class CallList(BaseModel):
    items: list[CallOut]
    count: int  # len(items); there is no total, which would cost a second query


@router.get("", response_model=CallList, name="list")
def list_calls(
    request: Request,
    session: SessionDep,
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
        datetime | None,
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
        e164 = to_e164(number, request.app.state.settings.default_region)
        if e164 is not None:
            query = query.where(CallLog.caller_e164 == e164)
        else:
            query = query.where(CallLog.caller_number == number.strip())
    if since is not None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        query = query.where(CallLog.arrived_at >= since)
    if outcome is not None:
        query = query.where(CallLog.outcome == str(outcome))
    query = query.order_by(CallLog.arrived_at.desc().nulls_last(), CallLog.id.desc()).limit(limit)
    rows = session.scalars(query).all()
    items = [CallOut.model_validate(row) for row in rows]
    return CallList(items=items, count=len(items))
