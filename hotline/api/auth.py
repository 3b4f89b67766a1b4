"""API tokens, roles and the FastAPI dependencies that enforce them on every route.

Tokens are random and only their SHA-256 is stored: a leaked database does not leak
working credentials, and a lookup by hash needs no constant-time comparison. Roles are
nested (admin ⊇ supervisor ⊇ agent) so a route names the least role it needs.

Every ``/api`` route and every WebSocket route must carry :func:`require` (or
:func:`require_websocket`); :func:`guards_of` lets a test walk ``app.routes`` and fail
on any route that forgot it. The token travels in ``Authorization: Bearer``; only
WebSocket routes also accept ``?token=``, because browsers cannot set headers on a
WebSocket, and query strings end up in access logs, so HTTP routes refuse it.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import fastapi.routing
from fastapi import Depends, Request, WebSocket, WebSocketException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from hotline.api.deps import EngineDep, get_engine
from hotline.api.errors import DatabaseUnavailable, Forbidden, NotAuthenticated
from hotline.db.models import ApiToken

__all__ = [
    "AnyPrincipal",
    "Principal",
    "Role",
    "authenticate",
    "create_token",
    "effective_routes",
    "guards_of",
    "hash_token",
    "principal_from_websocket",
    "require",
    "require_websocket",
    "revoke_token",
]

log = logging.getLogger(__name__)

_MAX_TOKEN_LENGTH = 256  # ours are 43 characters; anything huge is not worth hashing


class Role(enum.StrEnum):
    """What a token may do. Each role includes the ones below it."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, other: Role) -> bool:
        """True when this role may do everything ``other`` may."""
        return self.rank >= other.rank


_RANK = {Role.AGENT: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: the token's id, name and role, and the agent it speaks for."""

    token_id: int
    name: str
    role: Role
    agent_id: str | None = None

    def has(self, role: Role) -> bool:
        return self.role.includes(role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    engine: Engine, *, role: Role | str, name: str, agent_id: str | None = None
) -> str:
    """Create a token and return it; this is the only time the clear token exists.

    An agent token must name its agent: agents only see their own calls, so an agent
    token without an agent id would be useless and is refused with ``ValueError``.
    """
    role = Role(role)
    if role is Role.AGENT and not agent_id:
        raise ValueError("an agent token needs agent_id")
    token = secrets.token_urlsafe(32)
    with Session(engine) as session, session.begin():
        row = ApiToken(name=name, token_hash=hash_token(token), role=str(role), agent_id=agent_id)
        session.add(row)
        session.flush()
        log.info("created API token id=%s role=%s", row.id, role)
    return token


def revoke_token(engine: Engine, token: str) -> bool:
    """Revoke ``token``; return False if it was unknown. Revoked tokens stay for audit."""
    with engine.begin() as conn:
        result = conn.execute(
            update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(revoked=True)
        )
    return bool(result.rowcount)


def authenticate(engine: Engine, token: str | None) -> Principal | None:
    """Return the principal for a live token, or None (unknown, revoked, malformed)."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(
                ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.agent_id, ApiToken.revoked
            ).where(ApiToken.token_hash == hash_token(token))
        ).first()
    if row is None:
        log.info("rejected unknown API token")
        return None
    if row.revoked:
        log.info("rejected revoked API token id=%s", row.id)
        return None
    try:
        role = Role(row.role)
    except ValueError:
        log.warning("API token id=%s has an unknown role; rejected", row.id)
        return None
    return Principal(token_id=row.id, name=row.name, role=role, agent_id=row.agent_id)


def _allowed(principal: Principal, roles: frozenset[Role]) -> bool:
    return any(principal.has(role) for role in roles)


_bearer = HTTPBearer(auto_error=False, description="An API token (`hotline token create`).")


@cache
def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits a valid token whose role includes one of ``roles``.

    With no roles, any valid token passes. Use it as
    ``dependencies=[Depends(require(Role.SUPERVISOR))]`` or as a typed parameter
    ``principal: Annotated[Principal, Depends(require(Role.AGENT))]``. The result is
    cached per role set, so FastAPI resolves it once per request even when a route and
    its router both ask for it.
    """
    allowed = frozenset(Role(role) for role in roles) or frozenset({Role.AGENT})

    def dependency(
        request: Request,
        engine: EngineDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise NotAuthenticated()
        try:
            principal = authenticate(engine, credentials.credentials)
        except SQLAlchemyError as exc:
            # Not the client's fault: a 401 would log every user out during an outage.
            log.warning("cannot check API token: database error %s", type(exc).__name__)
            raise DatabaseUnavailable(
                "the database is unavailable; cannot check the token"
            ) from None
        if principal is None:
            raise NotAuthenticated("the bearer token is unknown or revoked")
        if not _allowed(principal, allowed):
            raise Forbidden(
                f"role {principal.role} may not do this",
                details={"required": sorted(str(r) for r in allowed)},
            )
        request.state.principal = principal
        return principal

    dependency.__hotline_roles__ = allowed  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return dependency


def _websocket_token(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


async def principal_from_websocket(websocket: WebSocket, *roles: Role) -> Principal:
    """Authenticate a WebSocket handshake from ``?token=`` or an Authorization header.

    Raises :class:`WebSocketException` with 1008 (policy violation), which Starlette
    turns into a refused handshake when raised before ``accept()``.
    """
    allowed = frozenset(Role(role) for role in roles) or frozenset({Role.AGENT})
    token = _websocket_token(websocket)
    try:
        principal = await run_in_threadpool(authenticate, get_engine(websocket), token)
    except SQLAlchemyError as exc:
        log.warning("cannot check API token: database error %s", type(exc).__name__)
        raise WebSocketException(status.WS_1011_INTERNAL_ERROR, "database unavailable") from None
    if principal is None:
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "a valid token is required")
    if not _allowed(principal, allowed):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "role not allowed")
    websocket.state.principal = principal
    return principal


@cache
def require_websocket(*roles: Role) -> Callable[..., Any]:
    """The WebSocket twin of :func:`require`, for ``@router.websocket(..., dependencies=...)``."""
    allowed = frozenset(Role(role) for role in roles) or frozenset({Role.AGENT})

    async def dependency(websocket: WebSocket) -> Principal:
        return await principal_from_websocket(websocket, *allowed)

    dependency.__hotline_roles__ = allowed  # type: ignore[attr-defined]
    return dependency


def _walk(dependant: Any) -> Iterator[Any]:
    yield dependant
    for sub in getattr(dependant, "dependencies", ()):
        yield from _walk(sub)


def effective_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """Every route as served, with router-level dependencies merged in.

    Recent FastAPI keeps included routers as one lazy ``_IncludedRouter`` entry in
    ``app.routes``; ``iter_route_contexts`` expands them. Older FastAPI lists the
    routes flat already.
    """
    expand = getattr(fastapi.routing, "iter_route_contexts", None)
    if expand is None:
        yield from routes
        return
    yield from expand(list(routes))


def guards_of(route: object) -> list[frozenset[Role]]:
    """The role sets :func:`require`/:func:`require_websocket` enforce on ``route``.

    ``route`` is an entry of :func:`effective_routes` (or of ``app.routes``).
    """
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return []
    return [
        roles
        for dep in _walk(dependant)
        if (roles := getattr(dep.call, "__hotline_roles__", None)) is not None
    ]


AnyPrincipal = Annotated[Principal, Depends(require())]
