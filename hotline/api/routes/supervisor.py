"""Supervisors' read side: live queues and agents, the call-back list, ``/metrics`` and the
``/ws/supervisor`` feed. The actions (pause, queues, spy, call-back) are in
:mod:`hotline.api.routes.actions`, which reads the live state through this module.

Everything live is read from the snapshot :class:`~hotline.live.publisher.LivePublisher`
stores (Redis when configured), never from Asterisk: any API process can serve it, and no
page ever polls the PBX. The stored snapshot is dated; waits and times-in-state are aged
to "now" on the way out, and ``stale`` says when the producer stopped refreshing it.

``/metrics`` takes a supervisor bearer token too (Prometheus ``authorization`` /
``bearer_token_file``): queue figures and waiting counts are operational data, and one
rule for every non-page route is easier to audit than an exception.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, WebSocket
from fastapi.responses import PlainTextResponse

from hotline.api.auth import Principal, Role, require, require_websocket
from hotline.api.deps import BusDep
from hotline.api.errors import Forbidden, LiveStoreUnavailable, LiveUnavailable, responses
from hotline.api.inputs import IsoDateTime
from hotline.api.sockets import drain, resume_cursor, serve
from hotline.bus import Bus
from hotline.live.metrics import CONTENT_TYPE, render
from hotline.live.publisher import get_snapshot
from hotline.types import SUPERVISOR_STREAM

__all__ = [
    "QUEUE_PATTERN",
    "STALE_AFTER",
    "Supervisor",
    "aged",
    "live_now",
    "router",
    "snapshot_now",
]

log = logging.getLogger(__name__)

router = APIRouter(tags=["supervisor"])

Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]

STALE_AFTER = 15.0  # s; the publisher re-stores at least every 5 s while it runs

# A queue name as configured; it may reach an AMI header (actions), so no CR/LF or controls.
QUEUE_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"


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


async def snapshot_now(bus: Bus) -> dict[str, Any] | None:
    """The stored snapshot aged to now, or None before the publisher stored one."""
    return _aged_record(await _stored(bus), time.time())


async def live_now(bus: Bus) -> dict[str, Any]:
    """As :func:`snapshot_now`, for routes that cannot answer without one (503)."""
    snapshot = await snapshot_now(bus)
    if snapshot is None:
        raise LiveUnavailable()
    return snapshot


def _agent_out(view: dict[str, Any]) -> dict[str, Any]:
    return {"agent_id": view.get("name") or view.get("interface"), **view}


# -- reads ----------------------------------------------------------------------------------


_LIVE_RESPONSES = responses(Forbidden, LiveUnavailable, LiveStoreUnavailable)


@router.get("/api/queues", name="queues", responses=_LIVE_RESPONSES)
async def list_queues(_: Supervisor, bus: BusDep) -> dict[str, Any]:
    """Every queue's live figures (docs/wallboard.md), waiting callers aged to now."""
    live = await live_now(bus)
    return {
        "at": live["at"],
        "snapshot_at": live["snapshot_at"],
        "stale": live["stale"],
        "connected": live.get("connected", False),
        "day": live.get("day"),
        "timezone": live.get("timezone"),
        "queues": list(live["queues"].values()),
    }


@router.get("/api/agents", name="agents", responses=_LIVE_RESPONSES)
async def list_agents(
    _: Supervisor,
    bus: BusDep,
    queue: Annotated[str | None, Query(pattern=QUEUE_PATTERN)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    """Agents as they are now: state, pause reason, time in state, today's figures.

    ``agent_id`` is the queue member name (the id agents sign in with)."""
    live = await live_now(bus)
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


@router.get("/api/abandoned", name="abandoned", responses=_LIVE_RESPONSES)
async def list_abandoned(
    _: Supervisor,
    bus: BusDep,
    since: Annotated[
        IsoDateTime | None,
        Query(description="ISO 8601; abandons at or after it. Naive means UTC."),
    ] = None,
) -> dict[str, Any]:
    """Today's abandoned callers, newest first: the call-back list.

    Short abandons are not here (usually misdials; docs/wallboard.md). Times are epoch
    seconds, as on the wallboard feed."""
    live = await live_now(bus)
    items = list(live.get("abandoned") or [])
    if since is not None:
        cutoff = since.timestamp()  # aware, in UTC (IsoDateTime)
        items = [a for a in items if (a.get("abandoned_at") or 0) >= cutoff]
    return {"day": live.get("day"), "items": items, "count": len(items)}


@router.get(
    "/metrics",
    name="metrics",
    response_class=PlainTextResponse,
    responses=responses(Forbidden, LiveStoreUnavailable),
)
async def metrics(_: Supervisor, bus: BusDep) -> PlainTextResponse:
    """Prometheus text format. Needs a supervisor bearer token (scrape config
    ``authorization: {credentials_file: ...}``). Without a snapshot yet, only
    ``hotline_ami_connected 0``."""
    snapshot = await snapshot_now(bus)
    return PlainTextResponse(render(snapshot or {}), media_type=CONTENT_TYPE)


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
    after = resume_cursor(last_id)
    await websocket.accept()
    now = time.time()
    if after is not None:
        cursor = after
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
