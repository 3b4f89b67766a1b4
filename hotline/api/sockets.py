"""The one WebSocket pump, shared by ``/ws/agent`` and ``/ws/supervisor``.

Both sockets do the same after their first frame: forward a bus stream from a cursor
while reading the client, and end both the moment either ends. A page resumes by
passing the last id it saw (``?last_id=``, checked by :func:`resume_cursor`, one rule for
both), so every forwarded frame carries its bus ``id``. What differs stays in the routes:
who may open which stream, the first frame (``hello`` or a snapshot) and what the client
may send.

No socket reads the bus itself: it subscribes (:meth:`hotline.bus.Bus.subscribe`) and the
process's few readers (a blocking XREAD each, over many streams) fan each stream out in
memory, so an idle page holds no Redis connection and no read timeout can end it
(docs/benchmarks.md, "Pages on one process").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine
from typing import Any, Final

from fastapi import WebSocket, WebSocketDisconnect, WebSocketException, status

from hotline.bus import Bus, Subscription, SubscriptionDropped

__all__ = ["BAD_LAST_ID", "FELL_BEHIND", "drain", "is_stream_id", "pump", "resume_cursor", "serve"]

log = logging.getLogger(__name__)

BAD_LAST_ID: Final = "bad last_id"
"""The close reason (code 1008, before the handshake completes) for a malformed ``?last_id=``."""

FELL_BEHIND: Final = 1013
"""Close code ("try again later") for a page that stopped reading while a whole stream went
by: it reconnects with its ``last_id`` and gets what is still kept."""

_STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


def is_stream_id(value: str) -> bool:
    """True for a bus message id (``<ms>-<seq>``), the only thing ``?last_id=`` may hold."""
    return _STREAM_ID.match(value) is not None


def resume_cursor(last_id: str | None) -> str | None:
    """``?last_id=`` checked: absent means "from now on"; anything else must be a bus id.

    Refused with 1008 before the socket is accepted, the same way on both sockets: a cursor
    that is not an id would read nothing (or everything) without saying so.
    """
    if last_id is not None and not is_stream_id(last_id):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, BAD_LAST_ID)
    return last_id


async def pump(websocket: WebSocket, subscription: Subscription) -> None:
    """Forward every message the subscription gets, each with its ``id``, in id order."""
    while True:
        for message in await subscription.next():
            await websocket.send_json({"id": message.id, **message.data})


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
    """Subscribe to ``stream`` after ``cursor`` and run :func:`pump` and ``client`` (the
    route's reader) until either ends.

    A client that leaves ends it quietly; a page that fell a whole stream behind is closed
    with :data:`FELL_BEHIND` so it resumes by id; any other failure is logged once with
    ``who`` (``agent 1001``, ``supervisor token 7``) and its exception class, never its
    text. Both tasks are cancelled and awaited, and the subscription closed, before this
    returns, whatever ends it (cancellation included).
    """
    try:
        subscription = await bus.subscribe(stream, cursor)
    except BaseException:
        client.close()  # never started: no "coroutine was never awaited"
        raise
    tasks = [
        asyncio.create_task(pump(websocket, subscription)),
        asyncio.create_task(client),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if isinstance(error, SubscriptionDropped):
                log.warning("%s socket fell behind (%s); closed to resume by id", who, error)
                with contextlib.suppress(Exception):
                    await websocket.close(FELL_BEHIND, "fell behind; resume with last_id")
            elif error is not None and not isinstance(error, WebSocketDisconnect):
                log.warning("%s socket ended: %s", who, type(error).__name__)
    finally:
        subscription.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
