"""No API token in any log line: the filter that redacts them, and where it is installed.

Browsers cannot set headers on a WebSocket, so the pages send their token as
``/ws/agent?token=…`` (:mod:`hotline.api.auth`), and uvicorn logs every request line and
WebSocket handshake with its query string (``uvicorn.access``, ``uvicorn.error``). A log
file is read by more people than the token's owner, so :class:`RedactTokens` rewrites
every secret-looking query value and every ``Bearer`` credential to ``[redacted]`` in
the message and in its arguments (uvicorn's access formatter reads the arguments, not
the message). ``hotline serve`` and ``hotline demo`` install it through
:func:`install_redaction` and :func:`uvicorn_log_config` (docs/access.md).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

__all__ = ["SECRET_KEYS", "RedactTokens", "install_redaction", "redact", "uvicorn_log_config"]

SECRET_KEYS = frozenset({"token", "access_token", "api_key", "apikey", "key", "secret", "password"})
REDACTED = "[redacted]"

# ``key=value`` after ``?`` or ``&`` (or at the start): the key is compared percent-decoded,
# because Starlette decodes it too (``?%74oken=`` is the token).
_PAIR = re.compile(r"(?P<lead>^|[?&;\s])(?P<key>[^=&?;\s\"']+)=(?P<value>[^&;\s\"']*)")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+")
_PLAIN = (str, int, float, bool, type(None))

# The loggers whose records carry request lines: uvicorn's, and the WebSocket library's.
_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "wsproto")


def _pair(match: re.Match[str]) -> str:
    key = match["key"]
    if unquote(key).strip().lower() in SECRET_KEYS and match["value"]:
        return f"{match['lead']}{key}={REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    """``text`` with every secret query value and Bearer credential replaced."""
    if "=" in text:
        text = _PAIR.sub(_pair, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    return text


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    shown = str(value)  # a URL object, bytes, …: keep it unless it holds a secret
    cleaned = redact(shown)
    return value if cleaned == shown else cleaned


class RedactTokens(logging.Filter):
    """Rewrites a record's message and arguments in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redacted(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redacted(v) for k, v in args.items()}
        return True


_FILTER = RedactTokens()


def _add(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactTokens) for f in target.filters):
        target.addFilter(_FILTER)


def install_redaction() -> None:
    """Put :class:`RedactTokens` on the loggers that log request lines (a logger's own
    filters survive uvicorn's ``dictConfig``) and on every root handler (records that
    propagate). Idempotent."""
    for name in _LOGGERS:
        _add(logging.getLogger(name))
    for handler in logging.getLogger().handlers:
        _add(handler)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactTokens` on each handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in config.get("handlers", {}).values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
