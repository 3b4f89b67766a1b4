"""Which customers an agent token may open: the rule of docs/access.md (no routes here).

Supervisors and admins open any customer. An agent opens a customer when

1. the customer is linked to one of the agent's calls (``call_log.agent`` is them): the
   caller the IVR identified, or the one they linked from the pop or a search — their
   call history stays readable;
2. the customer owns the number of a call the agent is on now (the pop's candidates
   when a family or a shop shares the number);
3. this process gave them the customer in the last ``HOTLINE_CUSTOMER_GRANT_TTL``
   seconds: a result of their search, or a customer they created (:class:`Grants`).

An agent may also link their *live* call to any existing customer (the caller may be
someone the search found on another API process); every link is written to
``customer_links`` with the agent's id, and the customer is then theirs by rule 1. A
refusal is a 403 ``customer-not-allowed``, after the 404 of a customer that does not
exist.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from hotline.api.auth import Principal, Role
from hotline.api.errors import CustomerNotAllowed
from hotline.calls.records import Outcome
from hotline.db.models import CallLog, CustomerPhone
from hotline.settings import Settings

__all__ = ["Grants", "check_customer", "grants_of", "live_call_of", "reason_to_open"]

log = logging.getLogger(__name__)


class Grants:
    """(agent, customer) pairs this process gave an agent, each for ``ttl`` seconds; at
    most ``size`` pairs, the oldest given first out. Sync routes use it from worker
    threads, hence the lock."""

    def __init__(
        self, *, ttl: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._given: OrderedDict[tuple[str, int], float] = OrderedDict()
        self._lock = threading.Lock()

    def give(self, agent_id: str, customer_ids: Iterable[int]) -> None:
        if self.ttl <= 0:
            return
        until = self._clock() + self.ttl
        with self._lock:
            for customer_id in customer_ids:
                key = (agent_id, customer_id)
                self._given.pop(key, None)
                self._given[key] = until
            while len(self._given) > self.size:
                self._given.popitem(last=False)

    def has(self, agent_id: str, customer_id: int) -> bool:
        with self._lock:
            until = self._given.get((agent_id, customer_id))
        return until is not None and self._clock() < until

    def __len__(self) -> int:
        return len(self._given)


def grants_of(conn: HTTPConnection) -> Grants:
    """The app's :class:`Grants`, made on first use from its settings."""
    state = conn.app.state
    grants: Grants | None = getattr(state, "customer_grants", None)
    if grants is None:
        settings: Settings = state.settings
        grants = state.customer_grants = Grants(
            ttl=settings.customer_grant_ttl, size=settings.customer_grant_size
        )
    return grants


def live_call_of(session: Session, agent_id: str) -> CallLog | None:
    """The agent's call in progress (answered, not ended), if any."""
    query = (
        select(CallLog)
        .where(
            CallLog.agent == agent_id,
            CallLog.outcome == str(Outcome.IN_PROGRESS),
            CallLog.ended_at.is_(None),
        )
        .order_by(CallLog.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def reason_to_open(
    session: Session, principal: Principal, customer_id: int, grants: Grants
) -> str | None:
    """Why ``principal`` may open the customer (``role``, ``own-call``, ``live-caller``,
    ``given``), or None."""
    if principal.has(Role.SUPERVISOR):
        return "role"
    agent_id = principal.agent_id
    if not agent_id:
        return None
    if grants.has(agent_id, customer_id):
        return "given"
    own = select(CallLog.id).where(CallLog.agent == agent_id, CallLog.customer_id == customer_id)
    if session.scalar(own.limit(1)) is not None:
        return "own-call"
    live = live_call_of(session, agent_id)
    if live is not None and live.caller_e164:
        owner = select(CustomerPhone.id).where(
            CustomerPhone.customer_id == customer_id, CustomerPhone.e164 == live.caller_e164
        )
        if session.scalar(owner.limit(1)) is not None:
            return "live-caller"
    return None


def check_customer(
    session: Session, principal: Principal, customer_id: int, grants: Grants
) -> None:
    """Raise :class:`CustomerNotAllowed` unless ``principal`` may open the customer."""
    if reason_to_open(session, principal, customer_id, grants) is None:
        log.info("agent %s refused customer %s", principal.agent_id, customer_id)
        raise CustomerNotAllowed(details={"customer_id": customer_id})
