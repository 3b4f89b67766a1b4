"""Our own asyncio FastAGI server: the socket edge of ``ivr_flows``.

Why not ``panoramisk.fast_agi.Application``: in 1.4 a peer that disconnects before the
blank line makes its handler spin on ``read() == b""`` and freezes the whole event loop
(and the AMI bridge in the same process) at 100 % CPU; a Latin-1 ``agi_calleridname``
from a trunk raises ``UnicodeDecodeError`` and drops the call without running the route;
routes are looked up with the ``?query`` still attached; a route exception leaves the
socket open. This server:

* reads the ``agi_*`` block with one ``readuntil(b"\\n\\n")`` under ``header_timeout`` and
  a byte limit, so an early EOF, a port scan or a slow-loris costs one short-lived task;
* decodes headers with ``errors="replace"``;
* routes on the URL *path* only; the query string is parsed apart and the AGI arguments
  (``agi_arg_N``) are exposed in order (:class:`~ivr_flows.agi.AGISession`);
* runs each connection in its own task, isolates every exception to its session with
  one log line, always closes the writer, and bounds the session's total duration;
* refuses connections beyond ``max_sessions`` at once (``HOTLINE_AGI_MAX_SESSIONS``,
  256 by default): the socket is closed at once, so ``AGI()`` fails and the dialplan
  falls through with its defaults rather than the caller waiting on a backlog, and a
  warning names the cap and the setting (once per ``REFUSAL_LOG_INTERVAL`` seconds, with
  the count refused meanwhile, so a flood cannot flood the log too);
* closes a connection that sends nothing within ``header_timeout``
  (``HOTLINE_AGI_HEADER_TIMEOUT``): an idle socket holds a slot for that long only;
* counts every outcome for ``/api/health`` (:meth:`AGIServer.stats`).

It binds loopback by default: FastAGI has no authentication, so only the Asterisk on
this host should reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from ivr_flows.agi import AGIError, AGISession, CallerGone

__all__ = ["AGIHandler", "AGIServer", "SessionOutcome", "SessionReport"]

log = logging.getLogger(__name__)

AGIHandler = Callable[[AGISession], Awaitable[object]]

REFUSAL_LOG_INTERVAL = 10.0  # s between two "connection refused" warnings


class SessionOutcome(enum.StrEnum):
    """How a FastAGI connection ended; one counter each."""

    OK = "ok"
    CALLER_GONE = "caller_gone"
    EARLY_EOF = "early_eof"
    HEADER_TIMEOUT = "header_timeout"
    HEADER_TOO_LARGE = "header_too_large"
    BAD_HEADER = "bad_header"
    UNKNOWN_ROUTE = "unknown_route"
    BUSY = "busy"
    AGI_ERROR = "agi_error"
    ROUTE_ERROR = "route_error"
    SESSION_TIMEOUT = "session_timeout"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class SessionReport:
    """One finished connection, for metrics hooks and tests (no caller data in it)."""

    outcome: SessionOutcome
    path: str | None
    uniqueid: str | None
    duration: float


def normalise_path(script: str) -> tuple[str, dict[str, str]]:
    """``"/ivr/identify/?a=1"`` → ``("ivr/identify", {"a": "1"})``.

    Asterisk passes everything after the host's ``/`` as ``agi_network_script``,
    query included (``res_agi.c``), so the route key must be cut here.
    """
    parts = urlsplit(script)
    path = parts.path.strip("/")
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


class AGIServer:
    """Serve ``routes`` (``{"identify": coro_fn, ...}``) over FastAGI.

    A route is ``async def route(session: AGISession) -> object``; its return value is
    ignored. When it returns the socket is closed, which ends ``AGI()`` and lets the
    dialplan continue. Route keys are paths without the leading ``/``.
    """

    def __init__(
        self,
        routes: Mapping[str, AGIHandler],
        host: str = "127.0.0.1",
        port: int = 4573,
        header_timeout: float = 5.0,
        *,
        max_header_bytes: int = 16 * 1024,
        max_sessions: int = 256,
        command_timeout: float = 30.0,
        session_timeout: float = 600.0,
        on_session_end: Callable[[SessionReport], None] | None = None,
    ) -> None:
        self.routes: dict[str, AGIHandler] = {normalise_path(k)[0]: v for k, v in routes.items()}
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.max_sessions = max_sessions
        self.command_timeout = command_timeout
        self.session_timeout = session_timeout
        self.on_session_end = on_session_end
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts: Counter[str] = Counter()
        self._connections = 0
        self._peak = 0
        self._refused_unlogged = 0
        self._refusal_logged_at: float | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and listen. ``port=0`` picks a free port; read it back from :attr:`port`."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=self.max_header_bytes
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI listening on %s:%s (%d routes)", self.host, self.port, len(self.routes))

    async def stop(self) -> None:
        """Stop listening, cancel live sessions (their sockets close) and wait for them."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def __aenter__(self) -> AGIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    def stats(self) -> dict[str, int | bool]:
        """Counters for ``/api/health``: connections, live and peak sessions, outcomes."""
        out: dict[str, int | bool] = {
            "running": self.running,
            "connections": self._connections,
            "active": len(self._tasks),
            "peak_active": self._peak,
        }
        for outcome in SessionOutcome:
            out[outcome.value] = self._counts[outcome.value]
        return out

    # -- one connection -----------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """``start_server`` runs this in its own task per connection; we track that task."""
        task = asyncio.current_task()
        self._connections += 1
        started = time.monotonic()
        path: str | None = None
        uniqueid: str | None = None
        if len(self._tasks) >= self.max_sessions:
            self._log_refusal(writer)
            await _close(writer)
            self._finish(SessionOutcome.BUSY, path, uniqueid, started)
            return
        assert task is not None
        self._tasks.add(task)
        self._peak = max(self._peak, len(self._tasks))
        outcome = SessionOutcome.OK
        try:
            headers_or_outcome = await self._read_headers(reader)
            if isinstance(headers_or_outcome, SessionOutcome):
                outcome = headers_or_outcome
                return
            headers = headers_or_outcome
            uniqueid = headers.get("agi_uniqueid") or None
            script = headers.get("agi_network_script")
            if script is None and "agi_request" in headers:
                script = urlsplit(headers["agi_request"]).path
            if script is None:
                outcome = SessionOutcome.BAD_HEADER
                log.warning("FastAGI %s: no agi_network_script header", uniqueid)
                return
            path, query = normalise_path(script)
            route = self.routes.get(path)
            if route is None:
                outcome = SessionOutcome.UNKNOWN_ROUTE
                log.warning("FastAGI %s: unknown route %r", uniqueid, path[:80])
                return
            session = AGISession(
                reader,
                writer,
                headers,
                path=path,
                query=query,
                command_timeout=self.command_timeout,
            )
            outcome = await self._run_route(route, session)
        except asyncio.CancelledError:
            # Only stop() cancels these tasks. Not re-raised: the task ends here anyway,
            # and asyncio.streams (3.11) logs a cancelled connection task as an error.
            outcome = SessionOutcome.CANCELLED
        finally:
            self._tasks.discard(task)
            await _close(writer)
            self._finish(outcome, path, uniqueid, started)

    def _log_refusal(self, writer: asyncio.StreamWriter) -> None:
        """One warning per ``REFUSAL_LOG_INTERVAL``, counting the refusals in between."""
        self._refused_unlogged += 1
        now = time.monotonic()
        last = self._refusal_logged_at
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        peer = writer.get_extra_info("peername")
        log.warning(
            "FastAGI: connection from %s refused: %d sessions live, the cap is %d "
            "(HOTLINE_AGI_MAX_SESSIONS); %d refused since the last warning; the dialplan "
            "continues without this AGI step",
            f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?",
            len(self._tasks),
            self.max_sessions,
            self._refused_unlogged,
        )
        self._refused_unlogged = 0
        self._refusal_logged_at = now

    async def _read_headers(self, reader: asyncio.StreamReader) -> dict[str, str] | SessionOutcome:
        try:
            async with asyncio.timeout(self.header_timeout):
                block = await reader.readuntil(b"\n\n")
        except TimeoutError:
            log.warning("FastAGI: no header block within %.1fs", self.header_timeout)
            return SessionOutcome.HEADER_TIMEOUT
        except asyncio.IncompleteReadError:
            log.debug("FastAGI: peer closed before the header block ended")
            return SessionOutcome.EARLY_EOF
        except asyncio.LimitOverrunError:
            log.warning("FastAGI: header block over %d bytes", self.max_header_bytes)
            return SessionOutcome.HEADER_TOO_LARGE
        except ConnectionError:
            return SessionOutcome.EARLY_EOF
        headers: dict[str, str] = {}
        for line in block.decode("utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                headers[key.strip()] = value.strip()
        return headers

    async def _run_route(self, route: AGIHandler, session: AGISession) -> SessionOutcome:
        """Run one route; whatever it raises stays in this session."""
        try:
            async with asyncio.timeout(self.session_timeout):
                await route(session)
        except CallerGone as exc:
            log.info("FastAGI %s /%s: caller gone (%s)", session.uniqueid, session.path, exc.reason)
            return SessionOutcome.CALLER_GONE
        except AGIError as exc:
            log.warning(
                "FastAGI %s /%s: AGI error %s: %s",
                session.uniqueid,
                session.path,
                type(exc).__name__,
                exc,
            )
            return SessionOutcome.AGI_ERROR
        except TimeoutError:
            log.warning(
                "FastAGI %s /%s: session over %.0fs",
                session.uniqueid,
                session.path,
                self.session_timeout,
            )
            return SessionOutcome.SESSION_TIMEOUT
        except Exception as exc:  # isolation: one broken flow must not touch the others
            log.error(
                "FastAGI %s /%s: route raised %s",
                session.uniqueid,
                session.path,
                type(exc).__name__,
                exc_info=True,
            )
            return SessionOutcome.ROUTE_ERROR
        return SessionOutcome.OK

    def _finish(
        self, outcome: SessionOutcome, path: str | None, uniqueid: str | None, started: float
    ) -> None:
        self._counts[outcome.value] += 1
        if self.on_session_end is None:
            return
        report = SessionReport(outcome, path, uniqueid, time.monotonic() - started)
        try:
            self.on_session_end(report)
        except Exception:
            log.exception("FastAGI: on_session_end hook raised")


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close and wait briefly; a peer that never reads must not keep us here."""
    writer.close()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(writer.wait_closed(), 2)
