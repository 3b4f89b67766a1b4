"""The FastAGI side of the service: identify, route, pre-dial pop, survey.

``ivr_flows`` runs the declarative flows and knows nothing of our database; this module
injects the real pieces:

- *identify*: the caller (number already in E.164, read with the configured region when
  the AGI call started) → the customers holding the number
  (:func:`hotline.customers.lookup.owners_of`); only a sole owner is linked, a family's
  or a shop's number gives candidates and no link
  (:func:`hotline.customers.lookup.sole_owner`). The screen-pop is prepared right here,
  at arrival, long before an agent rings;
- *route*: :func:`hotline.routing.decision.decide` with the configured queues, on the
  identification the flow hands over; the decision is noted on the prepared pop;
- *prering*: the queue's pre-dial Gosub on the member channel pushes the pop to that
  agent and holds the INVITE until the page acknowledges it (bounded);
- *survey*: the score goes out as a ``SurveyResult`` UserEvent from the flow, so the
  call tracker (and not this process) records it with the rest of the call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hotline.customers.lookup import owners_of, sole_owner
from hotline.customers.view import CustomerNotFound, view_customer
from hotline.db.models import Agent, Customer
from hotline.routing.decision import RouteDecision, decide
from ivr_flows.agi import AGISession
from ivr_flows.app import Caller, Identified, RouteRequest, build_routes
from ivr_flows.server import AGIServer
from screenpop.push import CallContext, CustomerLoader, PopPublisher

__all__ = ["IVR", "customer_loader", "member_interface"]

log = logging.getLogger(__name__)

# PJSIP/agent-1001-0000002a → the member interface PJSIP/agent-1001
_MEMBER_CHANNEL = re.compile(r"^(?P<interface>[A-Za-z]+/[^-/]+(?:-[^-/]+)*?)-[0-9a-f]{8}$")


def member_interface(channel: str) -> str | None:
    match = _MEMBER_CHANNEL.match(channel or "")
    return match.group("interface") if match else None


class IVR:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: PopPublisher,
        *,
        region: str,
        queues: Sequence[str],
        default_queue: str = "mandarin",
        agent_of_interface: Callable[[str], str | None] | None = None,
    ) -> None:
        """``region`` reads caller numbers without a country code (``default_region``)."""
        self.sessions = sessions
        self.publisher = publisher
        self.region = region
        self.queues = tuple(queues)
        self.default_queue = default_queue
        self.agent_of_interface = agent_of_interface or _agent_from_convention

    # -- identify --------------------------------------------------------------------
    def _owners(self, e164: str) -> list[Customer]:
        with self.sessions() as session:
            return owners_of(session, e164)

    async def identify(self, caller: Caller) -> Identified:
        """The number's owners; the pop is prepared with the sole owner or the candidates."""
        holders = await run_in_threadpool(self._owners, caller.e164) if caller.e164 else []
        single = sole_owner(holders)
        await self.publisher.prepare(
            CallContext(
                linkedid=caller.uniqueid,  # identify runs on the inbound channel
                caller_number=caller.number,
                caller_e164=caller.e164,
                caller_name=caller.name,
                customer_id=single.id if single else None,
                candidates=[]
                if single
                else [
                    {"id": c.id, "name": c.name, "tier": c.tier, "matched": "phone"}
                    for c in holders
                ],
                dialect=single.preferred_dialect if single else None,
                ivr_path=["welcome"],
            )
        )
        if single is None:
            return Identified(candidates=tuple(c.id for c in holders))
        return Identified(
            candidates=(single.id,),
            confident=True,
            customer_id=single.id,
            preferred_dialect=single.preferred_dialect,
            tier=single.tier,
            account_manager=single.account_manager,
        )

    # -- route -----------------------------------------------------------------------
    async def route(self, request: RouteRequest) -> RouteDecision:
        decision = decide(
            request.caller.e164,
            customer=request.customer,
            ivr_choice=request.ivr_dialect,
            queues=self.queues,
            default_queue=self.default_queue,
        )
        self.publisher.routed(
            request.caller.uniqueid,
            dialect=decision.dialect,
            queue=decision.queue,
            chosen_at_menu=bool(request.ivr_dialect),
        )
        return decision

    async def interface_of(self, agent_id: str) -> str:
        """The agent's phone interface from the directory, else the lab's naming."""
        return await run_in_threadpool(self._interface_of, agent_id)

    def _interface_of(self, agent_id: str) -> str:
        with self.sessions() as session:
            agent = session.get(Agent, agent_id)
        return agent.interface if agent is not None else f"PJSIP/agent-{agent_id}"

    # -- pre-dial ---------------------------------------------------------------------
    async def prering(self, agi: AGISession) -> bool:
        """On the member channel: pop on the agent's page, then let the phone ring."""
        linkedid = agi.args[0] if agi.args and agi.args[0] else None
        if linkedid is None:
            linkedid = await agi.get_variable("CHANNEL(linkedid)")
        interface = member_interface(agi.channel or "")
        agent = self.agent_of_interface(interface) if interface else None
        if not linkedid or not agent:
            log.warning("prering without linkedid or agent (channel %s)", agi.channel)
            return False
        queue = agi.args[1] if len(agi.args) > 1 and agi.args[1] else None
        return await self.publisher.pop_and_wait(linkedid, agent, queue)

    # -- server ------------------------------------------------------------------------
    def routes(self) -> dict[str, Callable[[AGISession], Awaitable[object]]]:
        routes: dict[str, Callable[[AGISession], Awaitable[object]]] = {
            **build_routes(
                region=self.region,
                identify=self.identify,
                route=self.route,
                interface_of=self.interface_of,
                record_survey=_recorded_by_the_tracker,
            )
        }
        routes["prering"] = self.prering
        return routes

    def server(self, host: str, port: int, **options: Any) -> AGIServer:
        return AGIServer(self.routes(), host=host, port=port, **options)


async def _recorded_by_the_tracker(linkedid: str, score: int) -> None:
    """The survey flow's ``SurveyResult`` UserEvent reaches the call tracker, which stores
    the score with the call; nothing is kept here."""


def _agent_from_convention(interface: str) -> str | None:
    """``PJSIP/agent-1001`` → ``1001`` (the lab's and the demo's naming)."""
    _, _, endpoint = interface.partition("/")
    return endpoint.removeprefix("agent-") if endpoint.startswith("agent-") else None


def customer_loader(sessions: sessionmaker[Session]) -> CustomerLoader:
    """The pop's customer block: :func:`hotline.customers.view.view_customer` as JSON, the
    body of ``GET /api/customers/{id}``; ``None`` for a customer deleted meanwhile."""

    def load(customer_id: int) -> dict[str, Any] | None:
        with sessions() as session:
            try:
                return view_customer(session, customer_id).model_dump(mode="json")
            except CustomerNotFound:
                return None

    async def load_async(customer_id: int) -> dict[str, Any] | None:
        return await run_in_threadpool(load, customer_id)

    return load_async
