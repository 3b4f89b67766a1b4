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
from pathlib import Path

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

LAB_ROOT = Path(os.environ.get("HOTLINE_LAB_ROOT", "/var/lib/hotline/sid-root"))


@pytest.fixture(scope="session")
def lab_config() -> LabConfig:
    return LabConfig.default()


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
async def service(lab: Lab, lab_config: LabConfig, db_url: str) -> AsyncIterator[CallService]:
    settings = load_settings(
        database_url=db_url,
        ami_host=lab_config.ami_host,
        ami_port=lab_config.ami_port,
        ami_user=lab_config.ami_user,
        ami_secret=lab_config.ami_secret,
    )
    upgrade(db_url)
    svc = CallService(settings)
    await svc.start()
    await svc.bridge.wait_connected(timeout=10)
    try:
        yield svc
    finally:
        await svc.stop()


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
    """Add queue members over AMI (QueueAdd through the bridge); removed afterwards."""
    added: list[tuple[str, str]] = []

    async def add(queue: str, interface: str, member_name: str, penalty: int = 0) -> None:
        # A member left behind by an interrupted run or the demo would make QueueAdd fail.
        await service.bridge.send_action(
            {"Action": "QueueRemove", "Queue": queue, "Interface": interface}
        )
        reply = await service.bridge.send_action(
            {
                "Action": "QueueAdd",
                "Queue": queue,
                "Interface": interface,
                "MemberName": member_name,
                "Penalty": penalty,
            }
        )
        first = reply[0] if isinstance(reply, list) else reply
        assert first.success, f"QueueAdd refused: {first}"
        added.append((queue, interface))

    yield add
    for queue, interface in added:
        await service.bridge.send_action(
            {"Action": "QueueRemove", "Queue": queue, "Interface": interface}
        )


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
