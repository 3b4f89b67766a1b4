"""The pages, the agent's (``/agent``) and the supervisors' wallboard (``/wallboard``).

The pages themselves are public (they hold no data): each signs in with a token, an
agent's or a supervisor's, and everything it shows comes from the API and its WebSocket
(``/ws/agent``, ``/ws/supervisor``). Scripts and styles are served by one ``/static`` mount.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")

router = APIRouter(include_in_schema=False)


@router.get("/agent")
def agent_page() -> FileResponse:
    return FileResponse(STATIC / "agent.html", media_type="text/html; charset=utf-8")


@router.get("/wallboard")
def wallboard_page() -> FileResponse:
    return FileResponse(STATIC / "wallboard.html", media_type="text/html; charset=utf-8")


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
