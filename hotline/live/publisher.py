"""Live state → supervisor frames on the bus, and the latest snapshot for every API process.

:class:`LivePublisher` sits between :class:`~hotline.live.state.LiveState` (fed on the AMI
bridge's single consumer) and bus stream ``supervisor``, which ``/ws/supervisor`` pages
read and resume. Two rules shape it:

* **The consumer never waits.** :meth:`LivePublisher.on_changes` is synchronous: it turns
  each change into a JSON-ready frame *now* (the views must be taken before the next event
  changes the state) and queues it; one writer task publishes frames in order. A slow or
  absent Redis delays frames, it never stalls AMI reading.
* **A snapshot and the frames after it are consistent.** A full ``snapshot`` frame goes on
  the same stream, in the same order, at most every ``min_interval`` seconds while things
  change (or at once after a reset or a link change), and the writer stores it with *its own
  stream id*. A page that connects gets that snapshot and then every frame after that id,
  so nothing falls between the two; a page that resumes with ``?last_id=`` replays the
  snapshot frames it missed like any other frame.

Where the latest snapshot lives: with Redis, in a plain key next to the streams
(``hotline:live:snapshot``), not found by scanning the stream for the last ``snapshot``
frame. The stream is capped (``maxlen``) and mostly change frames, so the last snapshot may
be far back or trimmed away, and every ``GET /api/queues`` would cost an ``XREVRANGE`` walk;
a key is one ``GET`` and survives trimming. Without Redis there is only one process, and
the snapshot is kept in memory next to that process's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Iterable
from typing import Any

from hotline.bus import Bus, RedisBus
from hotline.live.changes import (
    AgentUpdated,
    CallerWaiting,
    Change,
    LinkChanged,
    QueueUpdated,
    StateReset,
)
from hotline.live.state import LiveState
from hotline.types import SNAPSHOT_KEY, SUPERVISOR_STREAM

__all__ = [
    "LivePublisher",
    "get_snapshot",
    "set_snapshot",
]

log = logging.getLogger(__name__)


_MEMORY: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


# -- the stored snapshot ------------------------------------------------------------------


async def set_snapshot(bus: Bus, record: dict[str, Any]) -> None:
    """Store ``{"id", "at", "snapshot"}`` as the latest snapshot for every API process.

    Reaches into :class:`RedisBus` for its client and key prefix: the snapshot must live in
    the same Redis as the stream whose id it carries, and the bus has no key API of its own.
    """
    if isinstance(bus, RedisBus):
        payload = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        await bus._redis.set(bus._prefix + SNAPSHOT_KEY, payload)
    else:
        _MEMORY[bus] = record


async def get_snapshot(bus: Bus) -> dict[str, Any] | None:
    """The latest stored ``{"id", "at", "snapshot"}``, or None when no publisher ran yet."""
    if isinstance(bus, RedisBus):
        raw = await bus._redis.get(bus._prefix + SNAPSHOT_KEY)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            log.warning("stored live snapshot is not JSON; ignored")
            return None
        return record if isinstance(record, dict) else None
    return _MEMORY.get(bus)


# -- frames -------------------------------------------------------------------------------


def _frame(
    change: Change, state: LiveState, now: float, views: dict[str, dict[str, Any] | None]
) -> dict[str, Any]:
    """One change as the page reads it: always a ``type``, the time, and whole views.

    Queue and agent frames carry the full view rather than a diff so that a page can apply
    any frame on its own (after a resume, or after a missed one) and be right.
    """
    if isinstance(change, QueueUpdated):
        if change.queue not in views:
            views[change.queue] = state.queue_view(change.queue, now)
        return {"type": "queue", "queue": change.queue, "view": views[change.queue], "at": now}
    if isinstance(change, AgentUpdated):
        view = state.agent_view(change.interface, now)
        return {"type": "agent", "interface": change.interface, "view": view, "at": now}
    if isinstance(change, CallerWaiting):
        if change.queue not in views:
            views[change.queue] = state.queue_view(change.queue, now)
        view = views[change.queue] or {}
        waiting = view.get("waiting", ())
        caller = next((c for c in waiting if c["uniqueid"] == change.uniqueid), None)
        data = change.as_dict()
        data.pop("kind", None)
        return {"type": change.kind, **data, "caller": caller, "at": now}
    data = change.as_dict()
    kind = data.pop("kind", getattr(change, "kind", "change"))
    return {"type": kind, **data, "at": now}


class LivePublisher:
    """Publishes a :class:`LiveState`'s changes and snapshots on bus stream ``supervisor``.

    Call :meth:`on_changes` with what ``LiveState.feed``/``apply_queue_status`` returned,
    on the consumer, in order; call :meth:`tick` about once a second (it runs
    ``LiveState.tick`` and sends the trailing snapshot a throttled change still owes).
    ``now`` is the wall clock (``time.time()``): it dates frames and views, and pages tick
    waits from it.
    """

    def __init__(
        self,
        bus: Bus,
        state: LiveState,
        *,
        stream: str = SUPERVISOR_STREAM,
        min_interval: float = 0.5,
        refresh_interval: float = 5.0,
        max_pending: int = 10_000,
    ) -> None:
        self.bus = bus
        self.state = state
        self.stream = stream
        self.min_interval = min_interval
        self.refresh_interval = refresh_interval  # re-store an unchanged snapshot this often
        self.max_pending = max_pending
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._dirty = False  # changes since the last snapshot frame
        self._force = False  # frames were lost or state was reset: the next snapshot is due now
        self._last_snapshot = -float("inf")
        self._last_store = -float("inf")
        self._last_id: str | None = None  # newest id the writer published
        self.stats: dict[str, int] = {
            "frames": 0,
            "snapshots": 0,
            "stores": 0,
            "dropped": 0,
            "publish_failures": 0,
        }

    # -- consumer side (synchronous, cheap) ----------------------------------------------

    def on_changes(self, changes: Iterable[Change], now: float) -> None:
        """Queue a frame per change, then a snapshot if one is due (throttled)."""
        views: dict[str, dict[str, Any] | None] = {}
        any_change = False
        for change in changes:
            any_change = True
            if isinstance(change, (StateReset, LinkChanged)):
                self._force = True  # many things changed at once; pages want a snapshot
            self._put("frame", _frame(change, self.state, now, views))
        if any_change:
            self._dirty = True
            self.publish_snapshot(now)

    def tick(self, now: float) -> None:
        """Once a second: time-driven changes (wrap-up ends, midnight), trailing snapshot."""
        self.on_changes(self.state.tick(now), now)
        self.publish_snapshot(now)

    def publish_snapshot(self, now: float, *, force: bool = False) -> bool:
        """Queue a full ``snapshot`` frame if something changed and ``min_interval`` passed
        (or ``force``); return whether one was queued.

        When nothing changed, the stored copy is still refreshed every ``refresh_interval``
        seconds (store only, no frame), so its ``at`` tells readers the producer is alive.
        """
        force = force or self._force
        if not (force or self._dirty):
            if not 0 <= now - self._last_store < self.refresh_interval:
                self._last_store = now
                self._put("store", self.state.snapshot(now))
            return False
        if not force and 0 <= now - self._last_snapshot < self.min_interval:
            return False
        self._dirty = self._force = False
        self._last_snapshot = self._last_store = now
        self._put("snapshot", {"type": "snapshot", "snapshot": self.state.snapshot(now), "at": now})
        return True

    def _put(self, kind: str, item: dict[str, Any]) -> None:
        if self._queue.qsize() >= self.max_pending:
            # Pages would miss this frame: drop it, count it, and owe them a snapshot.
            self.stats["dropped"] += 1
            self._force = True
            return
        self._queue.put_nowait((kind, item))
        if self._task is None:
            self._start_if_running()

    # -- writer side ------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer task (idempotent); frames queued before it are kept."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-publisher")

    def _start_if_running(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop yet: start() will run it later
            asyncio.get_running_loop()
            self.start()

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            kind, data = item
            try:
                await self._write(kind, data)
            except Exception as exc:
                self.stats["publish_failures"] += 1
                self._force = True  # pages missed something; resend the whole picture
                log.warning("live frame %s not published: %s", kind, type(exc).__name__)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    async def _write(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "store":
            if self._last_id is None:
                self._last_id = await self.bus.last_id(self.stream)
            await set_snapshot(self.bus, {"id": self._last_id, "at": data["at"], "snapshot": data})
            self.stats["stores"] += 1
            return
        self._last_id = await self.bus.publish(self.stream, data)
        if kind == "snapshot":
            record = {"id": self._last_id, "at": data["at"], "snapshot": data["snapshot"]}
            await set_snapshot(self.bus, record)
            self.stats["snapshots"] += 1
        else:
            self.stats["frames"] += 1

    async def drain(self) -> None:
        """Wait until every queued frame is published (tests, shutdown)."""
        if self._task is None:
            self.start()
        await self._queue.join()

    async def stop(self, timeout: float = 5.0) -> None:
        """Publish what is queued (up to ``timeout`` seconds), then end the writer."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(self._task, timeout)
        except TimeoutError:
            log.error("live publisher did not drain: %d frames lost", self._queue.qsize())
            self._task.cancel()
        self._task = None

    @property
    def pending(self) -> int:
        return self._queue.qsize()
