"""WebSockets: each agent's page reads its own stream; pages resume from the last id.

An agent token can only ever open ``agent:<its own id>``: the stream name comes from
the token, never from the request. Supervisors and admins may watch a given agent's
stream (``?agent=``) for support. The page acknowledges each screen-pop; the ack goes
on the bus so the pre-dial step (possibly in another process) can let the phone ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
    status,
)

from hotline.api.auth import Principal, Role, require_websocket
from hotline.types import ack_stream, agent_stream

log = logging.getLogger(__name__)

router = APIRouter(tags=["ws"])

MAX_CLIENT_MESSAGE = 4096


async def _pump(websocket: WebSocket, bus: Any, stream: str, cursor: str | None) -> None:
    while True:
        messages = await bus.read(stream, cursor, block_ms=15000)
        for message in messages:
            await websocket.send_json({"id": message.id, **message.data})
            cursor = message.id
        if not messages and cursor is None:
            cursor = await bus.last_id(stream)


async def _receive(websocket: WebSocket, bus: Any, agent_id: str) -> None:
    while True:
        text = await websocket.receive_text()
        if len(text) > MAX_CLIENT_MESSAGE:
            log.warning("agent %s sent an oversized message; ignored", agent_id)
            continue
        try:
            message = json.loads(text)
        except ValueError:
            await websocket.send_json({"type": "error", "error_id": "bad-json"})
            continue
        if not isinstance(message, dict):
            continue
        if message.get("type") == "ack" and isinstance(message.get("linkedid"), str):
            await bus.publish(
                ack_stream(message["linkedid"][:64]), {"agent": agent_id, "at": time.time()}
            )


@router.websocket("/ws/agent")
async def agent_socket(
    websocket: WebSocket,
    principal: Annotated[Principal, Depends(require_websocket(Role.AGENT))],
    last_id: str | None = None,
    agent: str | None = None,
) -> None:
    """Pops and call updates for one agent: ``screenpop``, ``screenpop.withdrawn``,
    ``call.connected``, ``call.ended``. ``?last_id=`` resumes after a reconnect."""
    if principal.role == Role.AGENT:
        if agent not in (None, principal.agent_id):
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "agents see only their own")
        agent_id = principal.agent_id
    else:
        agent_id = agent or principal.agent_id
    if not agent_id:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "no agent id")
    bus = websocket.app.state.bus
    stream = agent_stream(agent_id)
    await websocket.accept()
    cursor = last_id if last_id else await bus.last_id(stream)
    await websocket.send_json({"type": "hello", "agent": agent_id, "last_id": cursor})
    tasks = [
        asyncio.create_task(_pump(websocket, bus, stream, cursor)),
        asyncio.create_task(_receive(websocket, bus, agent_id)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc and not isinstance(exc, WebSocketDisconnect):
                log.warning("agent %s socket ended: %s", agent_id, type(exc).__name__)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
