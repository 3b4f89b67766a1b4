"""API tokens, roles and the FastAPI dependencies that enforce them on every route.

Tokens are random and only their SHA-256 is stored: a leaked database does not leak
working credentials, and a lookup by hash needs no constant-time comparison. Roles are
nested (admin ⊇ supervisor ⊇ agent) so a route names the least role it needs.

Every ``/api`` route and every WebSocket route must carry :func:`require` (or
:func:`require_websocket`); :func:`guards_of` lets a test walk ``app.routes`` and fail
on any route that forgot it. The token travels in ``Authorization: Bearer``; only
WebSocket routes also accept ``?token=``, because browsers cannot set headers on a
WebSocket, and query strings end up in access logs, so HTTP routes refuse it (and the
access log redacts it: :mod:`hotline.api.logs`).

A verified token is trusted for ``HOTLINE_TOKEN_CACHE_TTL`` seconds without asking the
database again (:class:`TokenCache`, bounded by ``HOTLINE_TOKEN_CACHE_SIZE``): token
checks survive a database outage that long, and a token revoked by another process
works at most that long; :func:`revoke_token` clears this process's caches at once.
A check that must ask the database goes through the bounded probe
(:class:`hotline.api.deps.DatabaseProbe`): a hung database is a 503 within
:data:`TOKEN_CHECK_TIMEOUT_S` (or ``HOTLINE_DB_PROBE_TIMEOUT`` when longer), never a 401
(docs/access.md). Checks that arrive together (2,000 pages opening after a restart) are
one query per batch, the deadline timing that query only: a healthy database answers
them all instead of refusing those queued behind the probe's small pool.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import fastapi.routing
from fastapi import Depends, Request, WebSocket, WebSocketException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from hotline.api.deps import get_probe, get_settings
from hotline.api.errors import DatabaseUnavailable, Forbidden, NotAuthenticated
from hotline.db.models import ApiToken

__all__ = [
    "TOKEN_CHECK_TIMEOUT_S",
    "AnyPrincipal",
    "Principal",
    "Role",
    "TokenCache",
    "authenticate",
    "create_token",
    "effective_routes",
    "guards_of",
    "hash_token",
    "principal_from_websocket",
    "require",
    "require_websocket",
    "revoke_token",
    "verify_token",
]

log = logging.getLogger(__name__)

_MAX_TOKEN_LENGTH = 256
# A token check may wait longer than /api/health's probe: a slow moment of a loaded
# database must not refuse a page's first request, while a hung one is still a 503
# within this bound (docs/access.md).
TOKEN_CHECK_TIMEOUT_S = 2.0


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
    for token_cache in list(_CACHES):  # this process stops trusting it now, not after the TTL
        token_cache.forget(hash_token(token))
    return bool(result.rowcount)


def _well_formed(token: str | None) -> bool:
    # Ours are 43 URL-safe characters; anything else is not worth hashing or a query.
    return bool(token) and len(token or "") <= _MAX_TOKEN_LENGTH and (token or "").isascii()


def authenticate(engine: Engine, token: str | None) -> Principal | None:
    """Return the principal for a live token, or None (unknown, revoked, malformed).

    Asks the database every time; requests go through :func:`verify_token` instead.
    """
    if not _well_formed(token):
        return None
    return _lookup(engine, hash_token(token or ""))


def _lookup(engine: Engine, token_hash: str) -> Principal | None:
    return _lookup_many(engine, [token_hash]).get(token_hash)


def _lookup_many(engine: Engine, token_hashes: list[str]) -> dict[str, Principal]:
    """The principals of the live tokens among ``token_hashes``, by hash, in one query
    (a burst of pages opening is checked a batch at a time: :func:`verify_token`)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ApiToken.token_hash,
                ApiToken.id,
                ApiToken.name,
                ApiToken.role,
                ApiToken.agent_id,
                ApiToken.revoked,
            ).where(ApiToken.token_hash.in_(token_hashes))
        ).all()
    found: dict[str, Principal] = {}
    for row in rows:
        if row.revoked:
            log.info("rejected revoked API token id=%s", row.id)
            continue
        try:
            role = Role(row.role)
        except ValueError:
            log.warning("API token id=%s has an unknown role; rejected", row.id)
            continue
        found[row.token_hash] = Principal(
            token_id=row.id, name=row.name, role=role, agent_id=row.agent_id
        )
    if unknown := len(token_hashes) - len(rows):
        log.info("rejected %d unknown API token(s)", unknown)
    return found


_CACHES: weakref.WeakSet[TokenCache] = weakref.WeakSet()


class TokenCache:
    """Principals of verified tokens by hash, each trusted ``ttl`` seconds after the
    database said so (not sliding: a revoked token is refused at most ``ttl`` after its
    last check). At most ``size`` entries; the oldest verified goes first. Unknown and
    revoked tokens are never cached. Used from the event loop only.
    """

    def __init__(
        self, *, ttl: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        _CACHES.add(self)

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if self._clock() - entry[0] >= self.ttl:
            del self._entries[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        self._entries[token_hash] = (self._clock(), principal)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, token_hash: str) -> None:
        self._entries.pop(token_hash, None)

    def __len__(self) -> int:
        return len(self._entries)


def _token_cache(conn: HTTPConnection) -> TokenCache:
    state = conn.app.state
    token_cache: TokenCache | None = getattr(state, "token_cache", None)
    if token_cache is None:
        settings = get_settings(conn)
        token_cache = state.token_cache = TokenCache(
            ttl=settings.token_cache_ttl, size=settings.token_cache_size
        )
    return token_cache


async def verify_token(conn: HTTPConnection, token: str | None) -> Principal | None:
    """The principal for ``token``: from the cache, else the database through the bounded
    probe. None for an unknown, revoked or malformed token; :class:`DatabaseUnavailable`
    when the database cannot say within the probe's timeout."""
    if not _well_formed(token):
        return None
    token_hash = hash_token(token or "")
    token_cache = _token_cache(conn)
    principal = token_cache.get(token_hash)
    if principal is not None:
        return principal
    try:
        probe = get_probe(conn)
        lookups = probe.batcher(_lookup_many, timeout=max(probe.timeout, TOKEN_CHECK_TIMEOUT_S))
        principal = await lookups.get(token_hash)
    except (SQLAlchemyError, TimeoutError) as exc:
        # Not the client's fault: a 401 would log every user out during an outage.
        log.warning("cannot check API token: database %s", type(exc).__name__)
        raise DatabaseUnavailable(
            "the database is unavailable and this token was not checked in the last "
            f"{token_cache.ttl:g} s; try again shortly",
            details={"token_cache_ttl": token_cache.ttl},
        ) from None
    if principal is not None:
        token_cache.put(token_hash, principal)
    return principal


def _allowed(principal: Principal, roles: frozenset[Role]) -> bool:
    return any(principal.has(role) for role in roles)


_bearer = HTTPBearer(auto_error=False, description="An API token (`hotline token create`).")


@cache
def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits a valid token whose role includes one of ``roles``.

    With no roles, any valid token passes. Use it as
    ``dependencies=[Depends(require(Role.SUPERVISOR))]`` or as a typed parameter
    ``principal: Annotated[Principal, Depends(require(Role.AGENT))]``. The result is
    cached per role set, so FastAPI resolves it once per request even when a route and
    its router both ask for it.
    """
    allowed = frozenset(Role(role) for role in roles) or frozenset({Role.AGENT})

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise NotAuthenticated()
        principal = await verify_token(request, credentials.credentials)
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
        principal = await verify_token(websocket, token)
    except DatabaseUnavailable:
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
