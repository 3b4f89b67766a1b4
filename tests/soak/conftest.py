"""The long idle page: one agent socket opened when collection ends, checked last.

An idle agent page must keep one socket for 10 minutes with Redis, without
adding 10 minutes to CI. So the socket is opened as soon as the session's tests are
collected (:func:`pytest_collection_finish`) and left alone on threads of its own while
the rest of the suite runs; the one test in this folder is moved to the very end of the
session (:func:`pytest_collection_modifyitems`) and waits only what remains of
``HOTLINE_SOAK_SECONDS`` (600). A full ``make test`` runs longer than that, so it waits
nothing; ``pytest tests/soak`` alone waits the whole 10 minutes. Collecting a subset that
leaves this folder out (``pytest tests/unit``) opens nothing.

The server is the real API (uvicorn, :class:`tests.support.pages.Pages`) on its own loop
and thread, the page a ``websockets`` client on another: neither depends on any test's
event loop, and both outlive them. Whatever the other tests do to Redis meanwhile (a
FLUSHDB of the test database, a 15 s outage in tests/faults) is what a real page lives
through too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SOAK_SECONDS = float(os.environ.get("HOTLINE_SOAK_SECONDS", "600"))
HERE = Path(__file__).parent


@dataclass
class IdlePage:
    """One agent page's socket, opened once, never reconnected: every frame and how it ended."""

    pages: Any = None
    agent: str = ""
    opened_at: float | None = None  # monotonic, at the hello
    connections: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: str | None = None  # why the socket ended, if it did
    error: str | None = None  # why it never opened
    changed: threading.Event = field(default_factory=threading.Event)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _task: asyncio.Task[None] | None = None

    def start(self, db_url: str, redis_url: str) -> None:
        from tests.support.pages import Pages

        try:
            self.pages = Pages(db_url, redis_url, agents=1).start()
        except Exception as exc:
            self.error = f"the API did not start: {type(exc).__name__}: {exc}"
            return
        self.agent = self.pages.agent_ids()[0]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="soak-page", daemon=True)
        self._thread.start()
        if not self.changed.wait(15) and self.opened_at is None:
            self.error = self.error or "no hello within 15 s"

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._page())
        with contextlib.suppress(BaseException):
            self._loop.run_until_complete(self._task)
        self._loop.close()

    async def _page(self) -> None:
        import websockets

        url = self.pages.ws_url("/ws/agent", self.pages.tokens[self.agent])
        try:
            async with websockets.connect(url) as ws:
                self.connections += 1
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame.get("type") == "hello":
                        self.opened_at = time.monotonic()
                    self.frames.append(frame)
                    self.changed.set()
                self.closed = f"closed by the server: {ws.close_code} {ws.close_reason}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.opened_at is None:
                self.error = f"{type(exc).__name__}: {exc}"
            else:
                self.closed = f"{type(exc).__name__}: {exc}"
        finally:
            self.changed.set()

    def stop(self) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.pages is not None:
            self.pages.stop()


_PAGE = IdlePage()
_TMP: tempfile.TemporaryDirectory[str] | None = None


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """This folder's tests run last, whatever the order of the others."""
    items[:] = [i for i in items if not _ours(i)] + [i for i in items if _ours(i)]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Open the idle page as soon as the session knows it will run the soak test."""
    global _TMP
    if not any(_ours(i) for i in session.items) or session.config.option.collectonly:
        return
    from tests.conftest import REDIS_URL

    _TMP = tempfile.TemporaryDirectory(prefix="hotline-soak-")
    _PAGE.start(f"sqlite:///{_TMP.name}/soak.sqlite3", REDIS_URL)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _PAGE.stop()
    if _TMP is not None:
        _TMP.cleanup()


@pytest.fixture
def idle_page() -> IdlePage:
    return _PAGE
