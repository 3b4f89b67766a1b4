"""The FastAPI application factory.

Nothing is built at import time: :func:`create_app` takes the settings (and the
optional telephony service), and the lifespan opens the database, migrates it to head
(so a first run on SQLite just works) and starts the service. Tests build as many apps
as they like, each on its own database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline.api.auth import TokenCache
from hotline.api.deps import DatabaseProbe, Service
from hotline.api.errors import (
    DatabaseUnavailable,
    HotlineError,
    InvalidRequest,
    InvalidText,
    NotAuthenticated,
    error_response,
    responses,
)
from hotline.api.inputs import TextGuard
from hotline.api.routes import (
    actions,
    agents_admin,
    calls,
    customers,
    health,
    routing,
    supervisor,
    ws,
)
from hotline.bus import Bus, make_bus
from hotline.db.session import make_engine, session_factory, upgrade
from hotline.live.actions import ActionRunner
from hotline.settings import Settings
from screenpop import web

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_HTTP_ERROR_IDS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
}


def _version() -> str:
    try:
        return version("hotline")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _operation_id(route: APIRoute) -> str:
    """Stable ids (``calls-list``) keep generated clients for the pages stable."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


_error = error_response

# What any /api route may answer besides its own errors: bad text (400, before routing),
# no or a bad token (401), a bad parameter or body (422), and the database down while
# the token or the route needs it (503). 403/404/409/413 are declared per route.
COMMON_RESPONSES = responses(InvalidText, NotAuthenticated, InvalidRequest, DatabaseUnavailable)

# The database gone, hung or out of connections: a 503 the client may retry, not a 500.
_DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


async def _hotline_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HotlineError)
    return _error(exc.status_code, exc.error_id, exc.message, exc.details, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # loc/msg/type only: "input" may echo a whole payload, "ctx" may hold exceptions.
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    shown = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in errors[:3])
    message = f"the request is not valid: {shown}" if shown else "the request is not valid"
    return _error(422, "invalid-request", message[:500], {"errors": errors})


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_id = _HTTP_ERROR_IDS.get(exc.status_code, f"http-{exc.status_code}")
    headers = dict(exc.headers) if exc.headers else None
    return _error(exc.status_code, error_id, str(exc.detail), headers=headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    error = DatabaseUnavailable()
    return _error(error.status_code, error.error_id, error.message)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal-error", "internal error; see the server log")


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    """Build the API. ``service`` (the AMI bridge pipeline) is started and stopped with it.

    Without a service the API serves the database alone, ``/api/health`` reports the
    bridge as not running and supervisor actions answer 503. This is the only place that
    sets ``app.state`` (read through :mod:`hotline.api.deps`): ``settings``, ``service``,
    ``engine``, ``sessionmaker``, ``bus`` and ``actions``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        probe: DatabaseProbe | None = None
        try:
            await run_in_threadpool(upgrade, engine)
            app.state.engine = engine
            app.state.sessionmaker = session_factory(engine)
            probe = app.state.probe = DatabaseProbe(
                engine, timeout=settings.db_probe_timeout, pool_size=settings.db_probe_pool_size
            )
            # One bus per process: the service's when it runs here (its pushes and our
            # sockets must meet), else our own (Redis when configured).
            service_bus: Bus | None = getattr(service, "bus", None)
            bus = make_bus(settings.redis_url) if service_bus is None else service_bus
            app.state.bus = bus
            # Originates that outlive their request belong to this app, not to a module.
            actions = ActionRunner(bus)
            app.state.actions = actions
            if service is not None:
                await service.start()
            try:
                yield
            finally:
                await actions.close()
                if service is not None:
                    await service.stop()
                if service_bus is None:
                    await bus.close()
        finally:
            current: DatabaseProbe | None = getattr(app.state, "probe", None)
            for each in {id(p): p for p in (probe, current) if p is not None}.values():
                each.dispose()
            engine.dispose()

    app = FastAPI(
        title="Hotline",
        version=_version(),
        description="Call-centre backend: call log, screen-pop, routing and live queues.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.token_cache = TokenCache(ttl=settings.token_cache_ttl, size=settings.token_cache_size)
    app.add_middleware(TextGuard, max_body_bytes=settings.api_max_body_bytes)
    app.add_exception_handler(HotlineError, _hotline_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for database_down in _DATABASE_DOWN:
        app.add_exception_handler(database_down, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)
    for router in (
        calls.router,
        health.router,
        routing.router,
        customers.router,
        agents_admin.router,
        supervisor.router,
        actions.router,
    ):
        app.include_router(router, responses=COMMON_RESPONSES)
    app.include_router(ws.router)
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    return app
