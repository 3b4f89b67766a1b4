"""The supervisors' wallboard page (``/wallboard``).

Like ``/agent``, the page itself is public and holds no data: it signs in with a
supervisor token and everything it shows comes from ``/ws/supervisor`` and the
supervisor API. Its script and style are served by the shared ``/static`` mount.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from screenpop.web import STATIC

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/wallboard")
def wallboard_page() -> FileResponse:
    return FileResponse(STATIC / "wallboard.html", media_type="text/html; charset=utf-8")
