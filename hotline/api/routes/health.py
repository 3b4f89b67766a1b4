"""``GET /api/health``: which part works — AMI, the database, Redis, the call log.

It answers within a second whatever is down (docs/access.md): the database is asked
through the bounded probe (:class:`hotline.api.deps.DatabaseProbe`: a pool of its own,
a short statement timeout, the answer reused for a second and a half), Redis with short
socket timeouts under a deadline, and AMI and the call log from the service's memory.
The token itself is checked from the token cache when the database is down
(:mod:`hotline.api.auth`). ``down`` names the parts that are not working, so a probe
or a person sees at once *what* is down. The answer never carries a URL (they may hold
passwords): errors are reported by exception class only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from hotline.api.auth import require
from hotline.api.deps import ProbeDep, Service, ServiceDep, SettingsDep

__all__ = ["Health", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/health", tags=["health"])

REDIS_TIMEOUT_S = 0.4  # connect and socket timeout of the check's own client
REDIS_DEADLINE_S = 0.6  # the whole Redis check, whatever the client does


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    down: list[str] = Field(
        description="The parts not working: ami, database, redis, call_log (empty when ok)."
    )
    ami: dict[str, Any]
    database: dict[str, Any]
    redis: dict[str, Any]
    call_log: dict[str, Any] = Field(
        description="The reconciler's last measure of the call log (docs/reliability.md): "
        "open_rows, rows_reconciled, oldest_unsettled_at, lag_seconds, last_run_at, "
        "last_error; ok is false when its last run failed."
    )


async def check_redis(url: str | None) -> dict[str, Any]:
    if not url:
        return {"ok": None, "detail": "not configured"}
    import redis.asyncio as aioredis

    started = time.perf_counter()
    client = aioredis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        retry_on_timeout=False,
    )
    try:
        await asyncio.wait_for(client.ping(), REDIS_DEADLINE_S)
    except Exception as exc:
        log.warning("health: redis check failed: %s", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}
    finally:
        with contextlib.suppress(Exception):  # closing a dead connection may fail
            await client.aclose()
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def ami_status(service: Service | None) -> dict[str, Any]:
    if service is None:
        return {"connected": False, "detail": "bridge not running"}
    try:
        status = dict(service.ami_status())
    except Exception as exc:
        log.warning("health: ami_status() failed: %s", type(exc).__name__)
        return {"connected": False, "detail": f"status unavailable ({type(exc).__name__})"}
    status["connected"] = bool(status.get("connected"))
    encoded: dict[str, Any] = jsonable_encoder(status)
    return encoded


def call_log_status(service: Service | None) -> dict[str, Any]:
    """``CallService.record_status()`` (no database read), with ``ok``."""
    record_status = getattr(service, "record_status", None)
    if record_status is None:
        return {"ok": None, "detail": "no call service in this process"}
    try:
        status = dict(record_status())
    except Exception as exc:
        log.warning("health: record_status() failed: %s", type(exc).__name__)
        return {"ok": False, "detail": f"status unavailable ({type(exc).__name__})"}
    status["ok"] = status.get("last_error") is None
    encoded: dict[str, Any] = jsonable_encoder(status)
    return encoded


@router.get("", response_model=Health, name="show", dependencies=[Depends(require())])
async def show_health(probe: ProbeDep, settings: SettingsDep, service: ServiceDep) -> Health:
    """Any valid token may ask; "degraded" when anything configured is not working, and
    ``down`` says which. Answers within a second with the database or Redis hung."""
    database, redis_status = await asyncio.gather(probe.check(), check_redis(settings.redis_url))
    ami = ami_status(service)
    call_log = call_log_status(service)
    down = [
        name
        for name, failed in (
            ("ami", not ami["connected"]),
            ("database", database["ok"] is False),
            ("redis", redis_status["ok"] is False),
            ("call_log", call_log["ok"] is False),
        )
        if failed
    ]
    return Health(
        status="degraded" if down else "ok",
        down=down,
        ami=ami,
        database=database,
        redis=redis_status,
        call_log=call_log,
    )
