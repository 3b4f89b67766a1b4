"""Wire the flows to FastAGI routes: ``/identify``, ``/dialect``, ``/survey``.

The customer look-up and the survey store live elsewhere (``hotline.ivr`` injects the real
ones), so they come in as callables typed by the Protocols below; routing is
:func:`hotline.routing.decision.decide` unless another ``route`` is injected. The defaults
here are deliberately simple (nobody is known, the scores stay in memory) so the server
runs and is testable without a database.

Each AGI call reads its caller once, when it starts: the number is normalised to E.164
with the configured region (``build_routes(region=...)``, from ``HOTLINE_DEFAULT_REGION``,
the same region the call log uses) and travels as a typed :class:`Caller` to identify and
route. What identify finds reaches route as a typed :class:`Identified` in the call's
:class:`CallState`; the flow's text variables only fill templates and channel variables.

Dialplan, with ``Set(AGISIGHUP=no)`` first (a hang-up then answers 511 instead of an
inline ``HANGUP``)::

    same => n,AGI(agi://127.0.0.1:4573/identify)
    same => n,GotoIf($["${DIALECT_SOURCE}" = "customer"]?queue)
    same => n,AGI(agi://127.0.0.1:4573/dialect)
    ...after Queue(), when the agent hung up first:
    same => n,AGI(agi://127.0.0.1:4573/survey,${CHANNEL(linkedid)})

If the server is down ``AGI()`` sets ``AGISTATUS=FAILURE`` and the dialplan goes on,
so the dialplan must have defaults for ``DIALECT`` and ``QUEUE_PRIO``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hotline.routing.decision import CustomerFacts, RouteDecision, caller_e164, decide
from hotline.types import E164
from ivr_flows.agi import AGIError, AGISession, CallerGone
from ivr_flows.flows import (
    AGI_ERROR,
    CALLER_GONE,
    ActionResult,
    Flow,
    FlowAction,
    FlowContext,
    FlowOutcome,
    load_flows,
    run_flow,
)
from ivr_flows.server import AGIServer

__all__ = [
    "NOBODY",
    "AgentInterface",
    "CallState",
    "Caller",
    "Identified",
    "Identify",
    "MemorySurveyStore",
    "RecordSurvey",
    "Route",
    "RouteRequest",
    "StaticIdentify",
    "build_routes",
    "build_server",
    "default_route",
    "identify_nobody",
    "interface_by_convention",
    "make_identify_action",
    "make_record_survey_action",
    "make_route_action",
]

log = logging.getLogger(__name__)


# -- the typed values a call carries ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """The caller as the AGI call presents them, read once when the call starts.

    ``uniqueid`` is the channel's; on the inbound channel that runs identify it is also
    the call's Linkedid. ``number`` and ``name`` are as Asterisk gave them (``""`` when
    withheld); ``e164`` is ``number`` normalised with the configured region, ``None``
    when withheld or not a phone number.
    """

    uniqueid: str
    number: str = ""
    e164: E164 | None = None
    name: str = ""

    @classmethod
    def of(cls, session: AGISession, region: str) -> Caller:
        number = session.caller_number or ""
        return cls(
            uniqueid=session.uniqueid,
            number=number,
            e164=caller_e164(number, region),
            name=session.caller_name or "",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Identified:
    """What the look-up found for a caller.

    ``candidates`` are customer ids, best first. ``confident`` means the look-up vouches
    for its single candidate; only then is the call linked (:attr:`linked`) and the
    customer's facts used for routing. ``customer_id`` defaults to the only candidate.
    """

    candidates: tuple[int, ...] = ()
    confident: bool = False
    customer_id: int | None = None
    preferred_dialect: str | None = None
    tier: str | None = None
    account_manager: str | None = None  # an agent id

    @property
    def linked(self) -> int | None:
        """The customer this call is about: a confident result with exactly one candidate."""
        if not self.confident or len(self.candidates) != 1:
            return None
        return self.customer_id if self.customer_id is not None else self.candidates[0]

    @property
    def customer(self) -> CustomerFacts | None:
        """The routing facts of the linked customer, or ``None``."""
        linked = self.linked
        if linked is None:
            return None
        return CustomerFacts(
            customer_id=linked,
            preferred_dialect=self.preferred_dialect,
            tier=self.tier,
            account_manager=self.account_manager,
        )


NOBODY = Identified()


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRequest:
    """What routing gets: the caller, the identification and the dialect menu's choice.

    ``identified`` is ``None`` when this AGI call did not identify the caller (the dialect
    menu is an AGI call of its own); ``ivr_dialect`` is ``None`` when no choice was made.
    """

    caller: Caller
    identified: Identified | None = None
    ivr_dialect: str | None = None

    @property
    def customer(self) -> CustomerFacts | None:
        return self.identified.customer if self.identified is not None else None


@dataclass(slots=True)
class CallState:
    """One AGI call's typed values, made when the call starts and dropped when it ends.

    The caller is read once; identify leaves its result here for route, in the same call,
    instead of writing it into the flow's text variables and parsing it back.
    """

    caller: Caller
    identified: Identified | None = None


# -- what is injected ---------------------------------------------------------------------------


class Identify(Protocol):
    """Look the caller up in the national record (only called with a usable ``e164``).

    A raising look-up costs the identification, never the call (the flow's ``on_error``).
    """

    async def __call__(self, caller: Caller) -> Identified: ...


class Route(Protocol):
    """The routing decision; async so that one needing I/O fits."""

    async def __call__(self, request: RouteRequest) -> RouteDecision: ...


class AgentInterface(Protocol):
    """The phone interface to ring for an agent id (the account manager's, before queueing)."""

    async def __call__(self, agent_id: str) -> str: ...


class RecordSurvey(Protocol):
    async def __call__(self, linkedid: str, score: int) -> None: ...


# -- defaults -------------------------------------------------------------------------------


async def identify_nobody(caller: Caller) -> Identified:
    """Default look-up: nobody is known."""
    return NOBODY


@dataclass
class StaticIdentify:
    """A look-up from a fixed table ``{E.164: Identified}``; for tests and the demo.

    ``calls`` records each look-up as ``(e164, name)``.
    """

    table: Mapping[str, Identified] = field(default_factory=dict)
    calls: list[tuple[str | None, str | None]] = field(default_factory=list)

    async def __call__(self, caller: Caller) -> Identified:
        self.calls.append((caller.e164, caller.name or None))
        return self.table.get(caller.e164 or "", NOBODY)


async def default_route(request: RouteRequest) -> RouteDecision:
    """:func:`hotline.routing.decision.decide` with the default queues."""
    return decide(request.caller.e164, customer=request.customer, ivr_choice=request.ivr_dialect)


async def interface_by_convention(agent_id: str) -> str:
    """``1001`` → ``PJSIP/agent-1001`` (the lab's and the demo's naming)."""
    return f"PJSIP/agent-{agent_id}"


@dataclass
class MemorySurveyStore:
    """Default ``record_survey``: keeps scores in memory (tests, demo)."""

    scores: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, linkedid: str, score: int) -> None:
        self.scores.append((linkedid, score))


# -- actions (flow steps calling the injected pieces) ----------------------------------------


def make_identify_action(identify: Identify, call: CallState) -> FlowAction:
    """The ``identify`` step: look the caller up, keep the result for route, tell the flow."""

    async def action(variables: Mapping[str, str]) -> ActionResult:
        caller = call.caller
        found = await identify(caller) if caller.e164 is not None else NOBODY
        call.identified = found
        count = len(found.candidates)
        linked = found.linked
        out_vars = {
            "CALLER_E164": caller.e164 or "",
            "CANDIDATES": str(count),
            "CUSTOMER_ID": str(linked) if linked is not None else "",
            "PREFERRED_DIALECT": (found.preferred_dialect or "") if linked is not None else "",
            "TIER": (found.tier or "") if linked is not None else "",
        }
        channel = {"__CUSTOMER_CANDIDATES": str(count)}
        if linked is not None:
            channel = {"__CUSTOMER_ID": str(linked), **channel}
        branch = "matched" if linked is not None else ("candidates" if count else "unknown")
        return ActionResult(channel=channel, vars=out_vars, branch=branch)

    return action


def make_route_action(route: Route, call: CallState, interface_of: AgentInterface) -> FlowAction:
    """The ``route`` step: decide, then set the variables the dialplan queues with.

    With an account manager to ring first, ``AM_AGENT``, ``AM_INTERFACE`` and
    ``AM_SECONDS`` are set before the rest (the dialplan dials ``AM_INTERFACE`` when it is
    not empty).
    """

    async def action(variables: Mapping[str, str]) -> ActionResult:
        request = RouteRequest(
            caller=call.caller,
            identified=call.identified,
            ivr_dialect=variables.get("IVR_DIALECT") or None,
        )
        decision = await route(request)
        source, priority = str(decision.source), str(int(decision.priority))
        channel: dict[str, str] = {}
        ring = decision.account_manager
        if ring is not None:
            channel["AM_AGENT"] = ring.agent_id
            channel["AM_INTERFACE"] = await interface_of(ring.agent_id)
            channel["AM_SECONDS"] = str(int(ring.seconds))
        channel |= {"__DIALECT": decision.dialect, "DIALECT_SOURCE": source, "QUEUE_PRIO": priority}
        if decision.queue:
            channel["ROUTE_QUEUE"] = decision.queue
        out_vars = {
            "DIALECT": decision.dialect,
            "DIALECT_SOURCE": source,
            "QUEUE_PRIO": priority,
            "ROUTE_QUEUE": decision.queue or "",
            "ROUTE_REASONS": "; ".join(decision.reasons),
        }
        return ActionResult(channel=channel, vars=out_vars, branch=source)

    return action


def make_record_survey_action(record_survey: RecordSurvey) -> FlowAction:
    async def action(variables: Mapping[str, str]) -> ActionResult:
        linkedid = variables.get("LINKEDID", "")
        score = int(variables.get("SCORE", ""))
        if not linkedid:
            raise ValueError("survey without a linkedid")
        await record_survey(linkedid, score)
        return ActionResult()

    return action


# -- routes --------------------------------------------------------------------------------


def _ending(outcome: FlowOutcome, session: AGISession) -> None:
    """Log the outcome by ids only, and hand hang-ups/AGI faults to the server's counters."""
    log.info(
        "flow %s on %s: %s via %s",
        outcome.flow,
        session.uniqueid,
        outcome.result,
        ">".join(outcome.path),
    )
    if outcome.result == CALLER_GONE:
        raise CallerGone(outcome.error or "caller gone")
    if outcome.result == AGI_ERROR:
        raise AGIError(outcome.error or "AGI error")


def build_routes(
    *,
    region: str,
    identify: Identify = identify_nobody,
    route: Route = default_route,
    interface_of: AgentInterface = interface_by_convention,
    record_survey: RecordSurvey | None = None,
    flows: Mapping[str, Flow] | None = None,
    on_outcome: Callable[[FlowOutcome], None] | None = None,
) -> dict[str, Callable[[AGISession], Awaitable[FlowOutcome]]]:
    """The route table: path → coroutine running one flow on the session.

    ``region`` reads caller numbers without a country code (settings ``default_region``).
    """
    flows = flows if flows is not None else load_flows()
    survey = make_record_survey_action(
        record_survey if record_survey is not None else MemorySurveyStore()
    )

    def flow_route(
        flow_name: str, linkedid_from_args: bool = False
    ) -> Callable[[AGISession], Awaitable[FlowOutcome]]:
        flow = flows[flow_name]

        async def handle(session: AGISession) -> FlowOutcome:
            call = CallState(Caller.of(session, region))
            actions = {
                "identify": make_identify_action(identify, call),
                "route": make_route_action(route, call, interface_of),
                "record_survey": survey,
            }
            extra: dict[str, str] = {}
            if linkedid_from_args:
                linkedid = session.args[0] if session.args and session.args[0] else None
                if linkedid is None:
                    linkedid = await session.get_variable("CHANNEL(linkedid)")
                extra["LINKEDID"] = linkedid or ""
            outcome = await run_flow(flow, session, FlowContext(vars=extra, actions=actions))
            if on_outcome is not None:
                on_outcome(outcome)
            _ending(outcome, session)
            return outcome

        return handle

    return {
        "identify": flow_route("welcome"),
        "dialect": flow_route("dialect_menu"),
        "survey": flow_route("survey", linkedid_from_args=True),
    }


def build_server(
    *,
    region: str,
    host: str = "127.0.0.1",
    port: int = 4573,
    identify: Identify = identify_nobody,
    route: Route = default_route,
    interface_of: AgentInterface = interface_by_convention,
    record_survey: RecordSurvey | None = None,
    flows: Mapping[str, Flow] | None = None,
    on_outcome: Callable[[FlowOutcome], None] | None = None,
    **server_options: Any,
) -> AGIServer:
    """An :class:`AGIServer` serving the three routes; call ``await server.start()``."""
    routes = build_routes(
        region=region,
        identify=identify,
        route=route,
        interface_of=interface_of,
        record_survey=record_survey,
        flows=flows,
        on_outcome=on_outcome,
    )
    return AGIServer(routes, host=host, port=port, **server_options)
