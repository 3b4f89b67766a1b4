"""Request-scoped dependencies every route module shares (the database session, the engine).

They read what :func:`hotline.api.app.create_app` put on ``app.state``; routes declare
them as annotated parameters (``session: SessionDep``) instead of reaching into the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

__all__ = ["EngineDep", "SessionDep", "get_engine", "get_session"]


def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed when the response is sent."""
    with request.app.state.sessionmaker() as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
