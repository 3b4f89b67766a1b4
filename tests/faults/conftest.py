"""Fixtures of the fault suite (docs/reliability.md): one lab and one set of agents' phones
for the module, and per test a fresh PostgreSQL database, a private Redis and
``hotline serve`` as a child process reaching AMI and PostgreSQL through fault proxies.

Every test puts the four agents in a queue of its own (the agents directory: the
service's membership sync adds them, as in production) and places its calls with
numbers no other run uses, so its rows are found by number.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dialplans.config import LabConfig
from dialplans.lab import Lab
from dialplans.sipp import SippRun, start_agent
from tests.conftest import PG_ADMIN_URL, need
from tests.e2e.conftest import lab, lab_config, record_url  # noqa: F401  (fixtures)
from tests.faults.ami_probe import AMIProbe
from tests.faults.calls import FAST_RING, FAST_TALK, SLOW_RING, SLOW_TALK
from tests.faults.harness import TREE, RedisServer, Serve, seed, tree_label
from tests.faults.scenario import SUMMARIES, FaultRun
from tests.support.fault_proxy import FaultProxy

LOGS = Path(os.environ.get("HOTLINE_FAULTS_LOGS", "/tmp/hotline-faults/logs"))
_queues: Iterator[str] | None = None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARIES:
        terminalreporter.section(f"fault suite ({tree_label()}: {TREE})")
        for line in SUMMARIES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def probe(lab: Lab, lab_config: LabConfig) -> AMIProbe:  # noqa: F811
    return AMIProbe(lab_config)


@pytest.fixture(scope="module")
def proxies(lab: Lab, lab_config: LabConfig) -> Iterator[tuple[FaultProxy, FaultProxy]]:  # noqa: F811
    """(AMI, PostgreSQL) proxies for the service; the lab and the e2e tests go around."""
    pg = make_url(PG_ADMIN_URL)
    with (
        FaultProxy(lab_config.ami_host, lab_config.ami_port, name="ami-proxy") as ami,
        FaultProxy(pg.host or "127.0.0.1", pg.port or 5432, name="pg-proxy") as db,
    ):
        yield ami, db


@pytest.fixture(scope="module")
def agent_phones(
    lab: Lab,  # noqa: F811
    lab_config: LabConfig,  # noqa: F811
    probe: AMIProbe,
) -> Iterator[list[SippRun]]:
    """Two quick phones and two slow ones (tests/faults/calls.py), for the whole module;
    afterwards the agents leave every queue, so no later test rings a phone that is gone."""
    phones = []
    for index, agent in enumerate(lab_config.agents[:4]):
        ring, talk = (FAST_RING, FAST_TALK) if index < 2 else (SLOW_RING, SLOW_TALK)
        phones.append(start_agent(agent, lab_config, ring_seconds=ring, talk_seconds=talk))
    yield phones
    for phone in phones:
        phone.cleanup()
    for queue in lab_config.queues:
        for agent in lab_config.agents[:4]:
            with contextlib.suppress(OSError, TimeoutError):
                probe.remove_member(queue.name, agent.interface)


def _next_queue(config: LabConfig) -> str:
    global _queues
    if _queues is None:
        _queues = itertools.cycle([q.name for q in config.queues])
    return next(_queues)


@pytest.fixture
def fault_run(
    request: pytest.FixtureRequest,
    lab: Lab,  # noqa: F811
    lab_config: LabConfig,  # noqa: F811
    record_url: str,  # noqa: F811
    pg_url: str,
    proxies: tuple[FaultProxy, FaultProxy],
    agent_phones: list[SippRun],
    probe: AMIProbe,
) -> Iterator[Callable[[str], FaultRun]]:
    """``make(name)`` → a :class:`FaultRun` with ``hotline serve`` up, synced and ready."""
    if not shutil.which("redis-server"):
        need("redis-server (apt-get install redis-server)")
    ami, db = proxies
    ami.restore()
    db.restore()
    lab.up(lab_config)  # a test that stopped Asterisk and failed may have left it down
    queue = _next_queue(lab_config)
    work = Path(tempfile.mkdtemp(prefix="hotline-faults-"))
    redis = RedisServer(work / "redis")
    redis.start()
    token = seed(pg_url, queue, lab_config)
    log_dir = LOGS / tree_label()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{request.node.name}.log"
    log_file.unlink(missing_ok=True)
    serve = Serve(
        database=str(make_url(pg_url).database),
        record_database=str(make_url(record_url).database),
        lab=lab_config,
        ami=ami,
        pg=db,
        redis=redis,
        log_file=log_file,
        token=token,
    )
    serve.start()
    runs: list[FaultRun] = []
    try:
        serve.wait_api()
        try:
            probe.wait_members(queue, [a.interface for a in lab_config.agents[:4]])
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}:\n{serve.log_tail()}") from None

        def make(name: str) -> FaultRun:
            run = FaultRun(
                name=name,
                lab=lab_config,
                serve=serve,
                probe=probe,
                database_url=pg_url,
                queue_log=lab.queue_log(),
            )
            run.extra["queue"] = queue
            runs.append(run)
            return run

        yield make
    finally:
        for run in runs:
            run.cleanup()
        serve.stop()
        redis.stop()
        ami.restore()
        db.restore()
        if lab.pid() is None:
            lab.up(lab_config)
        shutil.rmtree(work, ignore_errors=True)
