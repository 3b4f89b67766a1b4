"""The call tracker's book of open legs and calls: which call an event's channel belongs to.

Asterisk copies the oldest Linkedid onto every channel of a bridge, so an event can show
a known leg under a new Linkedid (a transfer, a pickup); the two calls are then merged
and the older one keeps the key, as Wazo's call log does with ``min(linkedid)``. Events
for legs never seen (the stream began mid-call, a duplicate after Hangup) are skipped
and counted by :class:`SkipReason`, never raised.

State is bounded by the calls currently open: a call leaves the book as soon as its
final record is returned, and only the last few thousand hung-up Uniqueids are kept.
"""

from __future__ import annotations

import enum
import logging
from typing import Final

from hotline.ami.typed import UP, ChannelEvent, TypedEvent
from hotline.calls.legs import Call, Leg
from hotline.calls.phases import Step
from hotline.calls.records import CallRecord, Outcome, SettledBy
from hotline.phones import to_e164
from hotline.types import NO_VALUE

__all__ = ["CallBook", "SkipReason"]

log = logging.getLogger(__name__)

_GONE_MEMORY: Final = 4096  # recently hung-up uniqueids kept to tell a duplicate from a stranger


class SkipReason(enum.StrEnum):
    """Why an event changed nothing; each is a counter in ``CallTracker.stats``."""

    NO_UNIQUEID = "no_uniqueid"
    NO_LINKEDID = "no_linkedid"
    UNKNOWN_LEG = "unknown_leg"  # never saw its Newchannel (stream began mid-call)
    ORPHAN_LEG = "orphan_leg"  # a new leg of a call whose caller leg we never saw
    DUPLICATE = "duplicate"
    BAD_FIELD = "bad_field"
    INTERNAL_ERROR = "internal_error"  # a bug in the tracker, logged with a traceback


def customer_id(value: str | None) -> int | None:
    """The CUSTOMER_ID channel variable as the IVR sets it: ASCII digits, at most 18."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


class CallBook:
    """Open legs by Uniqueid, open calls by Linkedid (and merged-away aliases), counters."""

    def __init__(self, *, region: str, short_abandon_seconds: float) -> None:
        self.region = region
        self.short_abandon_seconds = short_abandon_seconds
        self.legs: dict[str, Leg] = {}
        self.calls: dict[str, Call] = {}
        self.aliases: dict[str, str] = {}  # absorbed linkedid -> surviving call key
        self.gone: dict[str, None] = {}  # ordered set of recently hung-up uniqueids
        # Linkedids of calls closed with a hole in their history, for the reconciler;
        # the owner drains it (CallTracker.take_handovers).
        self.handovers: list[str] = []
        self.counts: dict[str, int] = {
            "skipped": 0,
            "calls_opened": 0,
            "calls_closed": 0,
            "merges": 0,
            "resyncs": 0,
            "disconnects": 0,
            "handed_to_record": 0,
        }

    def count_skip(self, reason: SkipReason) -> None:
        counts = self.counts
        counts["skipped"] += 1
        key = "skipped." + reason
        counts[key] = counts.get(key, 0) + 1

    def skip(self, reason: SkipReason, event: TypedEvent) -> None:
        """Count an event that changed nothing, and say why at debug level."""
        self.count_skip(reason)
        log.debug(
            "skipped %s uniqueid=%s: %s",
            type(event).__name__,
            getattr(event, "uniqueid", ""),
            reason,
        )

    def call_of(self, linkedid: str) -> Call | None:
        """The open call a Linkedid names, following merges."""
        return self.calls.get(self.aliases.get(linkedid, linkedid))

    def locate(self, event: ChannelEvent, out: list[CallRecord]) -> Leg | None:
        """The known leg the event is about, after following a Linkedid change.

        Also notes what any snapshot event can tell: the caller leg reaching Up, and the
        CUSTOMER_ID channel variable once the IVR has set it. Records of calls closed by
        a merge are appended to ``out``.
        """
        uniqueid = event.uniqueid
        leg = self.legs.get(uniqueid)
        if leg is None:
            if uniqueid in NO_VALUE:
                reason = SkipReason.NO_UNIQUEID
            elif uniqueid in self.gone:
                reason = SkipReason.DUPLICATE
            else:
                reason = SkipReason.UNKNOWN_LEG
            self.skip(reason, event)
            return None
        linkedid = event.linkedid
        if linkedid and linkedid != leg.linkedid and linkedid not in NO_VALUE:
            self._relink(leg, linkedid, event.time, out)
        call = leg.call
        if (
            not call.caller_up
            and event.channel_state == UP
            and uniqueid == call.record.caller_uniqueid
        ):
            call.caller_up = True
            call.step(Step.CALLER_UP)
        if event.customer_id:  # set (the IVR's identify step ran)
            found = customer_id(event.customer_id)
            if found is not None:
                call.record.customer_id = found
        return leg

    def fill_caller(self, record: CallRecord, number: str, name: str) -> None:
        if number not in NO_VALUE and number != record.caller_number:
            record.caller_number = number
            record.caller_e164 = to_e164(number, self.region)
        if name not in NO_VALUE:
            record.caller_name = name

    def open_call(
        self, uniqueid: str, channel: str, number: str, name: str, arrived_at: float
    ) -> Call:
        """A new call whose caller leg is ``uniqueid`` (its own Linkedid); leg added."""
        record = CallRecord(
            linkedid=uniqueid,
            caller_uniqueid=uniqueid,
            caller_channel=channel,
            arrived_at=arrived_at,
        )
        self.fill_caller(record, number, name)
        call = Call(uniqueid, record)
        self.calls[uniqueid] = call
        self.counts["calls_opened"] += 1
        self.add_leg(uniqueid, uniqueid, call)
        return call

    def add_leg(self, uniqueid: str, linkedid: str, call: Call) -> Leg:
        leg = Leg(uniqueid, linkedid, call)
        self.legs[uniqueid] = leg
        call.legs[uniqueid] = leg
        return leg

    def forget_leg(self, leg: Leg, at: float) -> None:
        """Drop a leg that hung up (or that a resync found gone) at ``at``."""
        uniqueid = leg.uniqueid
        call = leg.call
        del self.legs[uniqueid]
        del call.legs[uniqueid]
        self.gone[uniqueid] = None
        if len(self.gone) > _GONE_MEMORY:
            del self.gone[next(iter(self.gone))]
        if uniqueid == call.record.caller_uniqueid:
            call.caller_ended_at = at
        if uniqueid == call.agent_uniqueid and call.agent_ended_at is None:
            call.agent_ended_at = at

    def close(self, call: Call, at: float) -> CallRecord:
        """The final record of a call whose last leg is gone; the call leaves the book."""
        del self.calls[call.key]
        for alias in call.aliases:
            if self.aliases.get(alias) == call.key:
                del self.aliases[alias]
        return self._finish(call, at)

    def _finish(self, call: Call, at: float) -> CallRecord:
        self.counts["calls_closed"] += 1
        record = call.finish(at, self.short_abandon_seconds)
        if call.gap:
            # What we saw is not the whole call: the row stays open for the reconciler
            # (hotline/record/), which settles it from CEL and the queue_log.
            record.outcome = Outcome.IN_PROGRESS
            self.counts["handed_to_record"] += 1
            self.handovers.append(record.linkedid)
        else:
            record.settled_by = SettledBy.LIVE
        return record

    # -- merging ------------------------------------------------------------------------

    def _relink(self, leg: Leg, linkedid: str, at: float, out: list[CallRecord]) -> None:
        """A known leg now shows another Linkedid: it joined a bridge with another call."""
        leg.linkedid = linkedid
        here = leg.call
        other = self.call_of(linkedid)
        if other is None:
            # A call we do not track (it began before we attached): remember the alias
            # so later legs of it land here instead of being orphans.
            self.aliases[linkedid] = here.key
            here.aliases.append(linkedid)
            return
        if other is here:
            return
        older, newer = sorted(
            (here, other),
            key=lambda c: (c.record.arrived_at if c.record.arrived_at is not None else 0.0, c.key),
        )
        out.append(self._merge(older, newer, at))

    def _merge(self, keeper: Call, absorbed: Call, at: float) -> CallRecord:
        """Move ``absorbed`` into ``keeper``; return the absorbed call's final record.

        The absorbed call already had a provisional row, so it is closed (outcome from
        what it did on its own, ``merged_into`` pointing at the keeper) rather than left
        ``in_progress`` forever. The keeper fills its blanks from it: an agent consult
        leg bridged into a customer call, or a pickup, brings its answer with it.
        """
        self.counts["merges"] += 1
        log.debug("merging call %s into %s", absorbed.key, keeper.key)
        for uniqueid, leg in absorbed.legs.items():
            leg.call = keeper
            keeper.legs[uniqueid] = leg
        absorbed.legs = {}
        for alias in [absorbed.key, *absorbed.aliases]:
            self.aliases[alias] = keeper.key
            keeper.aliases.append(alias)
        del self.calls[absorbed.key]
        kept, gone = keeper.record, absorbed.record
        if kept.customer_id is None:
            kept.customer_id = gone.customer_id
        if kept.answered_at is None and gone.answered_at is not None:
            kept.answered_at = gone.answered_at
            kept.agent, kept.agent_interface = gone.agent, gone.agent_interface
            keeper.agent_uniqueid = absorbed.agent_uniqueid
            keeper.talk_time = absorbed.talk_time
            keeper.step(Step.ANSWERED)
        if not keeper.attempts and absorbed.attempts:
            keeper.attempts = absorbed.attempts
            kept.queued_at, kept.queue, kept.queues = gone.queued_at, gone.queue, gone.queues
            kept.queue_status = gone.queue_status
        record = self._finish(absorbed, at)
        record.merged_into = keeper.key
        return record
