"""A minimal agent-page client over ``/ws/agent``: what the page does, without a browser.

Used by end-to-end tests and the lead-time bench: it stamps each message with the wall
clock at arrival (the same clock SIPp stamps INVITEs with) and acknowledges screen-pops
at once, as the page does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass(slots=True)
class Received:
    at: float
    message: dict[str, Any]


@dataclass
class AgentClient:
    base_url: str  # http://127.0.0.1:port
    token: str
    ack: bool = True
    last_id: str | None = None
    received: list[Received] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        params = {"token": self.token}
        if self.last_id:
            params["last_id"] = self.last_id
        return self.base_url.replace("http", "ws", 1) + "/ws/agent?" + urlencode(params)

    async def __aenter__(self) -> AgentClient:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        import websockets

        async with websockets.connect(self.url, max_size=2**20) as ws:
            async for raw in ws:
                at = time.time()
                message = json.loads(raw)
                if message.get("type") == "hello":
                    self._ready.set()
                    continue
                if self.ack and message.get("type") == "screenpop":
                    await ws.send(json.dumps({"type": "ack", "linkedid": message.get("linkedid")}))
                self.received.append(Received(at, message))
                self.last_id = message.get("id", self.last_id)
                self._changed.set()

    def of_type(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.message.get("type") == kind]

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0
    ) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True
