"""What text the API accepts, checked in one place for the URL and every JSON body.

PostgreSQL cannot store a NUL in ``text``/``varchar`` (psycopg raises ``DataError``) and
no database stores a lone surrogate (it is not UTF-8), so such a value used to pass
validation and fail at the database with a 500 — the agent's wrap-up notes were lost
with it. The rule (docs/access.md) is **reject, never strip**: stripping would change
what the agent typed without telling them, while a 400 ``invalid-text`` lets the page
say so and keep the text. :class:`TextGuard`, an ASGI middleware in front of every
route, applies it to:

* the path and the query string, percent-decoded: a NUL, or bytes that are not UTF-8
  (``%FF``, an encoded surrogate ``%ED%A0%80``), are refused before routing;
* every JSON body (and a body without a content type, which FastAPI reads as JSON),
  walked whole — keys too — for a NUL or a lone surrogate (``"\\u0000"``, ``"\\ud800"``);
  a body over ``HOTLINE_API_MAX_BODY_BYTES`` is a 413 before it is read into memory.

WebSockets get the same URL check (a refused handshake); their messages go through
:func:`text_problem`. Oversized strings are each model's ``max_length`` (a 422).

:data:`IsoDateTime` is the one type of a date-time query parameter: ISO 8601 only
(pydantic alone also takes ``0.5`` as a Unix time, which the schema's ``date-time`` does
not allow), returned aware in UTC (naive means UTC), out-of-range values a 422.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.api.errors import BodyTooLarge, HotlineError, InvalidText, error_response

__all__ = ["IsoDateTime", "TextGuard", "TextProblem", "body_problem", "text_problem", "url_problem"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FIELD_SHOWN = 40  # characters of a field name echoed back in ``details``


@dataclass(frozen=True, slots=True)
class TextProblem:
    """Where bad text is (``path``, ``query``, ``body``), in which field, and what it is."""

    where: str
    field: str
    problem: str

    def error(self) -> InvalidText:
        message = f"{self.where} {self.field or ''}: {self.problem}".replace("  ", " ")
        return InvalidText(
            message.strip(),
            details={"where": self.where, "field": self.field, "problem": self.problem},
        )


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None: a NUL, or a lone surrogate."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not UTF-8)"
    return None


def _shown(raw: bytes | str) -> str:
    """A field name safe to echo: decoded leniently, no NUL, short."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text.replace("\x00", "\\x00")[:_FIELD_SHOWN]


def _bytes_problem(raw: bytes) -> str | None:
    if b"\x00" in raw:
        return "contains a NUL character"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 once percent-decoded"
    return None


def url_problem(scope: Scope) -> TextProblem | None:
    """The first bad piece of the path or query string of an HTTP or WebSocket scope."""
    raw_path = scope.get("raw_path")
    path = unquote_to_bytes(raw_path) if raw_path else str(scope.get("path", "")).encode()
    problem = _bytes_problem(path)
    if problem is None and "\x00" in str(scope.get("path", "")):
        problem = "contains a NUL character"
    if problem is not None:
        return TextProblem("path", "", problem)
    for pair in bytes(scope.get("query_string") or b"").split(b"&"):
        key, _, value = pair.partition(b"=")
        key_bytes = unquote_to_bytes(key.replace(b"+", b" "))
        for piece in (key_bytes, unquote_to_bytes(value.replace(b"+", b" "))):
            problem = _bytes_problem(piece)
            if problem is not None:
                return TextProblem("query", _shown(key_bytes), problem)
    return None


def body_problem(document: Any) -> TextProblem | None:
    """The first key or string of a parsed JSON document that :func:`text_problem` refuses.

    Walked with an explicit stack: a deeply nested body must not hit the recursion limit.
    """
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                return TextProblem("body", _shown(where), problem)
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                problem = text_problem(str(key))
                if problem is not None:
                    return TextProblem("body", _shown(name), problem)
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(value))
    return None


def _is_json(content_type: str) -> bool:
    """What FastAPI parses as JSON: no content type, ``application/json``, ``*/*+json``."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class TextGuard:
    """ASGI middleware: :func:`url_problem` on every request and WebSocket handshake,
    :func:`body_problem` on every JSON body (bounded by ``max_body_bytes``)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        found = url_problem(scope)
        if found is not None:
            await self._refuse(scope, receive, send, found.error())
            return
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            await self._checked_body(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _checked_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers") or ()}
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(scope, receive, send, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left; nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            found = _json_problem(body)
            if found is not None:
                await self._refuse(scope, receive, send, found.error())
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(
            f"the request body is over {self.max_body_bytes} bytes",
            details={"max_bytes": self.max_body_bytes},
        )

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: HotlineError) -> None:
        if scope["type"] == "websocket":  # before accept(): the handshake is refused
            await send({"type": "websocket.close", "code": 1008, "reason": error.error_id})
            return
        response = error_response(error.status_code, error.error_id, error.message, error.details)
        await response(scope, receive, send)


def _json_problem(body: bytes) -> TextProblem | None:
    try:
        document = json.loads(body)
    except UnicodeDecodeError:
        return TextProblem("body", "", "is not UTF-8")
    except (ValueError, RecursionError):  # not JSON: FastAPI answers it (422/400)
        return None
    return body_problem(document)


# -- date-times ------------------------------------------------------------------------------

_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


def _iso_only(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_8601.fullmatch(value.strip()):
        return value.strip()
    raise PydanticCustomError(
        "date_time_format",
        "must be an ISO 8601 date-time such as 2026-01-31T08:00:00+08:00 (naive means UTC)",
    )


def _in_utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "date_time_range", "the date-time is out of range once in UTC"
        ) from None


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]
"""A date-time parameter: ISO 8601 text only, returned aware in UTC (naive means UTC)."""
