"""HTTP API: shared errors and request-scoped dependencies.

Everything a route module needs from the API layer lives here, below the app factory
(``hotline.api.app``), so routes and :mod:`hotline.auth` can import it without an
import cycle through ``create_app``.

Errors are classes with a stable machine id (``error_id``), rendered by one handler as
``{"error_id", "message", "details"}``: clients branch on the id, people read the
message, and nothing raises a bare ``HTTPException(detail=...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

__all__ = [
    "EngineDep",
    "Forbidden",
    "HotlineError",
    "InvalidRequest",
    "NotAuthenticated",
    "ServiceUnavailable",
    "SessionDep",
    "get_engine",
    "get_session",
]


class HotlineError(Exception):
    """An error the API reports to its client as ``{"error_id", "message", "details"}``."""

    status_code = 500
    error_id = "internal-error"

    def __init__(
        self,
        message: str,
        *,
        error_id: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_id is not None:
            self.error_id = error_id
        if status_code is not None:
            self.status_code = status_code
        self.details: dict[str, Any] = details or {}
        self.headers = headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(error_id={self.error_id!r}, message={self.message!r})"


class InvalidRequest(HotlineError):
    status_code = 422
    error_id = "invalid-request"


class NotAuthenticated(HotlineError):
    """401: no token, an unknown one or a revoked one; the client should log in again."""

    status_code = 401
    error_id = "not-authenticated"

    def __init__(self, message: str = "a valid bearer token is required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HotlineError):
    """403: the token is valid but its role does not allow this."""

    status_code = 403
    error_id = "forbidden"


class ServiceUnavailable(HotlineError):
    status_code = 503
    error_id = "service-unavailable"


def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed when the response is sent."""
    with request.app.state.sessionmaker() as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
