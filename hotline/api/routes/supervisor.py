"""Supervisors: live queues and agents, the call-back list, actions, ``/metrics`` and the
``/ws/supervisor`` feed.

Everything live is read from the snapshot :class:`~hotline.live.publisher.LivePublisher`
stores (Redis when configured), never from Asterisk: any API process can serve it, and no
page ever polls the PBX. The stored snapshot is dated; waits and times-in-state are aged
to "now" on the way out, and ``stale`` says when the producer stopped refreshing it.

Actions go to Asterisk through the service's AMI bridge, so they are served only by the
process that runs the service (503 elsewhere). Every field that ends up in an AMI header
is pattern-checked: a CR/LF in a pause reason would otherwise inject AMI headers, and a
free-form "supervisor phone" would let a supervisor token dial out through the trunk.
Originate waits for the phone to be answered, which can take the ring timeout: the route
answers 200/409 when Asterisk settles it within ``ORIGINATE_ACCEPT_WAIT`` seconds, else
202, and the outcome follows on ``/ws/supervisor`` as an ``action`` frame.

``/metrics`` takes a supervisor bearer token too (Prometheus ``authorization`` /
``bearer_token_file``): queue figures and waiting counts are operational data, and one
rule for every non-page route is easier to audit than an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    Path,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
    status,
)
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hotline.ami.bridge import AMIActionTimeoutError, AMINotConnectedError
from hotline.api.auth import Principal, Role, require, require_websocket
from hotline.api.errors import HotlineError, ServiceUnavailable
from hotline.db.models import Agent
from hotline.live.metrics import CONTENT_TYPE, render
from hotline.live.publisher import get_snapshot
from hotline.types import SUPERVISOR_STREAM

__all__ = ["CALLBACK_CONTEXT", "ORIGINATE_ACCEPT_WAIT", "STALE_AFTER", "aged", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["supervisor"])

Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]

CALLBACK_CONTEXT = "hotline-callback"  # dialplan context that dials the customer (report)
STALE_AFTER = 15.0  # s; the publisher re-stores at least every 5 s while it runs
ORIGINATE_ACCEPT_WAIT = 1.5  # s to wait for Asterisk to settle an Originate before a 202
RING_SECONDS = 30  # Originate Timeout: how long the first phone rings
ACTION_TIMEOUT = 5.0  # s for single-response actions (QueuePause/Add/Remove)

# What may reach an AMI header. No CR/LF/control characters anywhere.
_AGENT_ID = r"^[A-Za-z0-9_.@-]{1,80}$"
_QUEUE = r"^[A-Za-z0-9_-]{1,80}$"
_REASON = r"^[^\x00-\x1f\x7f,|]{0,64}$"
_PHONE = r"^PJSIP/[A-Za-z0-9_.-]{1,64}$"  # an endpoint, never endpoint/URI or @trunk
_CALL_ID = r"^[A-Za-z0-9_.-]{1,150}$"
_DIALLABLE = re.compile(r"^\+?[0-9]{3,20}$")
_STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")

_CHANSPY_OPTIONS = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}
_BUSY = frozenset({"on_call", "ringing"})
_BACKGROUND: set[asyncio.Task[Any]] = set()  # strong refs: the loop keeps only weak ones


# -- errors -----------------------------------------------------------------------------


class LiveUnavailable(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "no live snapshot yet: the AMI service has not published one",
            error_id="live-unavailable",
        )


class NoSuchAgent(HotlineError):
    def __init__(self) -> None:
        super().__init__("no agent with that id", error_id="no-such-agent", status_code=404)


class AMIRefused(HotlineError):
    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, error_id="ami-refused", status_code=409, details=details)


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


async def _snapshot(bus: Any) -> dict[str, Any] | None:
    try:
        record = await get_snapshot(bus)
    except Exception as exc:  # Redis down: not the client's fault
        log.warning("cannot read the live snapshot: %s", type(exc).__name__)
        raise ServiceUnavailable(
            "the live store is unavailable", error_id="live-store-unavailable"
        ) from None
    if not record or not isinstance(record.get("snapshot"), dict):
        return None
    return aged(record["snapshot"], time.time())


async def _live(request: Request) -> dict[str, Any]:
    snapshot = await _snapshot(request.app.state.bus)
    if snapshot is None:
        raise LiveUnavailable()
    return snapshot


def _agent_out(view: dict[str, Any]) -> dict[str, Any]:
    return {"agent_id": view.get("name") or view.get("interface"), **view}


# -- reads ----------------------------------------------------------------------------------


@router.get("/api/queues", name="queues")
async def list_queues(request: Request, _: Supervisor) -> dict[str, Any]:
    """Every queue's live figures (DESIGN §4), waiting callers aged to now."""
    live = await _live(request)
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
    request: Request,
    _: Supervisor,
    queue: Annotated[str | None, Query(pattern=_QUEUE)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """Agents as they are now: state, pause reason, time in state, today's figures.

    ``agent_id`` is the queue member name (the id agents sign in with)."""
    live = await _live(request)
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
    request: Request,
    _: Supervisor,
    since: Annotated[
        datetime | None,
        Query(description="ISO 8601; abandons at or after it. Naive means UTC."),
    ] = None,
) -> dict[str, Any]:
    """Today's abandoned callers, newest first: the call-back list.

    Short abandons are not here (DESIGN §4: usually misdials). Times are epoch seconds,
    as on the wallboard feed."""
    live = await _live(request)
    items = list(live.get("abandoned") or [])
    if since is not None:
        cutoff = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        items = [a for a in items if (a.get("abandoned_at") or 0) >= cutoff]
    return {"day": live.get("day"), "items": items, "count": len(items)}


@router.get("/metrics", name="metrics", response_class=PlainTextResponse)
async def metrics(request: Request, _: Supervisor) -> PlainTextResponse:
    """Prometheus text format. Needs a supervisor bearer token (scrape config
    ``authorization: {credentials_file: ...}``). Without a snapshot yet, only
    ``hotline_ami_connected 0``."""
    snapshot = await _snapshot(request.app.state.bus)
    return PlainTextResponse(render(snapshot or {}), media_type=CONTENT_TYPE)


# -- AMI plumbing -------------------------------------------------------------------------


def _bridge(request: Request) -> Any:
    bridge = getattr(request.app.state.service, "bridge", None)
    if bridge is None:
        raise ServiceUnavailable(
            "no AMI bridge runs in this API process; send actions to the one running the "
            "call service (hotline serve)",
            error_id="ami-unavailable",
        )
    return bridge


def _first(reply: Any) -> Any:
    return reply[0] if isinstance(reply, list) and reply else reply


def _ok(message: Any) -> bool:
    return message is not None and str(message.get("Response", "")).lower() == "success"


async def _send(bridge: Any, action: dict[str, str]) -> dict[str, Any]:
    """Send a single-response action; map the bridge's failures to API errors."""
    try:
        reply = await bridge.send_action(action, timeout=ACTION_TIMEOUT)
    except AMINotConnectedError:
        raise ServiceUnavailable("AMI is not connected", error_id="ami-unavailable") from None
    except (AMIActionTimeoutError, TimeoutError):
        raise HotlineError(
            "Asterisk did not answer in time", error_id="ami-timeout", status_code=504
        ) from None
    first = _first(reply)
    if not _ok(first):
        message = str(first.get("Message", "")) if first is not None else ""
        raise AMIRefused(f"Asterisk refused {action['Action']}", {"asterisk": message[:200]})
    return {"ok": True, "action": action["Action"], "message": str(first.get("Message", ""))}


def _spawn(coro: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.create_task(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _originate_result(task: asyncio.Task[Any]) -> dict[str, Any]:
    """What an Originate came to: answered, refused, or the phone's failure reason."""
    try:
        reply = task.result()
    except AMINotConnectedError:
        return {"ok": False, "status": "ami-unavailable"}
    except (AMIActionTimeoutError, TimeoutError):
        return {"ok": False, "status": "timeout"}
    except Exception as exc:
        return {"ok": False, "status": "error", "reason": type(exc).__name__}
    messages = reply if isinstance(reply, list) else [reply]
    first, last = messages[0] if messages else None, messages[-1] if messages else None
    if not _ok(first):
        return {"ok": False, "status": "refused", "reason": str((first or {}).get("Message", ""))}
    if last is first or str(last.get("Event", "")) != "OriginateResponse":
        return {"ok": True, "status": "queued"}
    if _ok(last):
        return {"ok": True, "status": "answered"}
    # OriginateResponse Reason: 1 hung up, 3 rang out, 5 busy, 8 congestion, 0 no such
    return {"ok": False, "status": "failed", "reason": str(last.get("Reason", ""))}


async def _publish_result(bus: Any, frame: dict[str, Any]) -> None:
    try:
        await bus.publish(SUPERVISOR_STREAM, frame)
    except Exception as exc:
        log.warning("action result not published: %s", type(exc).__name__)


async def _follow(task: asyncio.Task[Any], bus: Any, frame: dict[str, Any]) -> None:
    with contextlib.suppress(BaseException):
        await asyncio.wait({task})
    await _publish_result(bus, {**frame, **_originate_result(task), "at": time.time()})


async def _originate(
    request: Request, action: dict[str, str], frame: dict[str, Any]
) -> JSONResponse:
    """Originate; 200/409 if Asterisk settles it quickly, else 202 and an ``action``
    frame on ``/ws/supervisor`` when it does."""
    bridge = _bridge(request)
    bus = request.app.state.bus
    channel_id = str(uuid.uuid4())
    action = {
        **action,
        "Async": "true",
        "ChannelId": channel_id,
        "Timeout": str(RING_SECONDS * 1000),
    }
    frame = {"type": "action", **frame, "channel_id": channel_id}
    task = asyncio.create_task(bridge.send_action(action, timeout=RING_SECONDS + 5))
    done, _ = await asyncio.wait({task}, timeout=ORIGINATE_ACCEPT_WAIT)
    if not done:
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
        _spawn(_follow(task, bus, frame))
        return JSONResponse({**frame, "ok": True, "status": "ringing"}, status_code=202)
    result = _originate_result(task)
    if result["status"] == "ami-unavailable":
        raise ServiceUnavailable("AMI is not connected", error_id="ami-unavailable")
    if result["status"] == "timeout":
        raise HotlineError("Asterisk did not answer", error_id="ami-timeout", status_code=504)
    body = {**frame, **result}
    await _publish_result(bus, {**body, "at": time.time()})
    if not result["ok"]:
        raise AMIRefused(
            "the call could not be set up", {k: body[k] for k in ("status", "reason") if k in body}
        )
    return JSONResponse(body, status_code=200)


def _db_interface(sessionmaker: Any, agent_id: str) -> str | None:
    with sessionmaker() as session:
        agent = session.get(Agent, agent_id)
        return agent.interface if agent is not None else None


async def _resolve_agent(
    request: Request, agent_id: str, live: dict[str, Any] | None
) -> tuple[str, dict[str, Any] | None]:
    """The agent's member interface (and live view): from the snapshot, else the agents
    table, so an agent who is in no queue yet can still be added to one."""
    for view in ((live or {}).get("agents") or {}).values():
        if agent_id in (view.get("name"), view.get("interface")):
            return str(view["interface"]), view
    interface = await run_in_threadpool(_db_interface, request.app.state.sessionmaker, agent_id)
    if interface is None:
        raise NoSuchAgent()
    return interface, None


def _queue_known(request: Request, queue: str) -> None:
    if queue not in request.app.state.settings.queue_names:
        raise HotlineError(
            "no such queue",
            error_id="no-such-queue",
            status_code=404,
            details={"queues": list(request.app.state.settings.queue_names)},
        )


AgentId = Annotated[str, Path(pattern=_AGENT_ID)]


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


async def _pause(
    request: Request, principal: Principal, agent_id: str, paused: bool, body: Any
) -> dict[str, Any]:
    bridge = _bridge(request)
    if body.queue is not None:
        _queue_known(request, body.queue)
    interface, _view = await _resolve_agent(
        request, agent_id, await _snapshot(request.app.state.bus)
    )
    action = {
        "Action": "QueuePause",
        "Interface": interface,
        "Paused": "true" if paused else "false",
    }
    if body.queue is not None:
        action["Queue"] = body.queue
    if paused and body.reason:
        action["Reason"] = body.reason
    result = await _send(bridge, action)
    log.info(
        "token %s %s agent %s", principal.token_id, "paused" if paused else "unpaused", agent_id
    )
    return {**result, "agent_id": agent_id, "interface": interface, "paused": paused}


@router.post("/api/agents/{agent_id}/pause", name="pause")
async def pause_agent(
    request: Request, agent_id: AgentId, body: PauseIn, principal: Supervisor
) -> dict[str, Any]:
    """Pause an agent (every queue, or ``queue``) with a reason the wallboard shows."""
    return await _pause(request, principal, agent_id, True, body)


@router.post("/api/agents/{agent_id}/unpause", name="unpause")
async def unpause_agent(
    request: Request, agent_id: AgentId, principal: Supervisor, body: UnpauseIn | None = None
) -> dict[str, Any]:
    """Unpause an agent (every queue, or ``queue``)."""
    return await _pause(request, principal, agent_id, False, body or UnpauseIn())


@router.post("/api/agents/{agent_id}/queues", name="queue-add")
async def add_to_queue(
    request: Request, agent_id: AgentId, body: QueueAddIn, principal: Supervisor
) -> dict[str, Any]:
    """Add an agent to a queue (AMI QueueAdd, MemberName = the agent id, which is how
    queue events name agents). Skills-based membership re-applied after an AMI login may
    undo it."""
    bridge = _bridge(request)
    _queue_known(request, body.queue)
    interface, _view = await _resolve_agent(
        request, agent_id, await _snapshot(request.app.state.bus)
    )
    result = await _send(
        bridge,
        {
            "Action": "QueueAdd",
            "Queue": body.queue,
            "Interface": interface,
            "MemberName": agent_id,
            "Penalty": str(body.penalty),
        },
    )
    log.info("token %s added agent %s to %s", principal.token_id, agent_id, body.queue)
    return {**result, "agent_id": agent_id, "interface": interface, "queue": body.queue}


@router.delete("/api/agents/{agent_id}/queues/{queue}", name="queue-remove")
async def remove_from_queue(
    request: Request,
    agent_id: AgentId,
    queue: Annotated[str, Path(pattern=_QUEUE)],
    principal: Supervisor,
) -> dict[str, Any]:
    """Remove an agent from a queue (AMI QueueRemove)."""
    bridge = _bridge(request)
    _queue_known(request, queue)
    interface, _view = await _resolve_agent(
        request, agent_id, await _snapshot(request.app.state.bus)
    )
    result = await _send(bridge, {"Action": "QueueRemove", "Queue": queue, "Interface": interface})
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


CallId = Annotated[str, Path(pattern=_CALL_ID)]


def _spy_target(view: dict[str, Any]) -> tuple[str, str]:
    """ChanSpy's target and the extra option for it.

    ``u`` spies exactly one leg by uniqueid when the live state knows the agent's leg
    (``channel_uniqueid``/``channel``); otherwise the endpoint's channel-name prefix
    ``PJSIP/agent-1004-`` (the trailing dash keeps ``agent-10045`` out) picks the agent's
    only call, since queues run with ``ringinuse = no``.
    """
    exact = view.get("channel_uniqueid") or view.get("channel")
    if exact:
        return str(exact), "u"
    return f"{view['interface']}-", ""


@router.post("/api/calls/{linkedid}/spy", name="spy")
async def spy(
    request: Request, linkedid: CallId, body: SpyIn, principal: Supervisor
) -> JSONResponse:
    """Ring the supervisor's phone into ChanSpy on the agent's leg of a live call:
    listen (``qE``), whisper to the agent (``qEw``) or barge (``qEB``)."""
    _bridge(request)
    live = await _live(request)
    if body.agent_id is not None:
        _interface, view = await _resolve_agent(request, body.agent_id, live)
        if view is None or view.get("state") != "on_call":
            raise HotlineError(
                "that agent is not on a call", error_id="agent-not-on-call", status_code=409
            )
    else:
        view = next(
            (
                v
                for v in live["agents"].values()
                if linkedid in (v.get("on_call_with"), v.get("linkedid"))
            ),
            None,
        )
        if view is None:
            raise HotlineError(
                "no agent is on a live call with that id", error_id="no-live-call", status_code=404
            )
    target, extra = _spy_target(view)
    agent_id = str(view.get("name") or view["interface"])
    log.info("token %s: %s on agent %s, call %s", principal.token_id, body.mode, agent_id, linkedid)
    return await _originate(
        request,
        {
            "Action": "Originate",
            "Channel": body.supervisor_phone,
            "Application": "ChanSpy",
            "Data": f"{target},{_CHANSPY_OPTIONS[body.mode]}{extra}",
            "CallerID": f'"{body.mode}" <{agent_id}>',
            "Variable": f"HOTLINE_SPY_OF={linkedid}",
        },
        {"action": "spy", "mode": body.mode, "linkedid": linkedid, "agent_id": agent_id},
    )


@router.post("/api/abandoned/{linkedid}/callback", name="callback")
async def call_back(
    request: Request, linkedid: CallId, body: CallbackIn, principal: Supervisor
) -> JSONResponse:
    """Call an abandoned caller back: ring the agent's phone first; when the agent
    answers, dialplan context ``hotline-callback`` dials the customer."""
    _bridge(request)
    live = await _live(request)
    entry = next(
        (
            a
            for a in live.get("abandoned") or ()
            if linkedid in (a.get("linkedid"), a.get("uniqueid"))
        ),
        None,
    )
    if entry is None:
        raise HotlineError(
            "no abandoned caller with that id today", error_id="no-such-abandon", status_code=404
        )
    number = str(entry.get("caller_number") or "")
    if not _DIALLABLE.match(number):
        raise HotlineError(
            "the caller's number is withheld or not diallable",
            error_id="not-diallable",
            status_code=422,
        )
    interface, view = await _resolve_agent(request, body.agent_id, live)
    if view is not None and view.get("state") in _BUSY:
        raise HotlineError("the agent is busy", error_id="agent-busy", status_code=409)
    log.info("token %s: call-back of %s by agent %s", principal.token_id, linkedid, body.agent_id)
    variables = {
        "HOTLINE_CALLBACK_NUMBER": number,
        "HOTLINE_CALLBACK_OF": linkedid,
        "HOTLINE_AGENT": body.agent_id,
        "HOTLINE_QUEUE": str(entry.get("queue") or ""),
    }
    return await _originate(
        request,
        {
            "Action": "Originate",
            "Channel": interface,
            "Context": CALLBACK_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "CallerID": f'"回拨" <{number}>',
            "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
        },
        {"action": "callback", "linkedid": linkedid, "agent_id": body.agent_id},
    )


# -- the live feed --------------------------------------------------------------------------


async def _pump(websocket: WebSocket, bus: Any, cursor: str) -> None:
    while True:
        for message in await bus.read(SUPERVISOR_STREAM, cursor, block_ms=15000):
            await websocket.send_json({"id": message.id, **message.data})
            cursor = message.id


async def _drain_client(websocket: WebSocket) -> None:
    """The page sends nothing we act on; reading is how a closed socket is noticed."""
    while True:
        await websocket.receive_text()


@router.websocket("/ws/supervisor")
async def supervisor_socket(
    websocket: WebSocket,
    principal: Annotated[Principal, Depends(require_websocket(Role.SUPERVISOR))],
    last_id: str | None = None,
) -> None:
    """The wallboard feed. Without ``?last_id=``: the latest snapshot (aged to now), then
    every frame published after *that snapshot's* id, so nothing falls between the two.
    With it: a ``hello`` and every frame after ``last_id``, snapshots included."""
    if last_id is not None and not _STREAM_ID.match(last_id):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "bad last_id")
    bus = websocket.app.state.bus
    await websocket.accept()
    now = time.time()
    if last_id:
        cursor = last_id
        await websocket.send_json({"type": "hello", "last_id": cursor, "server_time": now})
    else:
        try:
            record = await get_snapshot(bus)
        except Exception as exc:
            log.warning("cannot read the live snapshot: %s", type(exc).__name__)
            record = None
        snapshot = None
        if record and isinstance(record.get("snapshot"), dict):
            snapshot = aged(record["snapshot"], now)
        cursor = str(record["id"]) if record and record.get("id") else None
        if cursor is None:
            cursor = await bus.last_id(SUPERVISOR_STREAM)
        await websocket.send_json(
            {"type": "snapshot", "id": cursor, "snapshot": snapshot, "at": now, "server_time": now}
        )
    tasks = [
        asyncio.create_task(_pump(websocket, bus, cursor)),
        asyncio.create_task(_drain_client(websocket)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc and not isinstance(exc, WebSocketDisconnect):
                log.warning(
                    "supervisor socket %s ended: %s", principal.token_id, type(exc).__name__
                )
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
