"""Call tracking: AMI events in, call-log records out (sans-I/O, the h11 pattern).

The tracker never reads a socket, a database or a clock: every time it records comes
from the event (Asterisk's ``Timestamp`` header), so replaying a recorded stream gives
exactly the records the live run gave. It is fed one event at a time, in stream order,
by the bridge's single consumer, and answers with the records to upsert *now*: a
provisional ``in_progress`` record the first time a call's caller leg appears, one when
an agent answers, and the final record once the call's last leg has hung up (a call
log is complete when the last leg of the Linkedid is gone, never at the first Hangup:
docs/call-log.md).

The parts: :mod:`hotline.ami.typed` turns each event into a typed value (once, shared
with the live state); :mod:`hotline.calls.book` knows which call a channel belongs to;
the handlers in :mod:`hotline.calls.channel_events` and :mod:`hotline.calls.queue_events`
note what happened; :mod:`hotline.calls.phases` is the call's state machine and
:mod:`hotline.calls.legs` computes the final record, with the unanswered-exit rule of
:mod:`hotline.calls.outcomes`. Garbage and events for legs never seen are skipped and
counted, never raised: the bridge must keep consuming whatever comes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

from hotline.ami.events import AMIEvent
from hotline.ami.typed import (
    AccountManager,
    AgentComplete,
    AgentConnect,
    BridgeEnter,
    CoreShowChannel,
    CustomerIdentified,
    DialEnd,
    Hangup,
    HotlineDisconnected,
    HotlineResync,
    IvrStep,
    NewCallerid,
    Newchannel,
    Newstate,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueResult,
    Rename,
    SoftHangupRequest,
    SurveyResult,
    TypedEvent,
)
from hotline.calls import channel_events as ch
from hotline.calls import queue_events as qu
from hotline.calls.book import CallBook, SkipReason
from hotline.calls.phases import CallPhase
from hotline.calls.records import CallRecord

__all__ = ["CallPhase", "CallTracker", "SkipReason"]

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=TypedEvent)
_Handler = Callable[[CallBook, Any], list[CallRecord]]


def _route(
    cls: type[_E], handler: Callable[[CallBook, _E], list[CallRecord]]
) -> tuple[type[TypedEvent], _Handler]:
    """One dispatch entry; the type variable checks that the handler takes ``cls``."""
    return cls, handler


# One dispatch table: an event type not named here costs one set lookup.
_HANDLERS: Final[dict[type[TypedEvent], _Handler]] = dict(
    [
        _route(Newchannel, ch.on_newchannel),
        _route(CoreShowChannel, ch.on_core_show_channel),
        _route(Newstate, ch.on_touch),
        _route(BridgeEnter, ch.on_touch),
        _route(NewCallerid, ch.on_new_callerid),
        _route(Rename, ch.on_rename),
        _route(Hangup, ch.on_hangup),
        _route(SoftHangupRequest, ch.on_soft_hangup),
        _route(QueueCallerJoin, qu.on_queue_join),
        _route(QueueCallerAbandon, qu.on_queue_abandon),
        _route(QueueCallerLeave, qu.on_queue_leave),
        _route(AgentConnect, qu.on_agent_connect),
        _route(AgentComplete, qu.on_agent_complete),
        _route(DialEnd, qu.on_dial_end),
        _route(QueueResult, qu.on_queue_result),
        _route(IvrStep, qu.on_ivr_step),
        _route(CustomerIdentified, qu.on_identified),
        _route(SurveyResult, qu.on_survey),
        _route(AccountManager, qu.on_account_manager),
        _route(HotlineResync, ch.on_resync),
        _route(HotlineDisconnected, ch.on_disconnected),
    ]
)
_NAMES: Final = frozenset(cls.EVENT for cls in _HANDLERS)


class CallTracker:
    """Builds one :class:`CallRecord` per call from the AMI event stream.

    ``feed`` never raises: bad events are skipped and counted by :class:`SkipReason`.
    State is bounded by the calls currently open: a call is evicted as soon as its final
    record is returned. Two trackers fed the same events return equal records.
    """

    def __init__(self, *, region: str = "CN", short_abandon_seconds: float = 5.0) -> None:
        self._book = CallBook(region=region, short_abandon_seconds=short_abandon_seconds)
        self._events = 0  # an attribute, not in the book's counts: bumped on every event

    @property
    def region(self) -> str:
        """Where caller numbers without a country code are assumed to be (ISO 3166)."""
        return self._book.region

    @property
    def short_abandon_seconds(self) -> float:
        return self._book.short_abandon_seconds

    @property
    def handled_events(self) -> frozenset[str]:
        """The event names the tracker uses (the bridge may filter on these)."""
        return _NAMES

    def feed(self, event: AMIEvent) -> list[CallRecord]:
        """Apply one event; return the records to upsert now (usually none).

        Returned records are snapshots: the tracker never mutates them afterwards.
        """
        self._events += 1
        if event.name not in _NAMES:
            return []
        try:
            typed = event.typed
            if typed is None:  # a UserEvent of a kind the call log does not use
                return []
            handler = _HANDLERS.get(type(typed))
            return [] if handler is None else handler(self._book, typed)
        except Exception:  # a tracker bug must not stop the bridge's consumer
            log.exception(
                "call tracker failed on %s uniqueid=%s", event.name, event.headers.get("Uniqueid")
            )
            self._book.count_skip(SkipReason.INTERNAL_ERROR)
            return []

    def take_handovers(self) -> list[str]:
        """Linkedids closed since the last call whose end the record must settle."""
        handovers, self._book.handovers = self._book.handovers, []
        return handovers

    def open_calls(self) -> list[CallRecord]:
        """Snapshots of the calls still open, oldest first (outcome ``in_progress``)."""
        return [call.snapshot() for call in self._book.calls.values()]

    @property
    def stats(self) -> dict[str, int]:
        """Counters: events, skipped (and ``skipped.<reason>``), calls_open, calls_closed…"""
        book = self._book
        stats = {"events": self._events, **book.counts}
        stats["calls_open"] = len(book.calls)
        stats["legs_open"] = len(book.legs)
        return stats
