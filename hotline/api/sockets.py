"""The one WebSocket pump, shared by ``/ws/agent`` and ``/ws/supervisor``.

Both sockets do the same after their first frame: forward a bus stream from a cursor
while reading the client, and end both the moment either ends. A page resumes by
passing the last id it saw (``?last_id=``), so every forwarded frame carries its bus
``id``. What differs stays in the routes: who may open which stream, the first frame
(``hello`` or a snapshot) and what the client may send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine
from typing import Any, Final

from fastapi import WebSocket, WebSocketDisconnect

from hotline.bus import Bus

__all__ = ["READ_BLOCK_MS", "drain", "is_stream_id", "pump", "serve"]

log = logging.getLogger(__name__)

READ_BLOCK_MS: Final = 15000
"""How long one bus read may wait before the pump loops; bounds how late a dead bus shows."""

_STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def is_stream_id(value: str) -> bool:
    """True for a bus message id (``<ms>-<seq>``), the only thing ``?last_id=`` may hold."""
    return _STREAM_ID.match(value) is not None


async def pump(websocket: WebSocket, bus: Bus, stream: str, cursor: str) -> None:
    """Forward every message of ``stream`` after id ``cursor``, each with its ``id``."""
    while True:
        for message in await bus.read(stream, cursor, block_ms=READ_BLOCK_MS):
            await websocket.send_json({"id": message.id, **message.data})
            cursor = message.id


async def drain(websocket: WebSocket) -> None:
    """Read and drop what the client sends: reading is how a closed socket is noticed."""
    while True:
        await websocket.receive_text()


async def serve(
    websocket: WebSocket,
    bus: Bus,
    stream: str,
    cursor: str,
    *,
    client: Coroutine[Any, Any, None],
    who: str,
) -> None:
    """Run :func:`pump` and ``client`` (the route's reader) until either ends.

    A client that leaves ends it quietly; any other failure is logged once with ``who``
    (``agent 1001``, ``supervisor token 7``) and its exception class, never its text.
    Both tasks are cancelled and awaited before this returns.
    """
    tasks = [
        asyncio.create_task(pump(websocket, bus, stream, cursor)),
        asyncio.create_task(client),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, WebSocketDisconnect):
                log.warning("%s socket ended: %s", who, type(error).__name__)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
