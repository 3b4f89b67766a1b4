"""The FastAGI side of the service: identify, route, pre-dial pop, survey.

``ivr_flows`` runs the declarative flows and knows nothing of our database or of
routing; this module injects the real pieces:

- *identify*: the caller's E.164 number → the customers holding it (one number may be a
  family's: then every holder is a candidate and none is linked), and the screen-pop
  payload is prepared right here, at arrival, long before an agent rings;
- *route*: :func:`hotline.routing.decision.decide`;
- *prering*: the queue's pre-dial Gosub on the member channel pushes the pop to that
  agent and holds the INVITE until the page acknowledges it (bounded);
- *survey*: the score goes out as a ``SurveyResult`` UserEvent from the flow, so the
  call tracker (and not this process) records it with the rest of the call.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hotline.db.models import Customer, CustomerPhone
from hotline.routing.decision import CustomerFacts, decide
from ivr_flows.agi import AGISession
from ivr_flows.app import RouteDecision, RouteRequest, build_routes
from ivr_flows.server import AGIServer
from screenpop.push import CallContext, PopPublisher

log = logging.getLogger(__name__)

_session: contextvars.ContextVar[AGISession | None] = contextvars.ContextVar(
    "agi_session", default=None
)
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
        queues: Sequence[str],
        default_queue: str = "mandarin",
        default_region: str = "CN",
        agent_of_interface: Callable[[str], str | None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.queues = tuple(queues)
        self.default_queue = default_queue
        self.default_region = default_region
        self.agent_of_interface = agent_of_interface or _agent_from_convention
        self._account_manager: dict[str, str] = {}  # linkedid → agent id, from identify

    # -- identify --------------------------------------------------------------------
    def _holders(self, e164: str) -> list[Customer]:
        with self.sessions() as session:
            query = (
                select(Customer)
                .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                .where(CustomerPhone.e164 == e164)
                .order_by(Customer.id)
                .limit(20)
            )
            return list(session.scalars(query).unique())

    async def identify(self, caller_number: str | None, caller_name: str | None) -> dict[str, Any]:
        holders = await run_in_threadpool(self._holders, caller_number) if caller_number else []
        agi = _session.get()
        if agi is not None:
            single = holders[0] if len(holders) == 1 else None
            if single is not None and single.account_manager:
                self._account_manager[agi.uniqueid] = single.account_manager
                while len(self._account_manager) > 10_000:
                    self._account_manager.pop(next(iter(self._account_manager)))
            await self.publisher.prepare(
                CallContext(
                    linkedid=agi.uniqueid,
                    caller_number=agi.caller_number or "",
                    caller_e164=caller_number,
                    caller_name=caller_name or "",
                    customer_id=single.id if single else None,
                    candidates=[
                        {"id": c.id, "name": c.name, "tier": c.tier, "matched": "phone"}
                        for c in holders
                    ]
                    if len(holders) != 1
                    else [],
                    dialect=single.preferred_dialect if single else None,
                    ivr_path=["welcome"],
                )
            )
        found: dict[str, Any] = {
            "candidates": [c.id for c in holders],
            "confident": len(holders) == 1,
        }
        if len(holders) == 1:
            found.update(
                customer_id=holders[0].id,
                preferred_dialect=holders[0].preferred_dialect,
                tier=holders[0].tier,
                account_manager=holders[0].account_manager,
            )
        return found

    # -- route -----------------------------------------------------------------------
    async def route(self, request: RouteRequest) -> RouteDecision:
        agi = _session.get()
        customer = None
        if request.customer_id:
            customer = CustomerFacts(
                customer_id=int(request.customer_id),
                preferred_dialect=request.preferred_dialect,
                tier=request.tier,
                account_manager=self._account_manager.pop(agi.uniqueid, None) if agi else None,
            )
        decision = decide(
            request.caller_number or "",
            customer=customer,
            ivr_choice=request.ivr_dialect,
            queues=self.queues,
            default_queue=self.default_queue,
            default_region=self.default_region,
        )
        if agi is not None and decision.account_manager is not None:
            # The dialplan rings the account manager before queueing (see extensions.conf).
            manager = decision.account_manager
            interface = await run_in_threadpool(self._interface_of, manager.agent_id)
            await agi.set_variable("AM_AGENT", manager.agent_id)
            await agi.set_variable("AM_INTERFACE", interface)
            await agi.set_variable("AM_SECONDS", str(int(manager.seconds)))
        if agi is not None:
            context = self.publisher.context(agi.uniqueid)
            context.dialect, context.queue = decision.dialect, decision.queue
            if request.ivr_dialect:
                context.ivr_path.append(f"dialect:{decision.dialect}")
        return RouteDecision(
            dialect=decision.dialect,
            priority=decision.priority,
            queue=decision.queue,
            source=str(decision.source),
            reasons=tuple(decision.reasons),
        )

    def _interface_of(self, agent_id: str) -> str:
        from hotline.db.models import Agent

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
    def routes(self) -> dict[str, Callable[[AGISession], Awaitable[Any]]]:
        routes = build_routes(identify=self.identify, route=self.route)

        def with_session(
            handler: Callable[[AGISession], Awaitable[Any]],
        ) -> Callable[[AGISession], Awaitable[Any]]:
            async def run(agi: AGISession) -> Any:
                token = _session.set(agi)
                try:
                    return await handler(agi)
                finally:
                    _session.reset(token)

            return run

        out: dict[str, Callable[[AGISession], Awaitable[Any]]] = {
            name: with_session(handler) for name, handler in routes.items()
        }
        out["prering"] = self.prering
        return out

    def server(self, host: str, port: int, **options: Any) -> AGIServer:
        return AGIServer(self.routes(), host=host, port=port, **options)


def _agent_from_convention(interface: str) -> str | None:
    """``PJSIP/agent-1001`` → ``1001`` (the lab's and the demo's naming)."""
    _, _, endpoint = interface.partition("/")
    return endpoint.removeprefix("agent-") if endpoint.startswith("agent-") else None


def customer_loader(
    sessions: sessionmaker[Session],
) -> Callable[[int], Awaitable[Mapping[str, Any] | None]]:
    """The pop's customer block: the same shape as ``GET /api/customers/{id}``."""
    from hotline.api.routes.customers import NoSuchCustomer, _load, _out

    def load(customer_id: int) -> dict[str, Any] | None:
        with sessions() as session:
            try:
                customer = _load(session, customer_id)  # type: ignore[arg-type]
            except NoSuchCustomer:
                return None
            return _out(session, customer).model_dump(mode="json")  # type: ignore[arg-type]

    async def load_async(customer_id: int) -> Mapping[str, Any] | None:
        return await run_in_threadpool(load, customer_id)

    return load_async
