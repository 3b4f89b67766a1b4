"""Call tracker handlers for channel events: legs appear, change and hang up.

Each handler takes the tracker's :class:`~hotline.calls.book.CallBook` and one typed
event and returns the records to upsert now. A call opens (with a provisional
``in_progress`` record) when its caller leg appears, and closes once the last leg of its
Linkedid has hung up, never at the first Hangup (docs/call-log.md). The bridge's own
events (a resync listing after a reconnect, the link dropping) are handled here too,
since what they reconcile is which legs are still alive.
"""

from __future__ import annotations

import logging

from hotline.ami.typed import (
    SOFTHANGUP_SHUTDOWN,
    BridgeEnter,
    CoreShowChannel,
    Hangup,
    HotlineDisconnected,
    HotlineResync,
    NewCallerid,
    Newchannel,
    Newstate,
    Rename,
    SoftHangupRequest,
)
from hotline.calls.book import CallBook, SkipReason
from hotline.calls.legs import Attempt, Call
from hotline.calls.phases import Step
from hotline.calls.records import ASTERISK_SHUTDOWN, CallRecord
from hotline.types import NO_VALUE

__all__ = [
    "on_core_show_channel",
    "on_disconnected",
    "on_hangup",
    "on_new_callerid",
    "on_newchannel",
    "on_rename",
    "on_resync",
    "on_touch",
]

log = logging.getLogger(__name__)


def on_newchannel(book: CallBook, event: Newchannel) -> list[CallRecord]:
    uniqueid = event.uniqueid
    if uniqueid in NO_VALUE:
        book.skip(SkipReason.NO_UNIQUEID, event)
        return []
    if uniqueid in book.legs or uniqueid in book.gone:
        book.skip(SkipReason.DUPLICATE, event)
        return []
    linkedid: str = event.linkedid  # a caller leg's Uniqueid is its Linkedid
    if linkedid in NO_VALUE:
        book.skip(SkipReason.NO_LINKEDID, event)
        return []
    call = book.call_of(linkedid)
    if call is not None:
        book.add_leg(uniqueid, linkedid, call)
        return []
    if uniqueid != linkedid:
        book.skip(SkipReason.ORPHAN_LEG, event)
        return []
    call = book.open_call(
        uniqueid, event.channel, event.caller_id_num, event.caller_id_name, event.time
    )
    out: list[CallRecord] = []
    book.locate(event, out)  # state Up, CUSTOMER_ID
    out.append(call.snapshot())
    return out


def on_core_show_channel(book: CallBook, event: CoreShowChannel) -> list[CallRecord]:
    """A resync listing: adopt channels that began while we were disconnected.

    Known legs are just refreshed (a changed Linkedid still merges). An unknown
    caller leg opens a call dated back by its ``Duration``; if it sits in
    ``Queue()`` the queue is noted (its join time comes later from a HoldTime).
    """
    uniqueid = event.uniqueid
    out: list[CallRecord] = []
    if uniqueid in book.legs:
        book.locate(event, out)
        return out
    if uniqueid in NO_VALUE:
        book.skip(SkipReason.NO_UNIQUEID, event)
        return out
    linkedid: str = event.linkedid  # a caller leg's Uniqueid is its Linkedid
    if linkedid in NO_VALUE:
        book.skip(SkipReason.NO_LINKEDID, event)
        return out
    call = book.call_of(linkedid)
    if call is not None:
        book.add_leg(uniqueid, linkedid, call)
        book.locate(event, out)
        return out
    if uniqueid != linkedid:
        book.skip(SkipReason.ORPHAN_LEG, event)
        return out
    age = event.duration or 0.0
    call = book.open_call(
        uniqueid, event.channel, event.caller_id_num, event.caller_id_name, event.time - age
    )
    call.gap = True  # what happened before we attached is in Asterisk's record only
    if event.queue:
        _adopt_queued(call, event.queue)
    book.locate(event, out)
    out.append(call.snapshot())
    return out


def _adopt_queued(call: Call, queue: str) -> None:
    call.attempts.append(Attempt(queue))
    call.record.queue = queue
    call.record.queues.append(queue)
    call.step(Step.JOINED)


def on_touch(book: CallBook, event: Newstate | BridgeEnter) -> list[CallRecord]:
    """Newstate and BridgeEnter: only what every snapshot says (state, linkedid)."""
    out: list[CallRecord] = []
    book.locate(event, out)
    return out


def on_new_callerid(book: CallBook, event: NewCallerid) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is not None and leg.uniqueid == leg.call.record.caller_uniqueid:
        book.fill_caller(leg.call.record, event.caller_id_num, event.caller_id_name)
    return out


def on_rename(book: CallBook, event: Rename) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is not None and event.new_name and leg.uniqueid == leg.call.record.caller_uniqueid:
        leg.call.record.caller_channel = event.new_name
    return out


def on_hangup(book: CallBook, event: Hangup) -> list[CallRecord]:
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if leg is None:
        return out
    call = leg.call
    if leg.uniqueid == call.record.caller_uniqueid:
        call.record.hangup_cause = event.cause
    book.forget_leg(leg, event.time)
    if not call.legs:
        out.append(book.close(call, event.time))
    return out


def on_soft_hangup(book: CallBook, event: SoftHangupRequest) -> list[CallRecord]:
    """A shutdown cuts the caller: the call is ``failed`` (answered stays answered) with
    ``end_reason`` ``asterisk_shutdown``, never an abandon (docs/call-log.md). AMI's
    ``Shutdown`` event comes about a second after these, too late to say so."""
    out: list[CallRecord] = []
    leg = book.locate(event, out)
    if (
        leg is not None
        and event.cause == SOFTHANGUP_SHUTDOWN
        and leg.uniqueid == leg.call.record.caller_uniqueid
    ):
        leg.call.cut = ASTERISK_SHUTDOWN
    return out


def on_resync(book: CallBook, event: HotlineResync) -> list[CallRecord]:
    """``HotlineResync``: the channels alive in Asterisk after a reconnect.

    Legs not listed hung up while we were away; a call left with no leg ended then,
    at the latest, so it is closed at the resync's time with the outcome its known
    history gives. A resync without the ``Uniqueids`` header is refused: reading it
    as "nothing alive" would close every call.
    """
    alive = event.alive
    if alive is None:
        book.skip(SkipReason.BAD_FIELD, event)
        return []
    book.counts["resyncs"] += 1
    at = event.time
    touched: dict[str, Call] = {}
    for leg in [leg for uid, leg in book.legs.items() if uid not in alive]:
        touched[leg.call.key] = leg.call
        leg.call.gap = True  # it ended while we were away: its end is in the record
        book.forget_leg(leg, at)
    out = [book.close(call, at) for call in touched.values() if not call.legs]
    if out:
        log.info("resync closed %d call(s) that ended while disconnected", len(out))
    return out


def on_disconnected(book: CallBook, event: HotlineDisconnected) -> list[CallRecord]:
    """State is kept and the resync after login reconciles it; every open call now has a
    hole in its history, so its end will be settled from Asterisk's record."""
    book.counts["disconnects"] += 1
    for call in book.calls.values():
        call.gap = True
    return []
