"""``/ws/agent``: each agent's page reads its own stream and resumes from the last id.

An agent token can only ever open ``agent:<its own id>``: the stream name comes from
the token, never from the request. Supervisors and admins may watch a given agent's
stream (``?agent=``) for support. The page acknowledges each screen-pop; the ack goes
on the bus so the pre-dial step (possibly in another process) can let the phone ring.
The pump itself is :mod:`hotline.api.sockets`, shared with ``/ws/supervisor``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketException, status

from hotline.api.auth import Principal, Role, require_websocket
from hotline.api.deps import BusDep
from hotline.api.sockets import resume_cursor, serve
from hotline.bus import Bus
from hotline.types import ack_stream, agent_stream

__all__ = ["MAX_CLIENT_MESSAGE", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["ws"])

MAX_CLIENT_MESSAGE = 4096  # characters; an ack is under 100


async def _receive(websocket: WebSocket, bus: Bus, agent_id: str) -> None:
    """Acks go on the bus; anything else is answered or ignored, never fatal."""
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
    bus: BusDep,
    last_id: str | None = None,
    agent: str | None = None,
) -> None:
    """Pops and call updates for one agent: ``screenpop``, ``screenpop.withdrawn``,
    ``call.connected``, ``call.ended``. ``?last_id=`` resumes after a reconnect; one that
    is not a bus id is refused (1008, ``bad last_id``) as on ``/ws/supervisor``."""
    after = resume_cursor(last_id)
    if principal.role == Role.AGENT:
        if agent not in (None, principal.agent_id):
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "agents see only their own")
        agent_id = principal.agent_id
    else:
        agent_id = agent or principal.agent_id
    if not agent_id:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "no agent id")
    stream = agent_stream(agent_id)
    await websocket.accept()
    cursor = after if after is not None else await bus.last_id(stream)
    await websocket.send_json({"type": "hello", "agent": agent_id, "last_id": cursor})
    await serve(
        websocket,
        bus,
        stream,
        cursor,
        client=_receive(websocket, bus, agent_id),
        who=f"agent {agent_id}",
    )
