"""Request dependencies every route module shares: what the app factory put on ``app.state``.

:func:`hotline.api.app.create_app` is the only place that sets ``app.state``; routes
declare what they read as annotated parameters (``bus: BusDep``, ``session: SessionDep``)
instead of reaching into the app, so a route's signature lists everything it touches.
They take an ``HTTPConnection``, so the WebSocket routes can use them too.

The **probe** (:class:`DatabaseProbe`) is the database as the token check and
``/api/health`` see it: a pool of its own (``HOTLINE_DB_PROBE_POOL_SIZE``, no overflow),
a short connect and statement timeout and an ``asyncio`` deadline
(``HOTLINE_DB_PROBE_TIMEOUT``), so a hung database costs a request that much and never
more, and the request pool the routes use cannot starve it (docs/access.md). Look-ups
that come in bursts (a token check per page opening) go through
:meth:`DatabaseProbe.batcher`: one query per batch, so a healthy database answers 2,000
pages at once instead of timing out the ones queued behind a pool of four.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from functools import partial
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends
from sqlalchemy import Engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from hotline.bus import Bus
from hotline.bus.batch import Batcher
from hotline.db.session import make_engine
from hotline.live.actions import ActionBridge, ActionRunner
from hotline.settings import Settings

__all__ = [
    "ActionsDep",
    "BridgeDep",
    "BusDep",
    "DatabaseProbe",
    "EngineDep",
    "ProbeDep",
    "Service",
    "ServiceDep",
    "SessionDep",
    "SessionmakerDep",
    "SettingsDep",
    "get_actions",
    "get_bridge",
    "get_bus",
    "get_engine",
    "get_probe",
    "get_service",
    "get_session",
    "get_sessionmaker",
    "get_settings",
]


class Service(Protocol):
    """The telephony service the API may run (:class:`hotline.service.CallService`).

    It may also have a ``bus`` (the API then shares it) and a ``bridge`` (actions and the
    membership sync go through it); both are optional, so they are read with ``getattr``.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ami_status(self) -> Mapping[str, object]: ...


log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PROBE_CACHE_S = 1.5  # /api/health's database answer is reused this long (no probe storm)


def _probe_engine(main: Engine, timeout: float, pool_size: int) -> Engine:
    """A small engine on ``main``'s database whose every wait is bounded by ``timeout``."""
    url = main.url
    if url.get_backend_name() == "postgresql":
        # libpq takes whole seconds (and at least 2); the asyncio deadline is the real bound.
        connect_s = max(2, math.ceil(timeout))
        statement_ms = max(1, int(timeout * 1000))
        return make_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=timeout,
            connect_args={
                "connect_timeout": connect_s,
                "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
            },
        )
    if url.database in (None, "", ":memory:"):  # a single-connection pool: nothing to size
        return make_engine(url)
    engine = make_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=timeout)

    @event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_conn: DBAPIConnection, _record: object) -> None:
        cursor = dbapi_conn.cursor()  # after make_engine's own pragmas, so this one wins
        try:
            cursor.execute(f"PRAGMA busy_timeout={max(1, int(timeout * 1000)):d}")
        finally:
            cursor.close()

    return engine


class DatabaseProbe:
    """Bounded reads for the token check and ``/api/health`` (see the module docstring).

    Built by the app factory for the app's engine; when a test swaps ``app.state.engine``
    (to simulate an outage) :func:`get_probe` builds a new probe for it.
    """

    def __init__(self, main: Engine, *, timeout: float, pool_size: int) -> None:
        self.main = main
        self.timeout = timeout
        self.engine = _probe_engine(main, timeout, pool_size)
        self._last: tuple[float, dict[str, Any]] | None = None
        self._inflight: asyncio.Task[dict[str, Any]] | None = None
        self._batchers: dict[object, Batcher[Any, Any]] = {}

    async def run(self, work: Callable[[Engine], T], *, timeout: float | None = None) -> T:
        """``work(engine)`` in a worker thread, given up after ``timeout`` (default: the
        probe's) with :class:`TimeoutError` (the thread ends on its own: the pool and the
        statement timeout bound it, so a hung database holds at most ``pool_size``
        threads)."""
        deadline = self.timeout if timeout is None else timeout
        return await asyncio.wait_for(run_in_threadpool(work, self.engine), deadline)

    def batcher(
        self,
        work: Callable[[Engine, list[K]], Mapping[K, V]],
        *,
        timeout: float,
        max_batch: int = 500,
    ) -> Batcher[K, V]:
        """This probe's :class:`~hotline.bus.batch.Batcher` for ``work(engine, keys)``
        (one per ``work``): keys asked together are looked up together, one batch at a
        time, each batch's query under ``timeout``. The deadline times the database work
        only, not the wait behind other callers; a batch that fails fails those queued
        behind it too, so a hung database still answers each caller within ``timeout``."""
        found = self._batchers.get(work)
        if found is None:

            async def fetch(keys: list[K]) -> Mapping[K, V]:
                return await self.run(partial(_on_keys, work, keys), timeout=timeout)

            found = self._batchers[work] = Batcher(fetch, max_batch=max_batch)
        batcher: Batcher[K, V] = found
        return batcher

    async def check(self) -> dict[str, Any]:
        """``{"ok", "backend", "latency_ms" | "error"}``, cached for ``PROBE_CACHE_S``;
        concurrent callers share one probe."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < PROBE_CACHE_S:
            return self._last[1]
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._probe())
        result = await asyncio.shield(self._inflight)
        self._last = (time.monotonic(), result)
        return result

    async def _probe(self) -> dict[str, Any]:
        backend = self.main.dialect.name
        started = time.perf_counter()
        try:
            await self.run(_select_one)
        except Exception as exc:  # any failure is a finding, not an error
            log.warning("database probe failed: %s", type(exc).__name__)
            return {"ok": False, "backend": backend, "error": type(exc).__name__}
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {"ok": True, "backend": backend, "latency_ms": latency}

    def dispose(self) -> None:
        self.engine.dispose()


def _on_keys(
    work: Callable[[Engine, list[K]], Mapping[K, V]], keys: list[K], engine: Engine
) -> Mapping[K, V]:
    return work(engine, keys)


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


def get_engine(conn: HTTPConnection) -> Engine:
    engine: Engine = conn.app.state.engine
    return engine


def get_probe(conn: HTTPConnection) -> DatabaseProbe:
    """The app's :class:`DatabaseProbe`, rebuilt when ``app.state.engine`` was swapped."""
    state = conn.app.state
    probe: DatabaseProbe | None = getattr(state, "probe", None)
    if probe is None or probe.main is not state.engine:
        settings: Settings = state.settings
        if probe is not None:
            probe.dispose()
        probe = state.probe = DatabaseProbe(
            state.engine,
            timeout=settings.db_probe_timeout,
            pool_size=settings.db_probe_pool_size,
        )
    return probe


def get_sessionmaker(conn: HTTPConnection) -> sessionmaker[Session]:
    """For async routes that open a session in a worker thread, only when they need one."""
    factory: sessionmaker[Session] = conn.app.state.sessionmaker
    return factory


def get_session(conn: HTTPConnection) -> Iterator[Session]:
    """One session per request, closed when the response is sent."""
    with get_sessionmaker(conn)() as session:
        yield session


def get_bus(conn: HTTPConnection) -> Bus:
    bus: Bus = conn.app.state.bus
    return bus


def get_service(conn: HTTPConnection) -> Service | None:
    service: Service | None = conn.app.state.service
    return service


def get_bridge(conn: HTTPConnection) -> ActionBridge | None:
    """The service's AMI bridge, or None when this process runs no service.

    None rather than an error: each route says which error it reports, and a refusal here
    would come before the request body is checked.
    """
    bridge: ActionBridge | None = getattr(conn.app.state.service, "bridge", None)
    return bridge


def get_actions(conn: HTTPConnection) -> ActionRunner:
    actions: ActionRunner = conn.app.state.actions
    return actions


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ProbeDep = Annotated[DatabaseProbe, Depends(get_probe)]
SessionmakerDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
SessionDep = Annotated[Session, Depends(get_session)]
BusDep = Annotated[Bus, Depends(get_bus)]
ServiceDep = Annotated[Service | None, Depends(get_service)]
BridgeDep = Annotated[ActionBridge | None, Depends(get_bridge)]
ActionsDep = Annotated[ActionRunner, Depends(get_actions)]
