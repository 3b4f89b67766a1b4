"""Panoramisk's AMI protocol with our framing and per-frame error isolation.

Upstream 1.4 decodes each TCP read on its own with ``errors="ignore"``, so a multi-byte
character split across two reads (a CJK caller name under load) is silently deleted; and
any exception raised while handling one message escapes ``data_received``, after which
asyncio closes the transport and the rest of that read is gone. This subclass frames
bytes with :class:`~hotline.ami.framing.AMIFramer`, isolates every frame in its own
``try``, and sends plain events straight to ``factory.event_sink`` (which only enqueues)
instead of through panoramisk's slower Message + fnmatch dispatch. Responses, and events that
belong to one of our pending actions (the items of an EventList), still go through
``handle_message`` so panoramisk's action futures resolve as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from hotline.ami.events import AMIEvent
from hotline.ami.framing import AMIFramer, Frame, FramerStats

__all__ = ["PASSTHROUGH_EVENTS", "ProtocolStats", "SafeAMIProtocol"]

log = logging.getLogger(__name__)

# Events panoramisk itself must still see when an event_sink is set: FullyBooted resends
# the actions that were in flight at a disconnect, Shutdown triggers the reconnect.
PASSTHROUGH_EVENTS = frozenset({"FullyBooted", "Shutdown"})


@dataclass(slots=True)
class ProtocolStats:
    """Counters shared across reconnects when the factory provides one."""

    handler_errors: int = 0
    events_sunk: int = 0
    messages: int = 0
    record_errors: int = 0
    last_event_at: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class SafeAMIProtocol(AMIProtocol):  # type: ignore[misc]  # untyped base (panoramisk)
    """AMI protocol that never drops the connection because of a frame or a handler.

    ``factory`` may be passed at construction (``protocol_factory=lambda:
    SafeAMIProtocol(factory=manager)``) so the banner, which can arrive before
    panoramisk's ``Manager.connection_made`` wires ``protocol.factory``, is recorded and
    counted too. Optional factory attributes it uses: ``event_sink`` (a callable taking
    an :class:`AMIEvent`), ``record_stream`` (a binary file), ``framer_stats``
    (:class:`FramerStats`) and ``protocol_stats`` (:class:`ProtocolStats`).
    """

    version: str | None  # the banner's AMI version, set by panoramisk or by our framer
    responses: dict[str, Any]  # ActionID → pending panoramisk Action

    def __init__(self, factory: Any = None) -> None:
        self.factory = factory

    def connection_made(self, transport: Any) -> None:
        factory = self.factory
        super().connection_made(transport)  # resets self.factory to None
        self.factory = factory
        self.framer = AMIFramer(stats=getattr(factory, "framer_stats", None) or FramerStats())
        self.stats: ProtocolStats = getattr(factory, "protocol_stats", None) or ProtocolStats()

    def data_received(self, data: bytes) -> None:
        factory = self.factory
        record = getattr(factory, "record_stream", None)
        if record is not None:
            try:
                record.write(data)
            except Exception:
                self.stats.record_errors += 1
                log.exception("could not write the AMI recording; continuing without it")
                factory.record_stream = None
        try:
            frames = self.framer.feed(data)
        except Exception:  # the framer must not raise; if it does, keep the link alive
            self.stats.handler_errors += 1
            log.exception("AMI framer failed on a %d-byte read", len(data))
            return
        if self.version is None and self.framer.version is not None:
            self.version = self.framer.version
        if not frames:
            return
        sink: Callable[[AMIEvent], None] | None = getattr(factory, "event_sink", None)
        responses = self.responses
        now = time.time()
        stats = self.stats
        for frame in frames:
            name = frame.headers.get("Event")
            if sink is not None and name is not None:
                action_id = frame.headers.get("ActionID")
                if action_id is None or action_id not in responses:
                    stats.events_sunk += 1
                    stats.last_event_at = now
                    try:
                        sink(frame.to_event(now))
                    except Exception:
                        stats.handler_errors += 1
                        log.exception("AMI event sink failed on %s; continuing", name)
                    if name not in PASSTHROUGH_EVENTS:
                        continue
            stats.messages += 1
            try:
                self.handle_message(frame.to_message())
            except Exception:
                stats.handler_errors += 1
                log.exception(
                    "error handling AMI frame (Event=%s ActionID=%s); continuing",
                    name,
                    frame.headers.get("ActionID"),
                )
                self._fail_pending(frame)

    def _fail_pending(self, frame: Frame) -> None:
        """A frame of a pending action blew up: fail that action rather than leak it.

        Example: 1.4's ``Action.multi`` raises KeyError on an ``Originate`` without
        ``Async`` (it reads the action's ``Async`` header unguarded); without this, the
        caller would wait forever.
        """
        action_id = frame.headers.get("ActionID")
        action = self.responses.get(action_id) if action_id is not None else None
        if action is None:
            return
        for key in {action.id, action.action_id}:
            if key:
                self.responses.pop(key, None)
        future = action.future
        if not future.done():
            future.set_exception(
                RuntimeError(f"AMI response to action {action_id} could not be handled")
            )
