"""``GET /api/routing/explain``: why a caller would land in a queue.

Supervisors use it to answer "why did this Shantou caller reach the Min Nan queue?" and to
check a new region table before it goes live; agents may use it too, since the answer is what
their screen-pop already shows. The body comes from :func:`hotline.routing.explain.explain`,
the same function behind ``hotline route explain``, with the customer facts looked up in the
national record by the caller's number.

Everything comes from the settings the live routing uses (``HOTLINE_QUEUES``,
``HOTLINE_DEFAULT_QUEUE``, ``HOTLINE_DEFAULT_REGION``), so the explanation is the decision a
call from that number would get now.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from hotline.api.auth import Role, require
from hotline.api.deps import SessionDep
from hotline.customers.lookup import lookup_customer
from hotline.routing.decision import caller_e164
from hotline.routing.explain import explain
from hotline.settings import Settings

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
    settings: Settings = request.app.state.settings
    e164 = caller_e164(caller, settings.default_region)
    customer, note = lookup_customer(session, e164)
    return explain(
        caller,
        e164,
        digits,
        customer=customer,
        customer_note=note,
        queues=settings.queue_names,
        default_queue=settings.default_queue,
    )
