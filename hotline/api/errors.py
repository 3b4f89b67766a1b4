"""Every error the API reports, with a stable machine id.

Errors are classes with a stable machine id (``error_id``), rendered by one handler
(``hotline.api.app``) as ``{"error_id", "message", "details"}``: clients branch on the id,
people read the message, and nothing raises a bare ``HTTPException(detail=...)``. The
route modules' own errors (an unknown agent, customer or call) live here too, so one id
has one class and one status everywhere.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Forbidden",
    "HotlineError",
    "InvalidRequest",
    "NotAuthenticated",
    "ServiceUnavailable",
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
