"""Every error the API reports, one class per stable machine id.

Errors are classes with a stable machine id (``error_id``), rendered by one handler
(``hotline.api.app``) as ``{"error_id", "message", "details"}``: clients branch on the id,
people read the message, and nothing raises a bare ``HTTPException(detail=...)``. The
route modules' own errors (an unknown agent, customer or call; a refused AMI action) live
here too, so one id has one class and one status everywhere. ``error_id`` values are a
contract with the pages and scripts: never rename one.
"""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

__all__ = [
    "BODY_ERRORS",
    "AMINotConnected",
    "AMIRefused",
    "AMITimeout",
    "AMIUnavailable",
    "AgentBusy",
    "AgentNotOnCall",
    "BadRequest",
    "BodyTooLarge",
    "CustomerNotAllowed",
    "DatabaseUnavailable",
    "ErrorOut",
    "Forbidden",
    "HotlineError",
    "InterfaceInUse",
    "InvalidRequest",
    "InvalidText",
    "LiveStoreUnavailable",
    "LiveUnavailable",
    "NoLiveCall",
    "NoSuchAbandon",
    "NoSuchAgent",
    "NoSuchCall",
    "NoSuchCustomer",
    "NoSuchQueue",
    "NotAuthenticated",
    "NotDiallable",
    "ServiceNotRunning",
    "ServiceUnavailable",
    "error_response",
    "responses",
]


class HotlineError(Exception):
    """An error the API reports to its client as ``{"error_id", "message", "details"}``.

    Subclasses set ``status_code``, ``error_id`` and a ``default_message``; the
    constructor's arguments override them for one instance.
    """

    status_code = 500
    error_id = "internal-error"
    default_message = "internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        error_id: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)
        if error_id is not None:
            self.error_id = error_id
        if status_code is not None:
            self.status_code = status_code
        self.details: dict[str, Any] = details or {}
        self.headers = headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(error_id={self.error_id!r}, message={self.message!r})"


class ErrorOut(BaseModel):
    """The body of every error response (the OpenAPI schema of 4xx/5xx answers)."""

    error_id: str = Field(description="Stable machine id; clients branch on it.")
    message: str = Field(description="For people; may change between versions.")
    details: dict[str, Any] = Field(default_factory=dict)


def error_response(
    status_code: int,
    error_id: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one renderer of ``{"error_id", "message", "details"}`` (handlers, middleware)."""
    body = {"error_id": error_id, "message": message, "details": details or {}}
    return JSONResponse(jsonable_encoder(body), status_code=status_code, headers=headers)


def responses(*errors: type[HotlineError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` mapping for routes that may raise ``errors``.

    One entry per status; its description lists every ``error_id`` that status can carry
    on that route, so a client sees in the schema which ids to branch on.
    """
    ids: dict[int, list[str]] = {}
    for error in errors:
        found = ids.setdefault(error.status_code, [])
        if error.error_id not in found:
            found.append(error.error_id)
    return {
        status: {
            "model": ErrorOut,
            "description": "error_id: " + ", ".join(f"`{i}`" for i in sorted(found)),
        }
        for status, found in sorted(ids.items())
    }


# -- the request and its principal ----------------------------------------------------------


class InvalidRequest(HotlineError):
    status_code = 422
    error_id = "invalid-request"
    default_message = "the request is not valid"


class InvalidText(HotlineError):
    """400: text the API never stores: a NUL, a lone surrogate, bytes that are not UTF-8.

    One rule for the path, the query and every JSON body (:mod:`hotline.api.inputs`),
    checked before routing, so every route may answer it; ``details`` say where
    (``where``, ``field``) so the page can point at the field, and the page keeps what
    the agent typed (docs/access.md). 400, not 422: the bytes are malformed whatever the
    route, before any parameter is read.
    """

    status_code = 400
    error_id = "invalid-text"
    default_message = "the request holds text that is not valid (NUL or not UTF-8)"


class BodyTooLarge(HotlineError):
    status_code = 413
    error_id = "body-too-large"
    default_message = "the request body is too large"


class BadRequest(HotlineError):
    """400: a body that cannot be read at all (FastAPI's own parse error, rendered by the
    app's handler with this id)."""

    status_code = 400
    error_id = "bad-request"
    default_message = "the request body cannot be parsed"


BODY_ERRORS = (BadRequest, BodyTooLarge)  # what any route with a JSON body may add


class NotAuthenticated(HotlineError):
    """401: no token, an unknown one or a revoked one; the client should log in again."""

    status_code = 401
    error_id = "not-authenticated"
    default_message = "a valid bearer token is required"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HotlineError):
    """403: the token is valid but its role does not allow this."""

    status_code = 403
    error_id = "forbidden"
    default_message = "not allowed"


class CustomerNotAllowed(Forbidden):
    """403: an agent asked for a customer outside their calls and searches (docs/access.md)."""

    error_id = "customer-not-allowed"
    default_message = "agents open only the customers of their own calls and searches"


# -- things that do not exist ----------------------------------------------------------------


class NoSuchAgent(HotlineError):
    status_code = 404
    error_id = "no-such-agent"
    default_message = "no agent with that id"


class NoSuchQueue(HotlineError):
    """404; ``details["queues"]`` lists the queues that do exist."""

    status_code = 404
    error_id = "no-such-queue"
    default_message = "no such queue"


class NoSuchCall(HotlineError):
    status_code = 404
    error_id = "no-such-call"
    default_message = "no call with that id"


class NoSuchCustomer(HotlineError):
    status_code = 404
    error_id = "no-such-customer"
    default_message = "no customer with that id"


class NoLiveCall(HotlineError):
    status_code = 404
    error_id = "no-live-call"
    default_message = "no agent is on a live call with that id"


class NoSuchAbandon(HotlineError):
    status_code = 404
    error_id = "no-such-abandon"
    default_message = "no abandoned caller with that id today"


# -- conflicts --------------------------------------------------------------------------------


class InterfaceInUse(HotlineError):
    """409: another agent already has that phone interface."""

    status_code = 409
    error_id = "interface-in-use"
    default_message = "that interface belongs to another agent"


class AgentNotOnCall(HotlineError):
    status_code = 409
    error_id = "agent-not-on-call"
    default_message = "that agent is not on a call"


class AgentBusy(HotlineError):
    status_code = 409
    error_id = "agent-busy"
    default_message = "the agent is busy"


class NotDiallable(HotlineError):
    """422: the number is withheld, or not one the trunk can dial."""

    status_code = 422
    error_id = "not-diallable"
    default_message = "the caller's number is withheld or not diallable"


class AMIRefused(HotlineError):
    """409: Asterisk refused the action; ``details`` carry its reason."""

    status_code = 409
    error_id = "ami-refused"
    default_message = "Asterisk refused the action"


class AMITimeout(HotlineError):
    status_code = 504
    error_id = "ami-timeout"
    default_message = "Asterisk did not answer in time"


# -- what this process cannot reach ---------------------------------------------------------


class ServiceUnavailable(HotlineError):
    status_code = 503
    error_id = "service-unavailable"
    default_message = "a service this request needs is unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """Not the client's fault: a 401 instead would log every user out during an outage."""

    error_id = "database-unavailable"
    default_message = "the database is unavailable"


class AMIUnavailable(ServiceUnavailable):
    """No AMI link for an action: this process runs no bridge, or the link is down."""

    error_id = "ami-unavailable"
    default_message = "AMI is not connected"


class ServiceNotRunning(ServiceUnavailable):
    """The membership sync's twin of :class:`AMIUnavailable`: no bridge in this process."""

    error_id = "service-not-running"
    default_message = "no AMI bridge runs in this process"


class AMINotConnected(ServiceUnavailable):
    """The membership sync's twin of :class:`AMIUnavailable`: the link is down."""

    error_id = "ami-not-connected"
    default_message = "the AMI link is down"


class LiveUnavailable(ServiceUnavailable):
    error_id = "live-unavailable"
    default_message = "no live snapshot yet: the AMI service has not published one"


class LiveStoreUnavailable(ServiceUnavailable):
    error_id = "live-store-unavailable"
    default_message = "the live store is unavailable"
