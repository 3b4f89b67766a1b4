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

__all__ = [
    "AMINotConnected",
    "AMIRefused",
    "AMITimeout",
    "AMIUnavailable",
    "AgentBusy",
    "AgentNotOnCall",
    "DatabaseUnavailable",
    "Forbidden",
    "HotlineError",
    "InterfaceInUse",
    "InvalidRequest",
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


# -- the request and its principal ----------------------------------------------------------


class InvalidRequest(HotlineError):
    status_code = 422
    error_id = "invalid-request"
    default_message = "the request is not valid"


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
