"""``GET /api/routing/explain``: why a caller would land in a queue.

Supervisors use it to answer "why did this Shantou caller reach the Min Nan queue?" and to
check a new region table before it goes live; agents may use it too, since the answer is what
their screen-pop already shows. The body comes from :func:`hotline.routing.explain.explain`,
the same function behind ``hotline route explain``, with the customer facts looked up in the
national record by the caller's number.

The dialect queues are ``app.state.routing_queues`` when the app factory sets it, else the
product default (one queue per default dialect).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from hotline.api.auth import Role, require
from hotline.api.deps import SessionDep
from hotline.routing.decision import DEFAULT_QUEUES
from hotline.routing.explain import explain, lookup_customer

__all__ = ["RouteExplanation", "router"]

router = APIRouter(prefix="/api/routing", tags=["routing"])


class AccountManagerOut(BaseModel):
    agent_id: str
    seconds: int


class RouteExplanation(BaseModel):
    """A routing decision and everything that went into it."""

    queue: str
    dialect: str
    priority: int
    source: str
    reasons: list[str]
    account_manager: AccountManagerOut | None
    caller: str
    caller_e164: str | None
    digits: str | None
    region: str | None
    location: dict[str, Any]
    customer: dict[str, Any] | None
    queues: list[str]
    menu: dict[str, str]


@router.get(
    "/explain",
    response_model=RouteExplanation,
    name="explain",
    dependencies=[Depends(require(Role.AGENT))],
)
def explain_route(
    request: Request,
    session: SessionDep,
    caller: Annotated[
        str, Query(min_length=1, max_length=64, description="Caller number in any form.")
    ],
    digits: Annotated[
        str | None,
        Query(max_length=16, description="Digits pressed at the IVR dialect menu, if any."),
    ] = None,
) -> dict[str, Any]:
    """Explain the queue, dialect, priority and reasons for a caller (and IVR digits)."""
    region = request.app.state.settings.default_region
    customer, note = lookup_customer(session, caller, region)
    queues = getattr(request.app.state, "routing_queues", None) or DEFAULT_QUEUES
    return explain(
        caller, digits, customer=customer, customer_note=note, queues=queues, default_region=region
    )
