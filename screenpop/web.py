"""The agent's page (``/agent``) and its static files.

The page itself is public (it holds no data); everything it shows comes from the API
and the agent WebSocket with the token the agent signs in with.
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


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)
