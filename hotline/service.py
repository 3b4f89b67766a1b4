"""The running call service: AMI bridge → call tracker → call-log writer, plus the
FastAGI server (identify, route, pre-dial pop, survey) and the pop follow-ups.

This is the only place the parts meet. The bridge's single consumer feeds the tracker
and the pop tracker in event order; the tracker's records go to a writer task that
batches them into the database on a worker thread, so a slow or absent database never
stalls AMI reading. Records the database refused stay queued and are retried: a
database outage delays the call log, it does not lose it. Pushes to agents' pages go
through their own ordered queue for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from hotline.ami.bridge import AMIBridge
from hotline.ami.events import AMIEvent
from hotline.bus import Bus, make_bus
from hotline.calls.records import CallRecord
from hotline.calls.tracker import CallTracker
from hotline.calls.writer import CallLogWriter
from hotline.db.session import make_engine, session_factory
from hotline.live.publisher import LivePublisher
from hotline.live.state import LiveState
from hotline.record.asterisk import live_linkedids, started_at
from hotline.settings import Settings
from ivr_flows.server import AGIServer
from screenpop.pops import PopTracker
from screenpop.push import PopPublisher, PushQueue

if TYPE_CHECKING:
    from collections.abc import Callable

    from hotline.record.reconciler import Reconciler

log = logging.getLogger(__name__)


class CallService:
    def __init__(self, settings: Settings, *, record_to: Path | None = None) -> None:
        self.settings = settings
        self.bridge = AMIBridge(
            settings.ami_host,
            settings.ami_port,
            settings.ami_user,
            settings.ami_secret.get_secret_value(),
            ping_interval=settings.ami_ping_interval,
            ping_timeout=settings.ami_ping_timeout,
            record_to=record_to,
        )
        self.tracker = CallTracker(
            region=settings.default_region,
            short_abandon_seconds=settings.short_abandon_seconds,
        )
        self.bus: Bus = make_bus(settings.redis_url)
        self.pops = PopTracker()
        self.publisher = PopPublisher(self.bus, ack_timeout=settings.pop_ack_timeout)
        self.pushes = PushQueue(self.publisher)
        self.agi: AGIServer | None = None
        self.membership: Any = None
        self.live = LiveState(short_abandon_seconds=settings.short_abandon_seconds)
        self.live_publisher = LivePublisher(self.bus, self.live)
        self._live_ticker: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self.bridge.subscribe(self._on_event)
        self._pending: dict[str, CallRecord] = {}  # linkedid → newest record not yet written
        self._wake = asyncio.Event()
        self._writer_task: asyncio.Task[None] | None = None
        self._writer: CallLogWriter | None = None
        self._engine: Engine | None = None
        self._stopping = False
        self.reconciler: Reconciler | None = None
        self._reconcile_wake = asyncio.Event()
        self._reconcile_task: asyncio.Task[None] | None = None
        self._dispose_record: Callable[[], None] | None = None
        self._asterisk_started_at: float | None = None
        self.records_written = 0
        self.write_failures = 0
        self.last_write_error: str | None = None
        # The call log's health as the reconciler last measured it (docs/reliability.md):
        # kept here so /api/health answers without reading the database.
        self.record: dict[str, object] = {
            "open_rows": None,
            "rows_reconciled": 0,
            "oldest_unsettled_at": None,
            "lag_seconds": None,
            "last_run_at": None,
            "last_error": None,
        }

    # -- pipeline ------------------------------------------------------------------
    def _on_event(self, event: AMIEvent) -> None:
        if event.name == "FullyBooted":  # once per login: when Asterisk last started
            self._asterisk_started_at = started_at(event) or self._asterisk_started_at
        for record in self.tracker.feed(event):
            self._pending[record.linkedid] = record
        if self._pending:
            self._wake.set()
            if self.tracker.take_handovers():  # a call with a gap ended: settle it soon
                self._reconcile_wake.set()
        for push in self.pops.feed(event):
            self.pushes.put(push)
        self.live_publisher.on_changes(self.live.feed(event), time.time())

    async def _after_login(self, bridge: AMIBridge) -> None:
        """Membership first (it changes what QueueStatus shows), then the live state."""
        try:
            await self.membership(bridge)
            await self._resync_live(bridge)
        finally:
            self._synced.set()
        self._reconcile_wake.set()  # whatever ended while we were away is in the record

    async def wait_ready(self, timeout: float = 15.0) -> None:
        """Logged in and the first membership sync and live resync done (tests, demo):
        members added before that would be swept by the sync."""
        await self.bridge.wait_connected(timeout=timeout)
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def _resync_live(self, bridge: AMIBridge) -> None:
        """After every login, rebuild waiting callers and members from QueueStatus."""
        reply = await bridge.send_action({"Action": "QueueStatus"}, as_list=True)
        messages = reply if isinstance(reply, list) else [reply]
        items = [m.frame.to_event(time.time()) for m in messages if getattr(m, "frame", None)]
        events = [e for e in items if e.name in ("QueueParams", "QueueMember", "QueueEntry")]
        now = time.time()
        self.live_publisher.on_changes(self.live.apply_queue_status(events, now), now)

    async def _tick_live(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.live_publisher.tick(time.time())
            except Exception:
                log.exception("live state tick failed")

    async def _write_loop(self) -> None:
        assert self._writer is not None
        backoff = 0.2
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = list(self._pending.values())
                taken = {r.linkedid: r for r in batch}
                try:
                    await asyncio.to_thread(self._writer.write, batch)
                except Exception as exc:
                    self.write_failures += 1
                    # The class name only: a database error's text carries the SQL
                    # parameters, i.e. callers' names and numbers.
                    self.last_write_error = exc.__class__.__name__
                    log.warning(
                        "call log write failed (%d pending), retrying in %.1f s: %s",
                        len(self._pending),
                        backoff,
                        self.last_write_error,
                    )
                    if self._stopping:
                        return
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.2
                self.records_written += len(batch)
                for linkedid, record in taken.items():
                    if self._pending.get(linkedid) is record:  # not superseded meanwhile
                        del self._pending[linkedid]
            if self._stopping:
                return

    async def _reconcile_loop(self) -> None:
        """Passes after every login, on a handover, and every ``reconcile_interval``.

        A pass that leaves calls waiting for the record (CEL lags Asterisk's hangup by a
        few milliseconds) is retried after 0.5 s, doubling up to the interval.
        """
        interval = self.settings.reconcile_interval
        delay = backoff = interval
        while not self._stopping:
            try:
                await asyncio.wait_for(self._reconcile_wake.wait(), delay)
                backoff = 0.5  # woken by a login or a handover: retry quickly if need be
            except TimeoutError:
                pass
            self._reconcile_wake.clear()
            if self._stopping:
                return
            waiting = await self.reconcile_now()
            delay = min(interval, backoff) if waiting else interval
            backoff = min(interval, backoff * 2)

    async def reconcile_now(self) -> int:
        """One pass now (tests, health); returns how many calls wait for the record."""
        assert self.reconciler is not None
        reconciler = self.reconciler
        live = await live_linkedids(self.bridge)
        try:
            report = await asyncio.to_thread(
                reconciler.run_once, live=live, asterisk_started_at=self._asterisk_started_at
            )
        except Exception as exc:
            # The class name only: a database error's text carries the SQL parameters.
            self.record["last_error"] = exc.__class__.__name__
            log.warning("reconciler pass failed: %s", exc.__class__.__name__)
            return 1
        self.record.update(report.as_status())
        self.record.update(
            rows_reconciled=reconciler.rows_reconciled,
            last_run_at=time.time(),
            last_error=None,
            live_known=live is not None,
        )
        return report.waiting

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        from hotline.ivr import IVR, customer_loader

        settings = self.settings
        self._engine = make_engine(settings.database_url)
        sessions = session_factory(self._engine)
        self._writer = CallLogWriter(self._engine, region=settings.default_region)
        self._writer_task = asyncio.create_task(self._write_loop(), name="call-log-writer")
        # The call log's second source: Asterisk's own record, read at start (whatever
        # ended while no process ran), after every login, on handovers and periodically.
        from hotline.record.wiring import make_reconciler

        self.reconciler, self._dispose_record = make_reconciler(
            settings, engine=self._engine, writer=self._writer
        )
        self._reconcile_wake.set()
        self._reconcile_task = asyncio.create_task(self._reconcile_loop(), name="reconciler")
        self.publisher.load_customer = customer_loader(sessions)
        # Queue membership follows the agents' skills, re-applied on every AMI login
        # (so an Asterisk restart, which forgets dynamic members, heals itself).
        from hotline.agents.membership import membership_login_hook

        self.membership = membership_login_hook(sessions, settings.queue_names)
        self.bridge.add_login_hook(self._after_login)
        self.live_publisher.start()
        self._live_ticker = asyncio.create_task(self._tick_live(), name="live-ticker")
        self.pushes.start()
        if settings.agi_enabled:
            ivr = IVR(
                sessions,
                self.publisher,
                region=settings.default_region,
                queues=settings.queue_names,
                default_queue=settings.default_queue,
            )
            host, port = Settings.split_bind(settings.agi_bind)
            self.agi = ivr.server(
                host,
                port,
                max_sessions=settings.agi_max_sessions,
                header_timeout=settings.agi_header_timeout,
            )
            await self.agi.start()
        await self.bridge.start()

    async def stop(self) -> None:
        if self.agi is not None:
            await self.agi.stop()
        await self.bridge.stop()  # drains queued events into the tracker first
        await self.pushes.stop()
        if self._live_ticker is not None:
            self._live_ticker.cancel()
        await self.live_publisher.stop()
        self._stopping = True
        self._wake.set()
        self._reconcile_wake.set()
        if self._reconcile_task is not None:
            try:  # a pass in flight finishes (its rows are one transaction per batch)
                await asyncio.wait_for(self._reconcile_task, timeout=10)
            except TimeoutError:
                log.error("reconciler pass did not finish within 10 s; cancelled")
                self._reconcile_task.cancel()
        if self._writer_task is not None:
            try:
                await asyncio.wait_for(self._writer_task, timeout=10)
            except TimeoutError:
                log.error(
                    "call log writer did not finish: %d records unwritten", len(self._pending)
                )
                self._writer_task.cancel()
        if self._dispose_record is not None:
            self._dispose_record()
        if self._engine is not None:
            self._engine.dispose()
        await self.bus.close()

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every record produced so far is in the database (tests, demo)."""
        deadline = time.monotonic() + timeout
        while self._pending or self.bridge.stats().get("queue_depth", 0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._pending)} call records still unwritten")
            await asyncio.sleep(0.02)

    # -- status --------------------------------------------------------------------
    def record_status(self) -> dict[str, object]:
        """Open rows, rows reconciled, the oldest unsettled row, the lag: no database read."""
        return dict(self.record)

    def ami_status(self) -> dict[str, object]:
        status = dict(self.bridge.stats())
        status.update(
            calls_open=self.tracker.stats["calls_open"],
            records_pending=len(self._pending),
            records_written=self.records_written,
            write_failures=self.write_failures,
            last_write_error=self.last_write_error,
            pops=self.publisher.stats.as_dict(),
            membership=self.membership.last_report.as_dict()
            if self.membership is not None and self.membership.last_report
            else None,
            agi=self.agi.stats() if self.agi is not None else None,
        )
        return status
