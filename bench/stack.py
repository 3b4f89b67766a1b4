"""The whole Hotline stack on the lab, for benches: Asterisk, CallService, API on uvicorn."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from dialplans.config import LabConfig
from hotline.service import CallService


@dataclass
class Stack:
    base_url: str
    service: CallService
    tokens: dict[str, str]
    lab: LabConfig
    db_url: str


@asynccontextmanager
async def running_stack(**settings_overrides: object) -> AsyncIterator[Stack]:
    import uvicorn

    from dialplans.lab import Lab
    from hotline.api.app import create_app
    from hotline.api.auth import Role, create_token
    from hotline.db.session import make_engine, upgrade
    from hotline.settings import load_settings

    cfg = LabConfig.default()
    lab = Lab(Path(load_settings().lab_root))
    await asyncio.to_thread(lab.up, cfg)
    db = f"sqlite:///{tempfile.mkdtemp(prefix='hotline-bench-')}/bench.sqlite3"
    upgrade(db)
    engine = make_engine(db)
    tokens = {
        a.id: create_token(engine, role=Role.AGENT, name=a.id, agent_id=a.id) for a in cfg.agents
    }
    tokens["supervisor"] = create_token(engine, role=Role.SUPERVISOR, name="bench")
    engine.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        database_url=db, api_bind=f"127.0.0.1:{port}", ami_secret=cfg.ami_secret,
        **settings_overrides,
    )  # fmt: skip
    service = CallService(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, service=service), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    await service.wait_ready(timeout=15)
    try:
        yield Stack(f"http://127.0.0.1:{port}", service, tokens, cfg, db)
    finally:
        server.should_exit = True
        await task
