"""The real lab for end-to-end tests: Asterisk 22 in its chroot, SIPp, the real bridge.

A missing chroot or SIPp is a loud skip locally and a failure in CI (``need``). The
lab is started once per session and reused; every test puts its own agents in its own
queue and takes them out again, so tests do not see each other's calls.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dialplans.config import LabConfig
from dialplans.lab import Lab, LabError
from dialplans.sipp import SippRun, start_agent
from hotline.db.models import CallLog
from hotline.db.session import make_engine, session_factory, upgrade
from hotline.service import CallService
from hotline.settings import load_settings
from tests.conftest import need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAB_ROOT = Path(os.environ.get("HOTLINE_LAB_ROOT", "/var/lib/hotline/sid-root"))


RECORD_DB = "hotline_lab_record"


@pytest.fixture(scope="session")
def record_url(_pg_server) -> str:
    """The PostgreSQL database Asterisk writes its record to (cel_pgsql, realtime
    queue_log) for the whole session: one lab, one record; tests find their calls in it
    by Linkedid. Migrated before the lab starts (cel_pgsql reads its columns at load)."""
    if _pg_server:
        need(_pg_server)
    from tests.conftest import PG_ADMIN_URL
    from tests.support.postgres import ensure_database

    url = ensure_database(PG_ADMIN_URL, RECORD_DB)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def lab_config(record_url: str) -> LabConfig:
    from hotline.lab import record_db

    return LabConfig.default(record_db=record_db(record_url))


@pytest.fixture(scope="session")
def lab(lab_config: LabConfig) -> Iterator[Lab]:
    if not shutil.which("sipp"):
        need("SIPp (apt-get install sip-tester)")
    lab = Lab(LAB_ROOT)
    if not lab.provisioned:
        need(f"Asterisk lab chroot at {LAB_ROOT} (run `hotline lab up` as root to provision it)")
    try:
        lab.up(lab_config)
    except LabError as exc:
        need(f"Asterisk lab would not start: {exc}")
    yield lab


@pytest.fixture
async def service(
    lab: Lab, lab_config: LabConfig, db_url: str, record_url: str
) -> AsyncIterator[CallService]:
    settings = load_settings(
        database_url=db_url,
        record_url=record_url,
        reconcile_lookback=0,  # a fresh call log takes in none of the lab's earlier calls
        ami_host=lab_config.ami_host,
        ami_port=lab_config.ami_port,
        ami_user=lab_config.ami_user,
        ami_secret=lab_config.ami_secret,
    )
    upgrade(db_url)
    svc = CallService(settings)
    await svc.start()
    await svc.wait_ready(timeout=15)
    try:
        yield svc
    finally:
        await svc.stop()


@dataclass
class Stack:
    """The API (uvicorn, real sockets) with the call service, as `hotline serve` runs it."""

    base_url: str
    service: CallService
    db_url: str
    tokens: dict[str, str]


@pytest.fixture
async def stack(
    lab: Lab, lab_config: LabConfig, db_url: str, record_url: str
) -> AsyncIterator[Stack]:
    import socket

    import uvicorn

    from hotline.api.app import create_app
    from hotline.api.auth import Role, create_token

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        database_url=db_url,
        record_url=record_url,
        reconcile_lookback=0,  # a fresh call log takes in none of the lab's earlier calls
        ami_host=lab_config.ami_host,
        ami_port=lab_config.ami_port,
        ami_user=lab_config.ami_user,
        ami_secret=lab_config.ami_secret,
        agi_bind=f"{lab_config.agi_host}:{lab_config.agi_port}",
        api_bind=f"127.0.0.1:{port}",
    )
    upgrade(db_url)
    engine = make_engine(db_url)
    tokens = {
        agent.id: create_token(engine, role=Role.AGENT, name=f"agent {agent.id}", agent_id=agent.id)
        for agent in lab_config.agents
    }
    tokens["supervisor"] = create_token(engine, role=Role.SUPERVISOR, name="supervisor")
    engine.dispose()
    svc = CallService(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, service=svc), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("API server did not start")
        await asyncio.sleep(0.05)
    await svc.wait_ready(timeout=15)
    try:
        yield Stack(f"http://127.0.0.1:{port}", svc, db_url, tokens)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@asynccontextmanager
async def queue_members(bridge) -> AsyncIterator[Callable[..., object]]:
    """Add queue members over AMI (QueueAdd through the bridge); removed afterwards."""
    added: list[tuple[str, str]] = []

    async def add(queue: str, interface: str, member_name: str, penalty: int = 0) -> None:
        # A member left behind by an interrupted run or the demo would make QueueAdd fail.
        await bridge.send_action({"Action": "QueueRemove", "Queue": queue, "Interface": interface})
        reply = await bridge.send_action(
            {"Action": "QueueAdd", "Queue": queue, "Interface": interface,
             "MemberName": member_name, "Penalty": penalty}
        )  # fmt: skip
        first = reply[0] if isinstance(reply, list) else reply
        assert first.success, f"QueueAdd refused: {first}"
        added.append((queue, interface))

    try:
        yield add
    finally:
        for queue, interface in added:
            await bridge.send_action(
                {"Action": "QueueRemove", "Queue": queue, "Interface": interface}
            )


@pytest.fixture
async def stack_members(stack: Stack) -> AsyncIterator[Callable[..., object]]:
    async with queue_members(stack.service.bridge) as add:
        yield add


def seed_customer(db_url: str, name: str, *e164s: str, **fields: object) -> int:
    from hotline.customers.rows import with_name_keys
    from hotline.db.models import Customer, CustomerPhone

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            customer = with_name_keys(Customer(name=name, **fields))
            session.add(customer)
            session.flush()
            for e164 in e164s:
                session.add(CustomerPhone(customer_id=customer.id, e164=e164, kind="mobile"))
            session.commit()
            return customer.id
    finally:
        engine.dispose()


@pytest.fixture
def phones() -> Iterator[Callable[..., SippRun]]:
    """Start agents' phones; all are stopped when the test ends."""
    started: list[SippRun] = []

    def start(agent, lab_config, **kw) -> SippRun:
        run = start_agent(agent, lab_config, **kw)
        started.append(run)
        return run

    yield start
    for run in started:
        run.cleanup()


@pytest.fixture
async def members(service: CallService) -> AsyncIterator[Callable[..., object]]:
    async with queue_members(service.bridge) as add:
        yield add


def call_rows(db_url: str, **where: object) -> list[CallLog]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            query = select(CallLog)
            for key, value in where.items():
                query = query.where(getattr(CallLog, key) == value)
            return list(session.scalars(query))
    finally:
        engine.dispose()


async def wait_rows(
    db_url: str, predicate: Callable[[list[CallLog]], bool], timeout: float = 60.0, **where: object
) -> list[CallLog]:
    """Poll the call log until ``predicate(rows)`` holds; returns the rows either way."""
    deadline = time.monotonic() + timeout
    rows: list[CallLog] = []
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(call_rows, db_url, **where)
        if predicate(rows):
            return rows
        await asyncio.sleep(0.25)
    return rows


async def wait_queues(
    stack: Stack, predicate: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 30.0
) -> dict[str, dict[str, Any]]:
    """Poll ``GET /api/queues`` until ``predicate(board)`` holds; returns the board either way.

    ``board`` maps each queue's name to its live view (``waiting_count``, ``counts``, …).
    Tests wait on what the wallboard shows instead of sleeping for a guessed time.
    """
    import httpx

    headers = {"Authorization": f"Bearer {stack.tokens['supervisor']}"}
    deadline = time.monotonic() + timeout
    board: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=5.0) as http:
        while time.monotonic() < deadline:
            response = await http.get("/api/queues", headers=headers)
            if response.status_code == 200:
                board = {q["name"]: q for q in response.json()["queues"]}
                if predicate(board):
                    return board
            await asyncio.sleep(0.1)
    return board


@pytest.fixture
async def browser():
    """Headless Chromium from Debian, driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        need("Chromium (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield b
        await b.close()
