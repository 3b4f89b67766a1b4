"""The API served for real (uvicorn, real sockets) with a Redis bus, on a thread of its own.

Used by the page tests (tests/unit/test_pages_on_redis.py), the long idle socket
(tests/soak/) and the sockets bench (bench/sockets.py). The server runs its own event loop
on a daemon thread, like :class:`tests.support.fault_proxy.FaultProxy`, so it keeps
serving whatever the caller's loop does (a test's loop comes and goes; the soak socket
must outlive many of them). The bus keys live under a prefix of the caller's own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hotline.bus import Bus, RedisBus


class BusOnly:
    """The service the API runs alongside: only its bus (so the keys take our prefix)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.bus.close()

    def ami_status(self) -> Mapping[str, object]:
        return {"connected": False}


@dataclass
class Pages:
    """``Pages(db_url, redis_url, agents=N).start()``: N agent tokens, one supervisor's."""

    db_url: str
    redis_url: str
    agents: int = 1
    prefix: str = field(default_factory=lambda: f"test-pages-{uuid.uuid4().hex[:8]}:")
    tokens: dict[str, str] = field(default_factory=dict)  # agent id → token
    supervisor: str = ""
    port: int = 0
    bus: Any = None  # the server's RedisBus (read it from the server's thread only)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def agent_ids(self) -> list[str]:
        return list(self.tokens)

    def ws_url(self, path: str, token: str, **params: str) -> str:
        from urllib.parse import urlencode

        return f"ws://127.0.0.1:{self.port}{path}?" + urlencode({"token": token, **params})

    def start(self) -> Pages:
        from hotline.api.auth import Role
        from hotline.db.session import make_engine, upgrade

        upgrade(self.db_url)
        engine = make_engine(self.db_url)
        try:
            self.tokens = _agent_tokens(engine, self.agents)
            from hotline.api.auth import create_token

            self.supervisor = create_token(engine, role=Role.SUPERVISOR, name="supervisor")
        finally:
            engine.dispose()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="pages-server", daemon=True
        )
        self._thread.start()
        if not started.wait(30) or self._server is None or not self._server.started:
            raise RuntimeError("the API server did not start")
        return self

    def _run(self, started: threading.Event) -> None:
        import uvicorn

        from hotline.api.app import create_app
        from hotline.settings import load_settings

        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        settings = load_settings(
            database_url=self.db_url,
            redis_url=self.redis_url,
            api_bind=f"127.0.0.1:{self.port}",
        )

        async def main() -> None:
            self.bus = RedisBus(self.redis_url, prefix=self.prefix)
            app = create_app(settings, service=BusOnly(self.bus))  # type: ignore[arg-type]
            config = uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", backlog=4096
            )
            self._server = uvicorn.Server(config)
            serving = asyncio.create_task(self._server.serve())
            while not self._server.started and not serving.done():
                await asyncio.sleep(0.02)
            started.set()
            await serving

        try:
            self._loop.run_until_complete(main())
        finally:
            started.set()
            self._loop.close()

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run ``coro`` on the server's loop (e.g. a look at its bus) and return the result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Pages:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _agent_tokens(engine: Any, count: int) -> dict[str, str]:
    from hotline.api.auth import Role, create_token

    started = time.monotonic()
    tokens = {
        f"{7000 + n}": create_token(engine, role=Role.AGENT, name=f"a{n}", agent_id=f"{7000 + n}")
        for n in range(count)
    }
    if time.monotonic() - started > 120:  # pragma: no cover - a hint, not a failure
        print(f"creating {count} tokens took {time.monotonic() - started:.0f} s")
    return tokens


async def publisher(redis_url: str, prefix: str) -> RedisBus:
    """A bus in the caller's loop on the same keys: another process publishing, as the
    call service does."""
    return RedisBus(redis_url, prefix=prefix)
