"""Call tracking: AMI events in, call-log records out (sans-I/O, the h11 pattern).

The tracker never reads a socket, a database or a clock: every time it records comes
from ``event.time`` (Asterisk's ``Timestamp`` header), so replaying a recorded stream
gives exactly the records the live run gave. It is fed one event at a time, in stream
order, by the bridge's single consumer, and answers with the records to upsert *now*:
a provisional ``in_progress`` record the first time a call's caller leg appears, and
the final record once the call's last leg has hung up (DESIGN §2: a call log is
complete when the last leg of the Linkedid is gone, never at the first Hangup).

Model (research/panoramisk-ami.md §3.6): a *leg* is a channel, keyed by Uniqueid; a
*call* is keyed by Linkedid, and its caller leg is the channel whose Uniqueid is the
Linkedid. Asterisk copies the oldest linkedid onto every channel of a bridge, so an
event can show a known leg under a new Linkedid; the two calls are then merged and the
older one keeps the key (Wazo's ``min(linkedid)``).

Outcomes follow DESIGN §4. ``QueueCallerAbandon`` also fires on timeout, leave-empty and
withdraw, so it is never trusted alone: the dialplan's ``UserEvent(QueueResult)`` status
and what the caller does next (join another queue, or hang up) decide. Garbage and
events for legs we never saw (the stream began mid-call, a duplicate after Hangup) are
skipped and counted, never raised: the bridge must keep consuming whatever comes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hotline.ami.events import AMIEvent
from hotline.calls.records import CallRecord, Outcome
from hotline.phones import to_e164

__all__ = ["OVERFLOW_STATUSES", "CallPhase", "CallTracker", "SkipReason"]

log = logging.getLogger(__name__)

# Values Asterisk uses for "no value" in snapshot fields.
_GARBAGE = frozenset({"", "<unknown>", "<null>", "(null)", "<none>"})
# QUEUESTATUS values meaning "the queue could not take, or gave away, the caller".
OVERFLOW_STATUSES = frozenset(
    {"FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "WITHDRAW"}
)
_TIMEOUT = "TIMEOUT"
_UP = "6"  # ChannelState of an answered channel
_GONE_MEMORY = 4096  # recently hung-up uniqueids kept to tell a duplicate from a stranger


class CallPhase(enum.StrEnum):
    """Where a call is now; drives duplicate detection and what a resync close means."""

    RINGING = "ringing"  # the caller leg exists but Asterisk has not answered it
    IVR = "ivr"  # answered, not (yet) in a queue
    QUEUED = "queued"
    LEFT_QUEUE = "left_queue"  # left a queue unanswered; the dialplan decides what next
    CONNECTED = "connected"  # an agent answered


class SkipReason(enum.StrEnum):
    """Why an event changed nothing; each is a counter in :attr:`CallTracker.stats`."""

    NO_UNIQUEID = "no_uniqueid"
    NO_LINKEDID = "no_linkedid"
    UNKNOWN_LEG = "unknown_leg"  # never saw its Newchannel (stream began mid-call)
    ORPHAN_LEG = "orphan_leg"  # a new leg of a call whose caller leg we never saw
    DUPLICATE = "duplicate"
    BAD_FIELD = "bad_field"
    INTERNAL_ERROR = "internal_error"  # a bug in the tracker, logged with a traceback


@dataclass(slots=True)
class _Attempt:
    """One pass through one queue (or one failed try to join it)."""

    queue: str
    joined_at: float | None = None
    left_at: float | None = None
    hold_time: float | None = None  # HoldTime header (s) of the abandon or connect
    status: str | None = None  # QUEUESTATUS from the dialplan's QueueResult
    abandoned: bool = False  # QueueCallerAbandon seen: an abandon only if nothing says otherwise
    leave_seen: bool = False  # QueueCallerLeave seen
    answered: bool = False


@dataclass(slots=True)
class _Call:
    key: str
    record: CallRecord
    phase: CallPhase = CallPhase.RINGING
    legs: dict[str, _Leg] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)  # merged-in linkedids that map to key
    attempts: list[_Attempt] = field(default_factory=list)
    caller_up: bool = False
    caller_ended_at: float | None = None
    agent_uniqueid: str | None = None
    agent_ended_at: float | None = None
    talk_time: float | None = None  # AgentComplete TalkTime (s)
    last_ivr: tuple[float, str] | None = None  # to drop a duplicated IvrStep
    account_manager: str | None = None  # agent the dialplan rings before queueing


@dataclass(slots=True)
class _Leg:
    uniqueid: str
    linkedid: str
    call: _Call


Handler = Callable[[AMIEvent], list[CallRecord]]


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) < 1e12 else None  # NaN, inf


def _customer_id(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _seconds(value: float) -> float:
    """Round away float noise (epoch stamps near 1.7e9 carry ~1e-7 of it); never negative."""
    return max(0.0, round(value, 6))


def _hms(value: str) -> float | None:
    """CoreShowChannel ``Duration`` (``HH:MM:SS``) in seconds."""
    parts = value.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]) * 3600.0 + int(parts[1]) * 60.0 + int(parts[2])


class CallTracker:
    """Builds one :class:`CallRecord` per call from the AMI event stream.

    ``feed`` never raises: bad events are skipped and counted by :class:`SkipReason`.
    State is bounded by the calls currently open: a call is evicted as soon as its final
    record is returned. Two trackers fed the same events return equal records.
    """

    def __init__(self, *, region: str = "CN", short_abandon_seconds: float = 5.0) -> None:
        self.region = region
        self.short_abandon_seconds = short_abandon_seconds
        self._legs: dict[str, _Leg] = {}
        self._calls: dict[str, _Call] = {}
        self._aliases: dict[str, str] = {}  # absorbed linkedid -> surviving call key
        self._gone: dict[str, None] = {}  # ordered set of recently hung-up uniqueids
        self._events = 0  # an attribute, not in _counts: it is bumped on every event
        self._counts: dict[str, int] = {
            "skipped": 0,
            "calls_opened": 0,
            "calls_closed": 0,
            "merges": 0,
            "resyncs": 0,
            "disconnects": 0,
        }
        # One dispatch table: every event not named here costs one dict lookup.
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_newchannel,
            "CoreShowChannel": self._on_core_show_channel,
            "Newstate": self._on_touch,
            "BridgeEnter": self._on_touch,
            "NewCallerid": self._on_new_callerid,
            "Rename": self._on_rename,
            "Hangup": self._on_hangup,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerAbandon": self._on_queue_abandon,
            "QueueCallerLeave": self._on_queue_leave,
            "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_complete,
            "DialEnd": self._on_dial_end,
            "UserEvent": self._on_user_event,
            "HotlineResync": self._on_resync,
            "HotlineDisconnected": self._on_disconnected,
        }

    # -- public API -----------------------------------------------------------------

    @property
    def handled_events(self) -> frozenset[str]:
        """The event names the tracker uses (the bridge may filter on these)."""
        return frozenset(self._handlers)

    def feed(self, event: AMIEvent) -> list[CallRecord]:
        """Apply one event; return the records to upsert now (usually none).

        Returned records are snapshots: the tracker never mutates them afterwards.
        """
        self._events += 1
        handler = self._handlers.get(event.name)
        if handler is None:
            return []
        try:
            return handler(event)
        except Exception:  # a tracker bug must not stop the bridge's consumer
            log.exception(
                "call tracker failed on %s uniqueid=%s", event.name, event.headers.get("Uniqueid")
            )
            return self._skip(SkipReason.INTERNAL_ERROR, event)

    def open_calls(self) -> list[CallRecord]:
        """Snapshots of the calls still open, oldest first (outcome ``in_progress``)."""
        return [self._snapshot(call) for call in self._calls.values()]

    @property
    def stats(self) -> dict[str, int]:
        """Counters: events, skipped (and ``skipped.<reason>``), calls_open, calls_closed…"""
        stats = {"events": self._events, **self._counts}
        stats["calls_open"] = len(self._calls)
        stats["legs_open"] = len(self._legs)
        return stats

    # -- helpers --------------------------------------------------------------------

    def _skip(self, reason: SkipReason, event: AMIEvent) -> list[CallRecord]:
        counts = self._counts
        counts["skipped"] += 1
        key = "skipped." + reason
        counts[key] = counts.get(key, 0) + 1
        log.debug("skipped %s uniqueid=%s: %s", event.name, event.headers.get("Uniqueid"), reason)
        return []

    def _locate(self, event: AMIEvent, out: list[CallRecord]) -> _Leg | None:
        """The known leg the event is about, after following a Linkedid change.

        Also notes what any snapshot event can tell: the caller leg reaching Up, and the
        CUSTOMER_ID channel variable once the IVR has set it.
        """
        headers = event.headers
        uniqueid = headers.get("Uniqueid", "")
        leg = self._legs.get(uniqueid)
        if leg is None:
            if uniqueid in _GARBAGE:
                reason = SkipReason.NO_UNIQUEID
            elif uniqueid in self._gone:
                reason = SkipReason.DUPLICATE
            else:
                reason = SkipReason.UNKNOWN_LEG
            self._skip(reason, event)
            return None
        linkedid = headers.get("Linkedid")
        if linkedid and linkedid != leg.linkedid and linkedid not in _GARBAGE:
            self._relink(leg, linkedid, event.time, out)
        call = leg.call
        if (
            not call.caller_up
            and headers.get("ChannelState") == _UP
            and uniqueid == call.record.caller_uniqueid
        ):
            call.caller_up = True
            if call.phase is CallPhase.RINGING:
                call.phase = CallPhase.IVR
        if event.chanvars:
            customer_id = _customer_id(event.var("CUSTOMER_ID"))
            if customer_id is not None:
                call.record.customer_id = customer_id
        return leg

    def _snapshot(self, call: _Call) -> CallRecord:
        record = call.record
        return replace(record, queues=list(record.queues), ivr_path=list(record.ivr_path))

    def _fill_caller(self, record: CallRecord, headers: dict[str, str]) -> None:
        number = headers.get("CallerIDNum", "")
        if number not in _GARBAGE and number != record.caller_number:
            record.caller_number = number
            record.caller_e164 = to_e164(number, self.region)
        name = headers.get("CallerIDName", "")
        if name not in _GARBAGE:
            record.caller_name = name

    def _add_leg(self, uniqueid: str, linkedid: str, call: _Call) -> _Leg:
        leg = _Leg(uniqueid, linkedid, call)
        self._legs[uniqueid] = leg
        call.legs[uniqueid] = leg
        return leg

    def _open_call(self, event: AMIEvent, uniqueid: str, arrived_at: float) -> _Call:
        headers = event.headers
        record = CallRecord(
            linkedid=uniqueid,
            caller_uniqueid=uniqueid,
            caller_channel=headers.get("Channel", ""),
            arrived_at=arrived_at,
        )
        self._fill_caller(record, headers)
        call = _Call(uniqueid, record)
        self._calls[uniqueid] = call
        self._counts["calls_opened"] += 1
        return call

    def _forget_leg(self, leg: _Leg, at: float) -> None:
        """Drop a leg that hung up (or that a resync found gone) at ``at``."""
        uniqueid = leg.uniqueid
        call = leg.call
        del self._legs[uniqueid]
        del call.legs[uniqueid]
        self._gone[uniqueid] = None
        if len(self._gone) > _GONE_MEMORY:
            del self._gone[next(iter(self._gone))]
        if uniqueid == call.record.caller_uniqueid:
            call.caller_ended_at = at
        if uniqueid == call.agent_uniqueid and call.agent_ended_at is None:
            call.agent_ended_at = at

    # -- merging --------------------------------------------------------------------

    def _relink(self, leg: _Leg, linkedid: str, at: float, out: list[CallRecord]) -> None:
        """A known leg now shows another Linkedid: it joined a bridge with another call."""
        leg.linkedid = linkedid
        here = leg.call
        other = self._calls.get(self._aliases.get(linkedid, linkedid))
        if other is None:
            # A call we do not track (it began before we attached): remember the alias
            # so later legs of it land here instead of being orphans.
            self._aliases[linkedid] = here.key
            here.aliases.append(linkedid)
            return
        if other is here:
            return
        older, newer = sorted(
            (here, other),
            key=lambda c: (c.record.arrived_at if c.record.arrived_at is not None else 0.0, c.key),
        )
        out.append(self._merge(older, newer, at))

    def _merge(self, keeper: _Call, absorbed: _Call, at: float) -> CallRecord:
        """Move ``absorbed`` into ``keeper``; return the absorbed call's final record.

        The absorbed call already had a provisional row, so it is closed (outcome from
        what it did on its own, ``merged_into`` pointing at the keeper) rather than left
        ``in_progress`` forever. The keeper fills its blanks from it: an agent consult
        leg bridged into a customer call, or a pickup, brings its answer with it.
        """
        self._counts["merges"] += 1
        log.debug("merging call %s into %s", absorbed.key, keeper.key)
        for uniqueid, leg in absorbed.legs.items():
            leg.call = keeper
            keeper.legs[uniqueid] = leg
        absorbed.legs = {}
        for alias in [absorbed.key, *absorbed.aliases]:
            self._aliases[alias] = keeper.key
            keeper.aliases.append(alias)
        del self._calls[absorbed.key]
        kept, gone = keeper.record, absorbed.record
        if kept.customer_id is None:
            kept.customer_id = gone.customer_id
        if kept.answered_at is None and gone.answered_at is not None:
            kept.answered_at = gone.answered_at
            kept.agent, kept.agent_interface = gone.agent, gone.agent_interface
            keeper.agent_uniqueid = absorbed.agent_uniqueid
            keeper.talk_time = absorbed.talk_time
            keeper.phase = CallPhase.CONNECTED
        if not keeper.attempts and absorbed.attempts:
            keeper.attempts = absorbed.attempts
            kept.queued_at, kept.queue, kept.queues = gone.queued_at, gone.queue, gone.queues
            kept.queue_status = gone.queue_status
        record = self._finish(absorbed, at)
        record.merged_into = keeper.key
        return record

    # -- closing --------------------------------------------------------------------

    def _close(self, call: _Call, at: float) -> CallRecord:
        del self._calls[call.key]
        for alias in call.aliases:
            if self._aliases.get(alias) == call.key:
                del self._aliases[alias]
        return self._finish(call, at)

    def _finish(self, call: _Call, at: float) -> CallRecord:
        """Fill the final fields; the call must already be out of ``_calls``."""
        self._counts["calls_closed"] += 1
        record = call.record
        record.ended_at = at
        record.wait_seconds = self._wait(call, at)
        record.outcome = self._outcome(call)
        if record.answered_at is not None:
            ends = [t for t in (call.agent_ended_at, call.caller_ended_at) if t is not None]
            talk = min(ends, default=at) - record.answered_at
            # AgentComplete's TalkTime is Asterisk's own count but in whole seconds (a
            # 0.5 s call says 0): keep the timestamps' precision when they agree with it.
            if call.talk_time is not None and abs(talk - call.talk_time) > 1.0:
                talk = call.talk_time
            record.talk_seconds = _seconds(talk)
        return record

    @staticmethod
    def _wait(call: _Call, at: float) -> float | None:
        """First queue join to answer, or to leaving the last queue joined.

        Falls back on Asterisk's HoldTime (time in that one queue) when the join was
        never seen (the call was adopted by a resync mid-queue).
        """
        record = call.record
        if record.answered_at is not None:
            if record.queued_at is not None:
                return _seconds(record.answered_at - record.queued_at)
            answering = next((a for a in call.attempts if a.answered), None)
            if answering is not None and answering.hold_time is not None:
                return _seconds(answering.hold_time)
            return None
        joined = [a for a in call.attempts if a.joined_at is not None or a.hold_time is not None]
        if not joined:
            return None
        last = joined[-1]
        left = last.left_at
        if left is None:  # still queued when the caller leg went (or the resync found it gone)
            left = call.caller_ended_at if call.caller_ended_at is not None else at
        if record.queued_at is not None:
            return _seconds(left - record.queued_at)
        return None if last.hold_time is None else _seconds(last.hold_time)

    def _outcome(self, call: _Call) -> Outcome:
        """DESIGN §4: an agent answer wins; otherwise the last queue's result decides.

        QueueCallerAbandon is not read here on purpose: Asterisk raises it for timeouts,
        leave-empty and withdraw too. Without a QueueResult status the caller was still
        in (or had just left) the queue when the line went: a real abandon.
        """
        record = call.record
        if record.answered_at is not None:
            return Outcome.ANSWERED
        if not call.attempts:
            return Outcome.IVR_ONLY if call.caller_up else Outcome.FAILED
        status = call.attempts[-1].status
        if status == _TIMEOUT:
            return Outcome.TIMEOUT
        if status in OVERFLOW_STATUSES:
            return Outcome.OVERFLOW
        wait = record.wait_seconds
        if wait is not None and wait < self.short_abandon_seconds:
            return Outcome.SHORT_ABANDONED
        return Outcome.ABANDONED

    # -- channel events -------------------------------------------------------------

    def _on_newchannel(self, event: AMIEvent) -> list[CallRecord]:
        headers = event.headers
        uniqueid = headers.get("Uniqueid", "")
        if uniqueid in _GARBAGE:
            return self._skip(SkipReason.NO_UNIQUEID, event)
        if uniqueid in self._legs or uniqueid in self._gone:
            return self._skip(SkipReason.DUPLICATE, event)
        linkedid = headers.get("Linkedid", "")
        if linkedid in _GARBAGE:
            return self._skip(SkipReason.NO_LINKEDID, event)
        call = self._calls.get(self._aliases.get(linkedid, linkedid))
        if call is not None:
            self._add_leg(uniqueid, linkedid, call)
            return []
        if uniqueid != linkedid:
            return self._skip(SkipReason.ORPHAN_LEG, event)
        call = self._open_call(event, uniqueid, event.time)
        self._add_leg(uniqueid, linkedid, call)
        out: list[CallRecord] = []
        self._locate(event, out)  # state Up, CUSTOMER_ID
        out.append(self._snapshot(call))
        return out

    def _on_core_show_channel(self, event: AMIEvent) -> list[CallRecord]:
        """A resync listing: adopt channels that began while we were disconnected.

        Known legs are just refreshed (a changed Linkedid still merges). An unknown
        caller leg opens a call dated back by its ``Duration``; if it sits in
        ``Queue()`` the queue is noted (its join time comes later from a HoldTime).
        """
        headers = event.headers
        uniqueid = headers.get("Uniqueid", "")
        out: list[CallRecord] = []
        if uniqueid in self._legs:
            self._locate(event, out)
            return out
        if uniqueid in _GARBAGE:
            return self._skip(SkipReason.NO_UNIQUEID, event)
        linkedid = headers.get("Linkedid", "")
        if linkedid in _GARBAGE:
            return self._skip(SkipReason.NO_LINKEDID, event)
        call = self._calls.get(self._aliases.get(linkedid, linkedid))
        if call is None:
            if uniqueid != linkedid:
                return self._skip(SkipReason.ORPHAN_LEG, event)
            age = _hms(headers.get("Duration", "")) or 0.0
            call = self._open_call(event, uniqueid, event.time - age)
            self._add_leg(uniqueid, linkedid, call)
            if headers.get("Application") == "Queue":
                queue = headers.get("ApplicationData", "").split(",", 1)[0].strip()
                if queue:
                    call.attempts.append(_Attempt(queue))
                    call.record.queue = queue
                    call.record.queues.append(queue)
                    call.phase = CallPhase.QUEUED
            self._locate(event, out)
            out.append(self._snapshot(call))
            return out
        self._add_leg(uniqueid, linkedid, call)
        self._locate(event, out)
        return out

    def _on_touch(self, event: AMIEvent) -> list[CallRecord]:
        """Newstate and BridgeEnter: only what every snapshot says (state, linkedid)."""
        out: list[CallRecord] = []
        self._locate(event, out)
        return out

    def _on_new_callerid(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is not None and leg.uniqueid == leg.call.record.caller_uniqueid:
            self._fill_caller(leg.call.record, event.headers)
        return out

    def _on_rename(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        new_name = event.headers.get("Newname", "")
        if leg is not None and new_name and leg.uniqueid == leg.call.record.caller_uniqueid:
            leg.call.record.caller_channel = new_name
        return out

    def _on_hangup(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        call = leg.call
        at = event.time
        if leg.uniqueid == call.record.caller_uniqueid:
            cause = event.headers.get("Cause", "")
            call.record.hangup_cause = int(cause) if cause.isdigit() else None
        self._forget_leg(leg, at)
        if not call.legs:
            out.append(self._close(call, at))
        return out

    # -- queue events ---------------------------------------------------------------

    @staticmethod
    def _attempt(call: _Call, queue: str) -> _Attempt | None:
        """The current attempt if it is for ``queue`` (events name the queue they are about)."""
        if call.attempts and call.attempts[-1].queue == queue:
            return call.attempts[-1]
        return None

    def _new_attempt(self, call: _Call, queue: str) -> _Attempt:
        attempt = _Attempt(queue)
        call.attempts.append(attempt)
        record = call.record
        record.queue = queue
        record.queue_status = None  # the status field describes the last queue only
        if not record.queues or record.queues[-1] != queue:
            record.queues.append(queue)
        return attempt

    def _on_queue_join(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        queue = event.headers.get("Queue", "")
        if queue in _GARBAGE:
            return self._skip(SkipReason.BAD_FIELD, event) + out
        call = leg.call
        at = event.time
        current = self._attempt(call, queue)
        if (
            current is not None
            and current.joined_at is None
            and current.left_at is None
            and current.status is None
        ):
            attempt = current  # adopted by a resync; now we know when it joined
        elif call.phase is CallPhase.QUEUED and current is not None and current.left_at is None:
            self._skip(SkipReason.DUPLICATE, event)
            return out
        else:
            if call.attempts and call.attempts[-1].left_at is None:
                call.attempts[-1].left_at = at  # missed its leave; it ended by this join
            attempt = self._new_attempt(call, queue)
        attempt.joined_at = at
        if call.record.queued_at is None:
            call.record.queued_at = at
        dialect = event.var("DIALECT")  # what routing settled on, menu choice included
        if dialect and dialect not in _GARBAGE:
            call.record.dialect = dialect
        call.phase = CallPhase.QUEUED
        return out

    def _leave(self, event: AMIEvent, *, abandon: bool) -> list[CallRecord]:
        """QueueCallerAbandon (``abandon``) or QueueCallerLeave: the caller is out of ``Queue``.

        Neither says why; the abandon is only noted, the outcome is decided at close.
        """
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        call = leg.call
        queue = event.headers.get("Queue", "")
        at = event.time
        attempt = self._attempt(call, queue)
        if attempt is None:
            if queue in _GARBAGE:
                return self._skip(SkipReason.BAD_FIELD, event) + out
            attempt = self._new_attempt(call, queue)  # its join predates our stream
        if abandon:
            if attempt.abandoned:
                return self._skip(SkipReason.DUPLICATE, event) + out
            attempt.abandoned = True
            attempt.hold_time = _number(event.headers.get("HoldTime"))
            if attempt.joined_at is None and attempt.hold_time is not None:
                attempt.joined_at = at - attempt.hold_time
                if call.record.queued_at is None:
                    call.record.queued_at = attempt.joined_at
        else:
            if attempt.leave_seen:
                return self._skip(SkipReason.DUPLICATE, event) + out
            attempt.leave_seen = True
        if attempt.left_at is None:
            attempt.left_at = at
        if call.phase is CallPhase.QUEUED:
            call.phase = CallPhase.LEFT_QUEUE
        return out

    def _on_queue_abandon(self, event: AMIEvent) -> list[CallRecord]:
        return self._leave(event, abandon=True)

    def _on_queue_leave(self, event: AMIEvent) -> list[CallRecord]:
        return self._leave(event, abandon=False)

    def _on_agent_connect(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        call = leg.call
        record = call.record
        headers = event.headers
        if record.answered_at is not None:
            # A duplicate, or a second queue answering after a transfer: the first
            # agent to answer the customer is the one the call log keeps.
            if headers.get("DestUniqueid") == call.agent_uniqueid:
                self._skip(SkipReason.DUPLICATE, event)
            return out
        at = event.time
        queue = headers.get("Queue", "")
        attempt = self._attempt(call, queue)
        if attempt is None and queue not in _GARBAGE:
            attempt = self._new_attempt(call, queue)
        hold_time = _number(headers.get("HoldTime"))
        if attempt is not None:
            attempt.answered = True
            attempt.hold_time = hold_time
            if attempt.left_at is None:
                attempt.left_at = at
            if attempt.joined_at is None and hold_time is not None:
                attempt.joined_at = at - hold_time
        if record.queued_at is None and hold_time is not None:
            record.queued_at = at - hold_time
        elif (
            hold_time is not None
            and len(call.attempts) == 1
            and abs((at - record.queued_at) - hold_time) > 2.0
        ):
            # HoldTime is whole seconds: more than 2 s apart means a lost or foreign join.
            log.debug("linkedid=%s wait and HoldTime disagree", call.key)
        record.answered_at = at
        member = headers.get("MemberName", "")
        interface = headers.get("Interface", "")
        record.agent = member if member not in _GARBAGE else None
        record.agent_interface = interface if interface not in _GARBAGE else None
        agent_uniqueid = headers.get("DestUniqueid", "")
        call.agent_uniqueid = agent_uniqueid if agent_uniqueid not in _GARBAGE else None
        call.phase = CallPhase.CONNECTED
        # A provisional row that names the agent: the agent's wrap-up may be posted
        # before the call ends, and the call log should show who is on the call.
        out.append(self._snapshot(call))
        return out

    def _on_agent_complete(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        call = leg.call
        agent_uniqueid = event.headers.get("DestUniqueid", "")
        if call.agent_uniqueid is None or agent_uniqueid in (call.agent_uniqueid, ""):
            talk_time = _number(event.headers.get("TalkTime"))
            if talk_time is not None and call.talk_time is None:
                call.talk_time = talk_time
            if call.agent_ended_at is None:
                call.agent_ended_at = event.time
        return out

    # -- dialplan events ------------------------------------------------------------

    def _on_user_event(self, event: AMIEvent) -> list[CallRecord]:
        kind = event.headers.get("UserEvent")
        if kind == "QueueResult":
            return self._on_queue_result(event)
        if kind == "IvrStep":
            return self._on_ivr_step(event)
        if kind == "CustomerIdentified":
            return self._on_identified(event)
        if kind == "SurveyResult":
            return self._on_survey(event)
        if kind == "AccountManager":
            return self._on_account_manager(event)
        return []

    def _on_account_manager(self, event: AMIEvent) -> list[CallRecord]:
        """The dialplan is about to ring the customer's account manager directly."""
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        agent = event.headers.get("Agent", "").strip()
        if leg is not None and agent and agent not in _GARBAGE:
            leg.call.account_manager = agent
        return out

    def _on_dial_end(self, event: AMIEvent) -> list[CallRecord]:
        """A direct Dial answered (the account manager, before any queue): answered.

        Queue calls are answered by AgentConnect; a DialEnd there only ends one member's
        ringing, so only a call waiting on its account manager is answered here.
        """
        headers = event.headers
        if headers.get("DialStatus") != "ANSWER":
            return []
        call = self._calls.get(self._aliases.get(event.linkedid, event.linkedid))
        if call is None or call.account_manager is None or call.record.answered_at is not None:
            return []
        if call.phase is CallPhase.QUEUED:
            return []
        record = call.record
        record.answered_at = event.time
        record.agent = call.account_manager
        channel = headers.get("DestChannel", "")
        record.agent_interface = channel.rsplit("-", 1)[0] if "-" in channel else None
        dest = headers.get("DestUniqueid", "")
        call.agent_uniqueid = dest if dest not in _GARBAGE else None
        call.phase = CallPhase.CONNECTED
        return [self._snapshot(call)]

    def _on_identified(self, event: AMIEvent) -> list[CallRecord]:
        """The IVR's identify step: routing decision and candidate count, for the log."""
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        record, headers = leg.call.record, event.headers
        record.dialect = headers.get("Dialect") or record.dialect
        record.route_source = headers.get("DialectSource") or record.route_source
        # not "Priority": every snapshot already carries the dialplan priority under it
        priority = _number(headers.get("QueuePrio"))
        record.priority = int(priority) if priority is not None else record.priority
        reasons = headers.get("Reasons", "")
        record.route_reasons = [r.strip() for r in reasons.split(";") if r.strip()][:20]
        candidates = _number(headers.get("Candidates"))
        record.candidates = int(candidates) if candidates is not None else record.candidates
        return out

    def _on_survey(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        score = event.headers.get("Score", "").strip()
        if score in ("1", "2", "3"):
            leg.call.record.survey_score = int(score)
        else:
            self._skip(SkipReason.BAD_FIELD, event)
        return out

    def _on_queue_result(self, event: AMIEvent) -> list[CallRecord]:
        """``UserEvent(QueueResult,Queue: q,Status: ${QUEUESTATUS})`` after ``Queue()``."""
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        status = event.headers.get("Status", "").strip().upper()
        if not status:
            return self._skip(SkipReason.BAD_FIELD, event) + out
        call = leg.call
        queue = event.headers.get("Queue", "").strip()
        last = call.attempts[-1] if call.attempts else None
        if last is not None and last.status is None and queue in (last.queue, ""):
            attempt = last
        elif queue in _GARBAGE:
            return self._skip(SkipReason.BAD_FIELD, event) + out
        elif last is not None and last.status == status and last.queue == queue:
            self._skip(SkipReason.DUPLICATE, event)
            return out
        else:
            attempt = self._new_attempt(call, queue)  # FULL, JOINEMPTY…: never joined
        attempt.status = status
        if attempt.left_at is None and attempt.joined_at is not None:
            attempt.left_at = event.time
        call.record.queue_status = status
        if call.phase is not CallPhase.CONNECTED:
            call.phase = CallPhase.LEFT_QUEUE
        return out

    def _on_ivr_step(self, event: AMIEvent) -> list[CallRecord]:
        out: list[CallRecord] = []
        leg = self._locate(event, out)
        if leg is None:
            return out
        step = event.headers.get("Step", "").strip()
        if step in _GARBAGE:
            return self._skip(SkipReason.BAD_FIELD, event) + out
        call = leg.call
        mark = (event.time, step)
        if mark == call.last_ivr:
            self._skip(SkipReason.DUPLICATE, event)
            return out
        call.last_ivr = mark
        call.record.ivr_path.append(step)
        return out

    # -- synthetic events from the bridge -------------------------------------------

    def _on_resync(self, event: AMIEvent) -> list[CallRecord]:
        """``HotlineResync``: the channels alive in Asterisk after a reconnect.

        Legs not listed hung up while we were away; a call left with no leg ended then,
        at the latest, so it is closed at the resync's time with the outcome its known
        history gives. A resync without the ``Uniqueids`` header is refused: reading it
        as "nothing alive" would close every call.
        """
        raw = event.headers.get("Uniqueids")
        if raw is None:
            return self._skip(SkipReason.BAD_FIELD, event)
        self._counts["resyncs"] += 1
        alive = set(raw.split())
        at = event.time
        touched: dict[str, _Call] = {}
        for leg in [leg for uid, leg in self._legs.items() if uid not in alive]:
            touched[leg.call.key] = leg.call
            self._forget_leg(leg, at)
        out = [self._close(call, at) for call in touched.values() if not call.legs]
        if out:
            log.info("resync closed %d call(s) that ended while disconnected", len(out))
        return out

    def _on_disconnected(self, event: AMIEvent) -> list[CallRecord]:
        """Nothing to undo: state is kept and the resync after login reconciles it."""
        self._counts["disconnects"] += 1
        return []
