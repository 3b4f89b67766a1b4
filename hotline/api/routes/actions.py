"""Supervisors' actions: pause and unpause an agent, add or remove them from a queue,
spy on a live call, call an abandoned caller back.

Actions go to Asterisk through the service's AMI bridge, so they are served only by the
process that runs the service (503 elsewhere). The actions are built by
:mod:`hotline.ami.actions` and sent by :mod:`hotline.live.actions`; this module checks
the request and maps the outcome to HTTP. Every field that ends up in an AMI header is
pattern-checked here: a CR/LF in a pause reason would otherwise inject AMI headers, and
a free-form "supervisor phone" would let a supervisor token dial out through the trunk.
Originate waits for the phone to be answered, which can take the ring timeout: the route
answers 200/409 when Asterisk settles it within ``ORIGINATE_ACCEPT_WAIT`` seconds, else
202, and the outcome follows on ``/ws/supervisor`` as an ``action`` frame.

Who is where comes from the live snapshot, read through :mod:`hotline.api.routes.supervisor`
(the same view the wallboard shows); the routes share its ``supervisor`` tag, so operation
ids stay ``supervisor-pause`` and so on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hotline.ami import actions as ami
from hotline.api.deps import ActionsDep, BridgeDep, BusDep, SessionmakerDep, SettingsDep
from hotline.api.errors import (
    BODY_ERRORS,
    AgentBusy,
    AgentNotOnCall,
    AMIRefused,
    AMITimeout,
    AMIUnavailable,
    Forbidden,
    HotlineError,
    LiveStoreUnavailable,
    LiveUnavailable,
    NoLiveCall,
    NoSuchAbandon,
    NoSuchAgent,
    NoSuchQueue,
    NotDiallable,
    responses,
)
from hotline.api.routes.supervisor import QUEUE_PATTERN, Supervisor, live_now, snapshot_now
from hotline.bus import Bus
from hotline.db.models import Agent
from hotline.live.actions import (
    ActionBridge,
    ActionError,
    ActionRunner,
    NoAnswer,
    NotConnected,
    Refused,
)
from hotline.settings import Settings

__all__ = ["ORIGINATE_ACCEPT_WAIT", "Desk", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["supervisor"])

ORIGINATE_ACCEPT_WAIT = 1.5  # s to wait for Asterisk to settle an Originate before a 202

# What may reach an AMI header (queue names: QUEUE_PATTERN). No CR/LF/control characters.
_AGENT_ID = r"^[A-Za-z0-9_.@-]{1,80}$"
_REASON = r"^[^\x00-\x1f\x7f,|]{0,64}$"
_PHONE = r"^PJSIP/[A-Za-z0-9_.-]{1,64}$"  # an endpoint, never endpoint/URI or @trunk
_CALL_ID = r"^[A-Za-z0-9_.-]{1,150}$"
_DIALLABLE = re.compile(r"^\+?[0-9]{3,20}$")

_BUSY = frozenset({"on_call", "ringing"})

AgentId = Annotated[str, Path(pattern=_AGENT_ID)]

# What every action may answer besides its own errors (and the app's 400/401/422/503).
_ACTION_ERRORS = (Forbidden, AMIUnavailable, AMIRefused, AMITimeout, LiveStoreUnavailable)
_MEMBER_RESPONSES = responses(*_ACTION_ERRORS, NoSuchAgent, NoSuchQueue, *BODY_ERRORS)
CallId = Annotated[str, Path(pattern=_CALL_ID)]


# -- what actions share ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Desk:
    """What every action route uses, resolved per request by :func:`_desk`."""

    bridge: ActionBridge | None
    runner: ActionRunner
    bus: Bus
    settings: Settings
    sessions: sessionmaker[Session]

    def link(self) -> ActionBridge:
        """The bridge; checked in the route, after the request itself (422 before 503)."""
        if self.bridge is None:
            raise AMIUnavailable(
                "no AMI bridge runs in this API process; send actions to the one running the "
                "call service (hotline serve)"
            )
        return self.bridge

    def check_queue(self, queue: str | None) -> None:
        if queue is not None and queue not in self.settings.queue_names:
            raise NoSuchQueue(details={"queues": list(self.settings.queue_names)})

    async def resolve(
        self, agent_id: str, live: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any] | None]:
        """The agent's member interface (and live view): from the snapshot, else the agents
        table, so an agent who is in no queue yet can still be added to one."""
        for view in ((live or {}).get("agents") or {}).values():
            if agent_id in (view.get("name"), view.get("interface")):
                return str(view["interface"]), view
        interface = await run_in_threadpool(_db_interface, self.sessions, agent_id)
        if interface is None:
            raise NoSuchAgent()
        return interface, None

    async def send(self, action: ami.Action) -> dict[str, Any]:
        try:
            sent = await self.runner.send(self.link(), action)
        except ActionError as exc:
            raise _api_error(exc) from None
        return {"ok": True, "action": sent.action, "message": sent.message}

    async def originate(self, action: ami.Action, frame: dict[str, Any]) -> JSONResponse:
        """200 or 409 when Asterisk settles it quickly, else 202 (the outcome follows on
        the feed as an ``action`` frame)."""
        try:
            done = await self.runner.originate(
                self.link(), action, frame, accept_wait=ORIGINATE_ACCEPT_WAIT
            )
        except ActionError as exc:
            raise _api_error(exc) from None
        if done.outcome is None:
            return JSONResponse(done.frame, status_code=202)
        if not done.outcome.ok:
            details = {k: v for k, v in done.outcome.as_dict().items() if k != "ok"}
            raise AMIRefused("the call could not be set up", details=details)
        return JSONResponse(done.frame, status_code=200)


def _desk(
    bridge: BridgeDep,
    runner: ActionsDep,
    bus: BusDep,
    settings: SettingsDep,
    sessions: SessionmakerDep,
) -> _Desk:
    return _Desk(bridge, runner, bus, settings, sessions)


Desk = Annotated[_Desk, Depends(_desk)]


def _api_error(exc: ActionError) -> HotlineError:
    if isinstance(exc, NotConnected):
        return AMIUnavailable(str(exc))
    if isinstance(exc, NoAnswer):
        return AMITimeout(str(exc))
    if isinstance(exc, Refused):
        return AMIRefused(str(exc), details={"asterisk": exc.message})
    return HotlineError(str(exc))


def _db_interface(sessions: sessionmaker[Session], agent_id: str) -> str | None:
    with sessions() as session:
        agent = session.get(Agent, agent_id)
        return agent.interface if agent is not None else None


# -- agent actions --------------------------------------------------------------------------


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(pattern=_REASON)] = ""
    queue: Annotated[str | None, Field(pattern=QUEUE_PATTERN)] = None  # None: every queue


class UnpauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Annotated[str | None, Field(pattern=QUEUE_PATTERN)] = None


class QueueAddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)]
    penalty: Annotated[int, Field(ge=0, le=100)] = 0


@router.post("/api/agents/{agent_id}/pause", name="pause", responses=_MEMBER_RESPONSES)
async def pause_agent(
    agent_id: AgentId, body: PauseIn, principal: Supervisor, desk: Desk
) -> dict[str, Any]:
    """Pause an agent (every queue, or ``queue``) with a reason the wallboard shows."""
    desk.link()
    desk.check_queue(body.queue)
    interface, _view = await desk.resolve(agent_id, await snapshot_now(desk.bus))
    action = ami.queue_pause(interface, paused=True, queue=body.queue, reason=body.reason)
    result = await desk.send(action)
    log.info("token %s paused agent %s", principal.token_id, agent_id)
    return {**result, "agent_id": agent_id, "interface": interface, "paused": True}


@router.post("/api/agents/{agent_id}/unpause", name="unpause", responses=_MEMBER_RESPONSES)
async def unpause_agent(
    agent_id: AgentId, principal: Supervisor, desk: Desk, body: UnpauseIn | None = None
) -> dict[str, Any]:
    """Unpause an agent (every queue, or ``queue``)."""
    desk.link()
    queue = body.queue if body is not None else None
    desk.check_queue(queue)
    interface, _view = await desk.resolve(agent_id, await snapshot_now(desk.bus))
    result = await desk.send(ami.queue_pause(interface, paused=False, queue=queue))
    log.info("token %s unpaused agent %s", principal.token_id, agent_id)
    return {**result, "agent_id": agent_id, "interface": interface, "paused": False}


@router.post("/api/agents/{agent_id}/queues", name="queue-add", responses=_MEMBER_RESPONSES)
async def add_to_queue(
    agent_id: AgentId, body: QueueAddIn, principal: Supervisor, desk: Desk
) -> dict[str, Any]:
    """Add an agent to a queue (AMI QueueAdd, MemberName = the agent id, which is how
    queue events name agents). Skills-based membership re-applied after an AMI login may
    undo it."""
    desk.link()
    desk.check_queue(body.queue)
    interface, _view = await desk.resolve(agent_id, await snapshot_now(desk.bus))
    action = ami.queue_add(body.queue, interface, member_name=agent_id, penalty=body.penalty)
    result = await desk.send(action)
    log.info("token %s added agent %s to %s", principal.token_id, agent_id, body.queue)
    return {**result, "agent_id": agent_id, "interface": interface, "queue": body.queue}


@router.delete(
    "/api/agents/{agent_id}/queues/{queue}",
    name="queue-remove",
    responses=responses(*_ACTION_ERRORS, NoSuchAgent, NoSuchQueue),
)
async def remove_from_queue(
    agent_id: AgentId,
    queue: Annotated[str, Path(pattern=QUEUE_PATTERN)],
    principal: Supervisor,
    desk: Desk,
) -> dict[str, Any]:
    """Remove an agent from a queue (AMI QueueRemove)."""
    desk.link()
    desk.check_queue(queue)
    interface, _view = await desk.resolve(agent_id, await snapshot_now(desk.bus))
    result = await desk.send(ami.queue_remove(queue, interface))
    log.info("token %s removed agent %s from %s", principal.token_id, agent_id, queue)
    return {**result, "agent_id": agent_id, "interface": interface, "queue": queue}


# -- spy and call-back --------------------------------------------------------------------


class SpyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["listen", "whisper", "barge"]
    supervisor_phone: Annotated[str, Field(pattern=_PHONE, description="e.g. PJSIP/agent-1004")]
    agent_id: Annotated[str | None, Field(pattern=_AGENT_ID)] = None


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[str, Field(pattern=_AGENT_ID)]


def _call_ids(view: dict[str, Any]) -> tuple[Any, Any]:
    return view.get("on_call_with"), view.get("linkedid")


def _spy_target(view: dict[str, Any]) -> tuple[str, str]:
    """ChanSpy's target for an agent's live view: its exact leg when the live state knows
    it (``channel_uniqueid``/``channel``), else its endpoint."""
    leg = view.get("channel_uniqueid") or view.get("channel")
    return ami.chanspy_target(str(view["interface"]), str(leg) if leg else None)


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Asterisk has not settled it yet; the outcome follows on "
        "/ws/supervisor as an ``action`` frame"
    }
}


@router.post(
    "/api/calls/{linkedid}/spy",
    name="spy",
    responses={
        **_ACCEPTED,
        **responses(
            *_ACTION_ERRORS, LiveUnavailable, NoSuchAgent, AgentNotOnCall, NoLiveCall, *BODY_ERRORS
        ),
    },
)
async def spy(
    linkedid: CallId,
    body: SpyIn,
    principal: Supervisor,
    desk: Desk,
) -> JSONResponse:
    """Ring the supervisor's phone into ChanSpy on the agent's leg of a live call:
    listen (``qE``), whisper to the agent (``qEw``) or barge (``qEB``)."""
    desk.link()
    live = await live_now(desk.bus)
    view: dict[str, Any] | None
    if body.agent_id is not None:
        _interface, view = await desk.resolve(body.agent_id, live)
        if view is None or view.get("state") != "on_call":
            raise AgentNotOnCall()
    else:
        on_it = (v for v in live["agents"].values() if linkedid in _call_ids(v))
        view = next(on_it, None)
        if view is None:
            raise NoLiveCall()
    agent_id = str(view.get("name") or view["interface"])
    log.info("token %s: %s on agent %s, call %s", principal.token_id, body.mode, agent_id, linkedid)
    action = ami.spy_originate(
        body.supervisor_phone,
        mode=ami.SpyMode(body.mode),
        target=_spy_target(view),
        agent_id=agent_id,
        linkedid=linkedid,
    )
    frame = {"action": "spy", "mode": body.mode, "linkedid": linkedid, "agent_id": agent_id}
    return await desk.originate(action, frame)


@router.post(
    "/api/abandoned/{linkedid}/callback",
    name="callback",
    responses={
        **_ACCEPTED,
        **responses(
            *_ACTION_ERRORS,
            LiveUnavailable,
            NoSuchAbandon,
            NoSuchAgent,
            NotDiallable,
            AgentBusy,
            *BODY_ERRORS,
        ),
    },
)
async def call_back(
    linkedid: CallId,
    body: CallbackIn,
    principal: Supervisor,
    desk: Desk,
) -> JSONResponse:
    """Call an abandoned caller back: ring the agent's phone first; when the agent
    answers, dialplan context ``hotline-callback`` dials the customer."""
    desk.link()
    live = await live_now(desk.bus)
    abandons = live.get("abandoned") or ()
    entry = next((a for a in abandons if linkedid in (a.get("linkedid"), a.get("uniqueid"))), None)
    if entry is None:
        raise NoSuchAbandon()
    number = str(entry.get("caller_number") or "")
    if not _DIALLABLE.match(number):
        raise NotDiallable()
    interface, view = await desk.resolve(body.agent_id, live)
    if view is not None and view.get("state") in _BUSY:
        raise AgentBusy()
    log.info("token %s: call-back of %s by agent %s", principal.token_id, linkedid, body.agent_id)
    action = ami.callback_originate(
        interface,
        number=number,
        linkedid=linkedid,
        agent_id=body.agent_id,
        queue=str(entry.get("queue") or ""),
    )
    frame = {"action": "callback", "linkedid": linkedid, "agent_id": body.agent_id}
    return await desk.originate(action, frame)
