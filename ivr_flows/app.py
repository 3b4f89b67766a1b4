"""Wire the flows to FastAGI routes: ``/identify``, ``/dialect``, ``/survey``.

The customer matcher (``screenpop``) and the routing decision (``hotline.routing``) are
written elsewhere and change on their own schedule, so they come in as injected
callables typed by the Protocols below; the defaults here are deliberately simple
(nobody is known, Mandarin unless chosen, VIP tier → priority) so the server runs and
is testable without them. Adapting the real ones is a few lines at the call site.

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

from hotline.phones import to_e164
from ivr_flows.agi import AGIError, AGISession, CallerGone
from ivr_flows.flows import (
    AGI_ERROR,
    CALLER_GONE,
    ActionResult,
    Flow,
    FlowContext,
    FlowOutcome,
    load_flows,
    run_flow,
)
from ivr_flows.server import AGIServer

__all__ = [
    "DEFAULT_TIER_PRIORITY",
    "Identify",
    "MemorySurveyStore",
    "RecordSurvey",
    "Route",
    "RouteDecision",
    "RouteRequest",
    "StaticIdentify",
    "build_routes",
    "build_server",
    "default_route",
    "identify_nobody",
    "make_identify_action",
    "make_record_survey_action",
    "make_route_action",
]

log = logging.getLogger(__name__)

DEFAULT_TIER_PRIORITY: Mapping[str, int] = {"vip1": 10, "vip2": 20, "vip3": 30}
_KNOWN_DIALECTS = frozenset({"mandarin", "cantonese", "minnan", "wu", "sichuanese"})


class Identify(Protocol):
    """Look the caller up in the national record.

    Returns a dict (the matcher's own shape is still moving) read with these keys:
    ``candidates`` (list of customer ids, best first, or an int count), ``confident``
    (bool: the matcher vouches for its single best candidate), optional ``customer_id``
    (defaults to the only candidate), ``preferred_dialect`` and ``tier``. Missing keys
    mean "not known"; a raising matcher costs the identification, never the call.
    """

    async def __call__(
        self, caller_number: str | None, caller_name: str | None
    ) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RouteRequest:
    caller_number: str | None  # E.164 when it normalises, else None
    customer_id: str | None = None
    preferred_dialect: str | None = None
    tier: str | None = None
    ivr_dialect: str | None = None  # from the dialect menu; None = no choice


@dataclass(frozen=True, slots=True)
class RouteDecision:
    dialect: str
    priority: int = 0
    queue: str | None = None
    source: str = "default"  # customer | ivr | region | default
    reasons: tuple[str, ...] = ()


class Route(Protocol):
    """The routing decision (sans-I/O elsewhere); async here so a DB-backed one fits."""

    async def __call__(self, request: RouteRequest) -> RouteDecision: ...


class RecordSurvey(Protocol):
    async def __call__(self, linkedid: str, score: int) -> None: ...


# -- defaults -------------------------------------------------------------------------------


async def identify_nobody(caller_number: str | None, caller_name: str | None) -> dict[str, Any]:
    """Default matcher: nobody is known."""
    return {"candidates": [], "confident": False}


@dataclass
class StaticIdentify:
    """A matcher from a fixed table ``{E.164: result dict}``; for tests and the demo."""

    table: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str | None, str | None]] = field(default_factory=list)

    async def __call__(
        self, caller_number: str | None, caller_name: str | None
    ) -> Mapping[str, Any]:
        self.calls.append((caller_number, caller_name))
        return self.table.get(caller_number or "", {"candidates": [], "confident": False})


async def default_route(request: RouteRequest) -> RouteDecision:
    """Preferred dialect, else the IVR choice, else Mandarin; VIP tier → ``QUEUE_PRIO``.

    The real decision adds the region of the number and queue availability; this one
    only knows what the flows give it.
    """
    priority = DEFAULT_TIER_PRIORITY.get((request.tier or "").lower(), 0)
    reasons: list[str] = []
    if priority:
        reasons.append(f"tier {request.tier} gives priority {priority}")
    if request.preferred_dialect in _KNOWN_DIALECTS:
        dialect, source = request.preferred_dialect, "customer"
        reasons.insert(0, f"customer prefers {dialect}")
    elif request.ivr_dialect in _KNOWN_DIALECTS:
        dialect, source = request.ivr_dialect, "ivr"
        reasons.insert(0, f"caller chose {dialect}")
    else:
        dialect, source = "mandarin", "default"
        reasons.insert(0, "no preference or choice: mandarin")
    return RouteDecision(
        dialect=dialect, priority=priority, queue=dialect, source=source, reasons=tuple(reasons)
    )


@dataclass
class MemorySurveyStore:
    """Default ``record_survey``: keeps scores in memory (tests, demo)."""

    scores: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, linkedid: str, score: int) -> None:
        self.scores.append((linkedid, score))


# -- actions (flow steps calling the injected pieces) ----------------------------------------


def make_identify_action(
    identify: Identify,
) -> Callable[[Mapping[str, str]], Awaitable[ActionResult]]:
    async def action(variables: Mapping[str, str]) -> ActionResult:
        number = to_e164(variables.get("CALLER_NUMBER") or None, "CN")
        if number is None:
            found: Mapping[str, Any] = {"candidates": [], "confident": False}
        else:
            found = await identify(number, variables.get("CALLER_NAME") or None)
        raw = found.get("candidates", [])
        candidates = [str(c) for c in raw] if isinstance(raw, list | tuple) else []
        count = int(raw) if isinstance(raw, int) and not isinstance(raw, bool) else len(candidates)
        customer_id = found.get("customer_id") or (
            candidates[0] if count == 1 and candidates else None
        )
        single = count == 1 and found.get("confident") is True and bool(customer_id)
        out_vars = {
            "CALLER_E164": number or "",
            "CANDIDATES": str(count),
            "CUSTOMER_ID": str(customer_id) if single else "",
            "PREFERRED_DIALECT": str(found.get("preferred_dialect") or "") if single else "",
            "TIER": str(found.get("tier") or "") if single else "",
        }
        channel = {"__CUSTOMER_CANDIDATES": str(count)}
        if single:
            channel = {"__CUSTOMER_ID": str(customer_id), **channel}
        branch = "matched" if single else ("candidates" if count else "unknown")
        return ActionResult(channel=channel, vars=out_vars, branch=branch)

    return action


def make_route_action(route: Route) -> Callable[[Mapping[str, str]], Awaitable[ActionResult]]:
    async def action(variables: Mapping[str, str]) -> ActionResult:
        request = RouteRequest(
            caller_number=variables.get("CALLER_E164")
            or to_e164(variables.get("CALLER_NUMBER"), "CN"),
            customer_id=variables.get("CUSTOMER_ID") or None,
            preferred_dialect=variables.get("PREFERRED_DIALECT") or None,
            tier=variables.get("TIER") or None,
            ivr_dialect=variables.get("IVR_DIALECT") or None,
        )
        decision = await route(request)
        channel = {
            "__DIALECT": decision.dialect,
            "DIALECT_SOURCE": decision.source,
            "QUEUE_PRIO": str(int(decision.priority)),
        }
        if decision.queue:
            channel["ROUTE_QUEUE"] = decision.queue
        out_vars = {
            "DIALECT": decision.dialect,
            "DIALECT_SOURCE": decision.source,
            "QUEUE_PRIO": str(int(decision.priority)),
            "ROUTE_QUEUE": decision.queue or "",
            "ROUTE_REASONS": "; ".join(decision.reasons),
        }
        return ActionResult(channel=channel, vars=out_vars, branch=decision.source)

    return action


def make_record_survey_action(
    record_survey: RecordSurvey,
) -> Callable[[Mapping[str, str]], Awaitable[ActionResult]]:
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
    identify: Identify = identify_nobody,
    route: Route = default_route,
    record_survey: RecordSurvey | None = None,
    flows: Mapping[str, Flow] | None = None,
    on_outcome: Callable[[FlowOutcome], None] | None = None,
) -> dict[str, Callable[[AGISession], Awaitable[FlowOutcome]]]:
    """The route table: path → coroutine running one flow on the session."""
    flows = flows if flows is not None else load_flows()
    store = record_survey if record_survey is not None else MemorySurveyStore()
    actions = {
        "identify": make_identify_action(identify),
        "route": make_route_action(route),
        "record_survey": make_record_survey_action(store),
    }

    def flow_route(
        flow_name: str, linkedid_from_args: bool = False
    ) -> Callable[[AGISession], Awaitable[FlowOutcome]]:
        flow = flows[flow_name]

        async def handle(session: AGISession) -> FlowOutcome:
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
    host: str = "127.0.0.1",
    port: int = 4573,
    identify: Identify = identify_nobody,
    route: Route = default_route,
    record_survey: RecordSurvey | None = None,
    flows: Mapping[str, Flow] | None = None,
    on_outcome: Callable[[FlowOutcome], None] | None = None,
    **server_options: Any,
) -> AGIServer:
    """An :class:`AGIServer` serving the three routes; call ``await server.start()``."""
    routes = build_routes(
        identify=identify,
        route=route,
        record_survey=record_survey,
        flows=flows,
        on_outcome=on_outcome,
    )
    return AGIServer(routes, host=host, port=port, **server_options)
