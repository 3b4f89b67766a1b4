"""Supervisors: live queues and agents, the call-back list, actions, ``/metrics`` and the
``/ws/supervisor`` feed.

Everything live is read from the snapshot :class:`~hotline.live.publisher.LivePublisher`
stores (Redis when configured), never from Asterisk: any API process can serve it, and no
page ever polls the PBX. The stored snapshot is dated; waits and times-in-state are aged
to "now" on the way out, and ``stale`` says when the producer stopped refreshing it.

Actions go to Asterisk through the service's AMI bridge, so they are served only by the
process that runs the service (503 elsewhere). The actions are built by
:mod:`hotline.ami.actions` and sent by :mod:`hotline.live.actions`; this module checks
the request and maps the outcome to HTTP. Every field that ends up in an AMI header is
pattern-checked here: a CR/LF in a pause reason would otherwise inject AMI headers, and
a free-form "supervisor phone" would let a supervisor token dial out through the trunk.
Originate waits for the phone to be answered, which can take the ring timeout: the route
answers 200/409 when Asterisk settles it within ``ORIGINATE_ACCEPT_WAIT`` seconds, else
202, and the outcome follows on ``/ws/supervisor`` as an ``action`` frame.

``/metrics`` takes a supervisor bearer token too (Prometheus ``authorization`` /
``bearer_token_file``): queue figures and waiting counts are operational data, and one
rule for every non-page route is easier to audit than an exception.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, WebSocket, WebSocketException, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from hotline.ami import actions as ami
from hotline.api.auth import Principal, Role, require, require_websocket
from hotline.api.deps import ActionsDep, BridgeDep, BusDep, SessionmakerDep, SettingsDep
from hotline.api.errors import (
    AgentBusy,
    AgentNotOnCall,
    AMIRefused,
    AMITimeout,
    AMIUnavailable,
    HotlineError,
    LiveStoreUnavailable,
    LiveUnavailable,
    NoLiveCall,
    NoSuchAbandon,
    NoSuchAgent,
    NoSuchQueue,
    NotDiallable,
)
from hotline.api.sockets import drain, is_stream_id, serve
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
from hotline.live.metrics import CONTENT_TYPE, render
from hotline.live.publisher import get_snapshot
from hotline.settings import Settings
from hotline.types import SUPERVISOR_STREAM

__all__ = ["ORIGINATE_ACCEPT_WAIT", "STALE_AFTER", "aged", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["supervisor"])

Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]

STALE_AFTER = 15.0  # s; the publisher re-stores at least every 5 s while it runs
ORIGINATE_ACCEPT_WAIT = 1.5  # s to wait for Asterisk to settle an Originate before a 202

# What may reach an AMI header. No CR/LF/control characters anywhere.
_AGENT_ID = r"^[A-Za-z0-9_.@-]{1,80}$"
_QUEUE = r"^[A-Za-z0-9_-]{1,80}$"
_REASON = r"^[^\x00-\x1f\x7f,|]{0,64}$"
_PHONE = r"^PJSIP/[A-Za-z0-9_.-]{1,64}$"  # an endpoint, never endpoint/URI or @trunk
_CALL_ID = r"^[A-Za-z0-9_.-]{1,150}$"
_DIALLABLE = re.compile(r"^\+?[0-9]{3,20}$")

_BUSY = frozenset({"on_call", "ringing"})

AgentId = Annotated[str, Path(pattern=_AGENT_ID)]
CallId = Annotated[str, Path(pattern=_CALL_ID)]


# -- the snapshot -------------------------------------------------------------------------


def aged(snapshot: dict[str, Any], now: float) -> dict[str, Any]:
    """The snapshot as of ``now``: waits and times in state grown by its age.

    Nothing else moves without an event, and every event makes the publisher store a new
    snapshot, so this is exact while the producer runs (``stale`` says when it stopped).
    """
    at = snapshot.get("at")
    age = max(0.0, now - at) if isinstance(at, int | float) else 0.0
    queues = {}
    for name, view in (snapshot.get("queues") or {}).items():
        view = dict(view)
        waiting = [
            {**c, "wait": None if c.get("wait") is None else c["wait"] + age}
            for c in view.get("waiting") or ()
        ]
        view["waiting"] = waiting
        view["longest_wait"] = max(
            (c["wait"] for c in waiting if c["wait"] is not None), default=0.0
        )
        queues[name] = view
    agents = {}
    for interface, view in (snapshot.get("agents") or {}).items():
        view = dict(view)
        if isinstance(view.get("time_in_state"), int | float):
            view["time_in_state"] += age
        agents[interface] = view
    return {
        **snapshot,
        "queues": queues,
        "agents": agents,
        "snapshot_at": at,
        "at": now,
        "stale": age > STALE_AFTER,
    }


async def _stored(bus: Bus) -> dict[str, Any] | None:
    """The stored ``{"id", "at", "snapshot"}`` record, or None before the first one."""
    try:
        return await get_snapshot(bus)
    except Exception as exc:  # Redis down: not the client's fault
        log.warning("cannot read the live snapshot: %s", type(exc).__name__)
        raise LiveStoreUnavailable() from None


def _aged_record(record: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    if not record or not isinstance(record.get("snapshot"), dict):
        return None
    return aged(record["snapshot"], now)


async def _snapshot(bus: Bus) -> dict[str, Any] | None:
    return _aged_record(await _stored(bus), time.time())


async def _live(bus: Bus) -> dict[str, Any]:
    snapshot = await _snapshot(bus)
    if snapshot is None:
        raise LiveUnavailable()
    return snapshot


def _agent_out(view: dict[str, Any]) -> dict[str, Any]:
    return {"agent_id": view.get("name") or view.get("interface"), **view}


# -- reads ----------------------------------------------------------------------------------


@router.get("/api/queues", name="queues")
async def list_queues(_: Supervisor, bus: BusDep) -> dict[str, Any]:
    """Every queue's live figures (docs/wallboard.md), waiting callers aged to now."""
    live = await _live(bus)
    return {
        "at": live["at"],
        "snapshot_at": live["snapshot_at"],
        "stale": live["stale"],
        "connected": live.get("connected", False),
        "day": live.get("day"),
        "timezone": live.get("timezone"),
        "queues": list(live["queues"].values()),
    }


@router.get("/api/agents", name="agents")
async def list_agents(
    _: Supervisor,
    bus: BusDep,
    queue: Annotated[str | None, Query(pattern=_QUEUE)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """Agents as they are now: state, pause reason, time in state, today's figures.

    ``agent_id`` is the queue member name (the id agents sign in with)."""
    live = await _live(bus)
    agents = [
        _agent_out(v)
        for v in live["agents"].values()
        if (queue is None or queue in v.get("queues", ()))
        and (state is None or v.get("state") == state)
    ]
    return {
        "at": live["at"],
        "stale": live["stale"],
        "connected": live.get("connected", False),
        "agents": agents,
    }


@router.get("/api/abandoned", name="abandoned")
async def list_abandoned(
    _: Supervisor,
    bus: BusDep,
    since: Annotated[
        datetime | None,
        Query(description="ISO 8601; abandons at or after it. Naive means UTC."),
    ] = None,
) -> dict[str, Any]:
    """Today's abandoned callers, newest first: the call-back list.

    Short abandons are not here (usually misdials; docs/wallboard.md). Times are epoch
    seconds, as on the wallboard feed."""
    live = await _live(bus)
    items = list(live.get("abandoned") or [])
    if since is not None:
        cutoff = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        items = [a for a in items if (a.get("abandoned_at") or 0) >= cutoff]
    return {"day": live.get("day"), "items": items, "count": len(items)}


@router.get("/metrics", name="metrics", response_class=PlainTextResponse)
async def metrics(_: Supervisor, bus: BusDep) -> PlainTextResponse:
    """Prometheus text format. Needs a supervisor bearer token (scrape config
    ``authorization: {credentials_file: ...}``). Without a snapshot yet, only
    ``hotline_ami_connected 0``."""
    snapshot = await _snapshot(bus)
    return PlainTextResponse(render(snapshot or {}), media_type=CONTENT_TYPE)


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
    queue: Annotated[str | None, Field(pattern=_QUEUE)] = None  # None: every queue


class UnpauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Annotated[str | None, Field(pattern=_QUEUE)] = None


class QueueAddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Annotated[str, Field(pattern=_QUEUE)]
    penalty: Annotated[int, Field(ge=0, le=100)] = 0


@router.post("/api/agents/{agent_id}/pause", name="pause")
async def pause_agent(
    agent_id: AgentId, body: PauseIn, principal: Supervisor, desk: Desk
) -> dict[str, Any]:
    """Pause an agent (every queue, or ``queue``) with a reason the wallboard shows."""
    desk.link()
    desk.check_queue(body.queue)
    interface, _view = await desk.resolve(agent_id, await _snapshot(desk.bus))
    action = ami.queue_pause(interface, paused=True, queue=body.queue, reason=body.reason)
    result = await desk.send(action)
    log.info("token %s paused agent %s", principal.token_id, agent_id)
    return {**result, "agent_id": agent_id, "interface": interface, "paused": True}


@router.post("/api/agents/{agent_id}/unpause", name="unpause")
async def unpause_agent(
    agent_id: AgentId, principal: Supervisor, desk: Desk, body: UnpauseIn | None = None
) -> dict[str, Any]:
    """Unpause an agent (every queue, or ``queue``)."""
    desk.link()
    queue = body.queue if body is not None else None
    desk.check_queue(queue)
    interface, _view = await desk.resolve(agent_id, await _snapshot(desk.bus))
    result = await desk.send(ami.queue_pause(interface, paused=False, queue=queue))
    log.info("token %s unpaused agent %s", principal.token_id, agent_id)
    return {**result, "agent_id": agent_id, "interface": interface, "paused": False}


@router.post("/api/agents/{agent_id}/queues", name="queue-add")
async def add_to_queue(
    agent_id: AgentId, body: QueueAddIn, principal: Supervisor, desk: Desk
) -> dict[str, Any]:
    """Add an agent to a queue (AMI QueueAdd, MemberName = the agent id, which is how
    queue events name agents). Skills-based membership re-applied after an AMI login may
    undo it."""
    desk.link()
    desk.check_queue(body.queue)
    interface, _view = await desk.resolve(agent_id, await _snapshot(desk.bus))
    action = ami.queue_add(body.queue, interface, member_name=agent_id, penalty=body.penalty)
    result = await desk.send(action)
    log.info("token %s added agent %s to %s", principal.token_id, agent_id, body.queue)
    return {**result, "agent_id": agent_id, "interface": interface, "queue": body.queue}


@router.delete("/api/agents/{agent_id}/queues/{queue}", name="queue-remove")
async def remove_from_queue(
    agent_id: AgentId,
    queue: Annotated[str, Path(pattern=_QUEUE)],
    principal: Supervisor,
    desk: Desk,
) -> dict[str, Any]:
    """Remove an agent from a queue (AMI QueueRemove)."""
    desk.link()
    desk.check_queue(queue)
    interface, _view = await desk.resolve(agent_id, await _snapshot(desk.bus))
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


@router.post("/api/calls/{linkedid}/spy", name="spy")
async def spy(
    linkedid: CallId,
    body: SpyIn,
    principal: Supervisor,
    desk: Desk,
) -> JSONResponse:
    """Ring the supervisor's phone into ChanSpy on the agent's leg of a live call:
    listen (``qE``), whisper to the agent (``qEw``) or barge (``qEB``)."""
    desk.link()
    live = await _live(desk.bus)
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


@router.post("/api/abandoned/{linkedid}/callback", name="callback")
async def call_back(
    linkedid: CallId,
    body: CallbackIn,
    principal: Supervisor,
    desk: Desk,
) -> JSONResponse:
    """Call an abandoned caller back: ring the agent's phone first; when the agent
    answers, dialplan context ``hotline-callback`` dials the customer."""
    desk.link()
    live = await _live(desk.bus)
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


# -- the live feed --------------------------------------------------------------------------


@router.websocket("/ws/supervisor")
async def supervisor_socket(
    websocket: WebSocket,
    principal: Annotated[Principal, Depends(require_websocket(Role.SUPERVISOR))],
    bus: BusDep,
    last_id: str | None = None,
) -> None:
    """The wallboard feed. Without ``?last_id=``: the latest snapshot (aged to now), then
    every frame published after *that snapshot's* id, so nothing falls between the two.
    With it: a ``hello`` and every frame after ``last_id``, snapshots included."""
    if last_id is not None and not is_stream_id(last_id):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "bad last_id")
    await websocket.accept()
    now = time.time()
    if last_id:
        cursor = last_id
        await websocket.send_json({"type": "hello", "last_id": cursor, "server_time": now})
    else:
        try:
            record = await _stored(bus)
        except LiveStoreUnavailable:  # logged; the feed still starts, snapshot null
            record = None
        snapshot = _aged_record(record, now)
        stored_id = record.get("id") if record else None
        cursor = str(stored_id) if stored_id else await bus.last_id(SUPERVISOR_STREAM)
        await websocket.send_json(
            {"type": "snapshot", "id": cursor, "snapshot": snapshot, "at": now, "server_time": now}
        )
    await serve(
        websocket,
        bus,
        SUPERVISOR_STREAM,
        cursor,
        client=drain(websocket),
        who=f"supervisor token {principal.token_id}",
    )
