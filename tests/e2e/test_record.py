"""Asterisk's own record on the real lab: one answered call, written twice by Asterisk.

The lab runs both CEL backends and both queue_log outputs at once
(docs/asterisk-record.md): cel_pgsql and the realtime queue_log into the session's
PostgreSQL record database, cel_custom's CSV and the queue_log file in the log dir. This
test places one call that a SIPp agent answers and shows that the record of it is
complete in PostgreSQL (``CHAN_START`` … ``LINKEDID_END``, the dialplan's and the IVR's
``USER_DEFINED`` facts, ``ENTERQUEUE``/``CONNECT``/``COMPLETE*``) and that the file
ingester turns the files into the same rows in SQLite, to the microsecond.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import Engine

from dialplans.sipp import CallSpec, place_calls
from hotline.db import make_engine, upgrade
from hotline.record.entries import CelEvent
from hotline.record.ingest import ingest_once
from hotline.record.store import cel_for, queue_log_for
from hotline.record.wiring import make_reconciler
from hotline.settings import load_settings
from tests.e2e.conftest import wait_rows

pytestmark = pytest.mark.asterisk

T = TypeVar("T")


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The service's own database is SQLite here: the record is in PostgreSQL."""
    return sqlite_url


@pytest.fixture
def file_engine(tmp_path) -> Iterator[Engine]:
    """A second SQLite database that gets the record through the file ingester only."""
    engine = make_engine(f"sqlite:///{tmp_path / 'record.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


async def _until(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Poll ``fetch`` (in a thread) until ``done``; the last value either way."""
    deadline = time.monotonic() + timeout
    value = await asyncio.to_thread(fetch)
    while not done(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        value = await asyncio.to_thread(fetch)
    return value


def _ended(events: list[CelEvent]) -> bool:
    return any(e.eventtype == "LINKEDID_END" for e in events)


def _fields(event: CelEvent) -> dict[str, str]:
    """A USER_DEFINED row's form-encoded text; both backends wrap it as {"extra": ...}."""
    wrapped = json.loads(event.extra)
    return dict(parse_qsl(wrapped["extra"], keep_blank_values=True))


async def test_an_answered_call_reaches_both_records(
    service, lab, lab_config, db_url, record_url, file_engine, phones, members, tmp_path
):
    agent = lab_config.agent("1003")
    await members("sichuanese", agent.interface, agent.id)
    phones(agent, lab_config, ring_seconds=1.0, talk_seconds=1.0)
    run = await asyncio.to_thread(
        place_calls,
        [CallSpec("02887650001", "记录客户", queue="sichuanese")],
        lab_config,
        hold_seconds=30,
    )
    assert run.proc.returncode == 0, run.output()[-800:]
    rows = await wait_rows(db_url, lambda r: bool(r), caller_name="记录客户")
    assert len(rows) == 1
    linkedid, caller = rows[0].linkedid, rows[0].caller_uniqueid

    # PostgreSQL, written by Asterisk itself (cel_pgsql, realtime queue_log)
    pg = make_engine(record_url)
    try:
        cel = await _until(lambda: cel_for(pg, [linkedid]).get(linkedid, []), _ended)
        queue_log = await _until(
            lambda: queue_log_for(pg, [caller]).get(caller, []),
            lambda entries: any(e.event.startswith("COMPLETE") for e in entries),
        )
    finally:
        pg.dispose()
    kinds = [e.eventtype for e in cel]
    for needed in ("CHAN_START", "ANSWER", "BRIDGE_ENTER", "HANGUP", "CHAN_END"):
        assert needed in kinds
    assert kinds[-1] == "LINKEDID_END"
    assert {e.uniqueid for e in cel} >= {caller}
    results = [e for e in cel if e.eventtype == "USER_DEFINED" and e.userdeftype == "QueueResult"]
    assert len(results) == 1
    assert _fields(results[0]) == {
        "queue": "sichuanese",
        "status": "CONTINUE",
        "member": agent.interface,
        "membername": agent.id,
    }
    # the IVR's facts, sent by ivr_flows' user_event as CELGenUserEvent too
    ivr = {e.userdeftype for e in cel if e.eventtype == "USER_DEFINED"} - {"QueueResult"}
    assert "IvrStep" in ivr
    events = [e.event for e in queue_log]
    assert events[0] == "ENTERQUEUE"
    assert "CONNECT" in events
    assert events[-1] in ("COMPLETEAGENT", "COMPLETECALLER")
    connect = queue_log[events.index("CONNECT")]
    assert connect.agent == agent.id

    # the same record from the files, through the ingester, into SQLite
    def from_files() -> list[CelEvent]:
        ingest_once(file_engine, lab.log_dir)
        return cel_for(file_engine, [linkedid]).get(linkedid, [])

    filed = await _until(from_files, lambda events: len(events) >= len(cel))
    assert [(e.eventtype, e.uniqueid, e.userdeftype) for e in filed] == [
        (e.eventtype, e.uniqueid, e.userdeftype) for e in cel
    ]
    for ours, theirs in zip(filed, cel, strict=True):
        assert ours.eventtime == pytest.approx(theirs.eventtime, abs=2e-6)  # both UTC
        assert ours.extra == theirs.extra
    filed_log = queue_log_for(file_engine, [caller]).get(caller, [])
    assert [e.event for e in filed_log] == events
    for ours, theirs in zip(filed_log, queue_log, strict=True):
        assert ours.time == pytest.approx(theirs.time, abs=1.0)  # the file has whole seconds
        assert ours.data == theirs.data

    # The service's own pass: nothing open, nothing failed, AMI said what is live.
    assert await service.reconcile_now() == 0
    status = service.record_status()
    assert (status["open_rows"], status["last_error"], status["live_known"]) == (0, None, True)
    assert status["last_run_at"] is not None

    # A process that never saw the call (its call log is empty) gets the same row from
    # the record alone: what happens to calls that live while `hotline serve` is down.
    blind_url = f"sqlite:///{tmp_path / 'blind.sqlite3'}"
    upgrade(blind_url)
    blind, dispose = make_reconciler(
        load_settings(database_url=blind_url, record_url=record_url, reconcile_lookback=600)
    )
    try:
        report = await asyncio.to_thread(blind.run_once, live=frozenset())
    finally:
        dispose()
    assert report.created >= 1
    (seen,) = await wait_rows(
        db_url, lambda r: bool(r) and r[0].outcome != "in_progress", caller_name="记录客户"
    )
    (rebuilt,) = await wait_rows(blind_url, lambda r: bool(r), linkedid=linkedid)
    assert (rebuilt.settled_by, seen.settled_by) == ("reconciled", "live")
    for name in ("outcome", "agent", "agent_interface", "queue", "queue_status", "caller_number"):
        assert getattr(rebuilt, name) == getattr(seen, name), name
    for name in ("wait_seconds", "talk_seconds"):
        assert getattr(rebuilt, name) == pytest.approx(getattr(seen, name), abs=0.05), name
