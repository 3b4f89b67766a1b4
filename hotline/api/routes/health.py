"""``GET /api/health``: is the bridge connected, the database reachable, Redis up?

Every check is bounded in time, so a hung dependency makes the answer "degraded"
quickly instead of hanging the probe, and the answer never carries a URL (they may
hold passwords): errors are reported by exception class only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from hotline.api.auth import require
from hotline.api.deps import EngineDep, Service, ServiceDep, SettingsDep

__all__ = ["Health", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/health", tags=["health"])

DATABASE_TIMEOUT_S = 3.0
REDIS_TIMEOUT_S = 0.5


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    ami: dict[str, Any]
    database: dict[str, Any]
    redis: dict[str, Any]


def _ping_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def check_database(engine: Engine) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(run_in_threadpool(_ping_database, engine), DATABASE_TIMEOUT_S)
    except Exception as exc:  # any failure is a health finding, not an error
        log.warning("health: database check failed: %s", type(exc).__name__)
        return {"ok": False, "backend": engine.dialect.name, "error": type(exc).__name__}
    latency = round((time.perf_counter() - started) * 1000, 2)
    return {"ok": True, "backend": engine.dialect.name, "latency_ms": latency}


async def check_redis(url: str | None) -> dict[str, Any]:
    if not url:
        return {"ok": None, "detail": "not configured"}
    import redis.asyncio as aioredis

    started = time.perf_counter()
    client = aioredis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    try:
        await asyncio.wait_for(client.ping(), REDIS_TIMEOUT_S * 2)
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


@router.get("", response_model=Health, name="show", dependencies=[Depends(require())])
async def show_health(engine: EngineDep, settings: SettingsDep, service: ServiceDep) -> Health:
    """Any valid token may ask; "degraded" when anything configured is not working."""
    database, redis_status = await asyncio.gather(
        check_database(engine), check_redis(settings.redis_url)
    )
    ami = ami_status(service)
    ok = database["ok"] and redis_status["ok"] is not False and ami["connected"]
    return Health(status="ok" if ok else "degraded", ami=ami, database=database, redis=redis_status)
