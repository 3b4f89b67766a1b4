"""Request dependencies every route module shares: what the app factory put on ``app.state``.

:func:`hotline.api.app.create_app` is the only place that sets ``app.state``; routes
declare what they read as annotated parameters (``bus: BusDep``, ``session: SessionDep``)
instead of reaching into the app, so a route's signature lists everything it touches.
They take an ``HTTPConnection``, so the WebSocket routes can use them too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Protocol

from fastapi import Depends
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from hotline.bus import Bus
from hotline.live.actions import ActionBridge, ActionRunner
from hotline.settings import Settings

__all__ = [
    "ActionsDep",
    "BridgeDep",
    "BusDep",
    "EngineDep",
    "Service",
    "ServiceDep",
    "SessionDep",
    "SessionmakerDep",
    "SettingsDep",
    "get_actions",
    "get_bridge",
    "get_bus",
    "get_engine",
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


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


def get_engine(conn: HTTPConnection) -> Engine:
    engine: Engine = conn.app.state.engine
    return engine


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
SessionmakerDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
SessionDep = Annotated[Session, Depends(get_session)]
BusDep = Annotated[Bus, Depends(get_bus)]
ServiceDep = Annotated[Service | None, Depends(get_service)]
BridgeDep = Annotated[ActionBridge | None, Depends(get_bridge)]
ActionsDep = Annotated[ActionRunner, Depends(get_actions)]
