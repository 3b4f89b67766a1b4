"""CEL rows and queue_log lines replayed as the AMI events they stand for (sans-I/O).

The half of :mod:`hotline.record.classify` that translates: each CEL row becomes the
AMI event Asterisk sent for the same moment (``CHAN_START`` a ``Newchannel``, ``ANSWER``
a ``Newstate`` to Up, a ``Queue`` application's start a ``QueueCallerJoin``, the
dialplan's ``CELGenUserEvent`` its ``UserEvent``…), and the queue_log facts CEL has no
row for (``CONNECT``, ``COMPLETE*``) are placed just before the CEL row of their moment.
All go, in the order Asterisk wrote them, to a fresh
:class:`~hotline.calls.tracker.CallTracker`, so the tracker's rules are applied, never
restated. Kept apart from the classification so what a row *means* on AMI changes here
and what the record adds beyond the tracker (a call cut by Asterisk) changes there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hotline.ami.events import AMIEvent
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.tracker import CallTracker
from hotline.record.cel_calls import (
    hangup_facts,
    is_user_event,
    linkedid_order,
    member_interface,
    user_fields,
)
from hotline.record.entries import CelEvent, QueueLogEntry

__all__ = ["Replay"]

_UP, _RINGING = "6", "4"  # ChannelState as AMI writes it
# QUEUESTATUS of a Queue() that never took the caller in (no QueueCallerJoin on AMI).
_NEVER_JOINED = frozenset({"FULL", "JOINEMPTY", "JOINUNAVAIL"})
_TRANSFERS = frozenset({"BLINDTRANSFER", "ATTENDEDTRANSFER", "TRANSFER"})
_COMPLETES = frozenset({"COMPLETEAGENT", "COMPLETECALLER"}) | _TRANSFERS
# The AMI header spelling of each field the dialplan or the IVR writes into CEL.
_HEADERS = {
    "step": "Step",
    "queue": "Queue",
    "status": "Status",
    "customerid": "CustomerID",
    "candidates": "Candidates",
    "dialect": "Dialect",
    "dialectsource": "DialectSource",
    "queueprio": "QueuePrio",
    "reasons": "Reasons",
    "score": "Score",
    "agent": "Agent",
}


@dataclass(slots=True)
class _Channel:
    """One channel as the AMI snapshot would describe it at the current row."""

    uniqueid: str
    linkedid: str
    name: str
    cid_num: str
    cid_name: str
    up: bool = False
    gone: bool = False
    app: str = ""
    left: set[str] = field(default_factory=set)  # Linkedids it moved away from
    chanvars: dict[str, str] = field(default_factory=dict)  # CUSTOMER_ID, DIALECT


@dataclass(frozen=True, slots=True)
class _Synth:
    """An event the record implies but CEL has no row for (queue_log facts)."""

    name: str
    uniqueid: str
    at: float
    headers: tuple[tuple[str, str], ...]


def _queue_name(appdata: str) -> str:
    return appdata.split(",", 1)[0].strip()


class Replay:
    """Feeds one group of connected rows, as AMI events, to a fresh tracker."""

    def __init__(
        self,
        rows: Sequence[CelEvent],
        queue_log: Sequence[QueueLogEntry],
        *,
        region: str,
        short_abandon_seconds: float,
        default_dialect: str | None = None,
    ) -> None:
        self.rows = rows
        self.default_dialect = default_dialect
        self.tracker = CallTracker(region=region, short_abandon_seconds=short_abandon_seconds)
        self.channels: dict[str, _Channel] = {}
        self.finals: dict[str, CallRecord] = {}
        self.uids = {row.uniqueid for row in rows if row.eventtype != "LINKEDID_END"}
        self.by_channel: dict[str, list[CelEvent]] = {}
        for row in rows:
            if row.eventtype != "LINKEDID_END":
                self.by_channel.setdefault(row.uniqueid, []).append(row)
        self.joined: dict[int, bool] = {}  # APP_START Queue row id -> joined the queue
        self.members: dict[int, str] = {}  # APP_START Queue row id -> MEMBERINTERFACE
        self.dialects: dict[int, str] = {}  # APP_START Queue row id -> DIALECT
        self.before: dict[int, list[_Synth]] = {}
        self._read_queue_segments()
        self._read_queue_log([e for e in queue_log if e.callid in self.uids])

    # -- the plan: what each Queue() did, and where queue_log facts belong ------------

    def _read_queue_segments(self) -> None:
        for rows in self.by_channel.values():
            start: CelEvent | None = None
            for row in rows:
                if row.eventtype == "APP_START" and row.appname.lower() == "queue":
                    start = row
                    self.joined[row.id] = True
                elif start is not None and is_user_event(row):
                    if row.userdeftype != "QueueResult":
                        continue
                    fields = user_fields(row)
                    if fields.get("queue", "") not in ("", _queue_name(start.appdata)):
                        # Another queue's result: a blind transfer into a queue runs a
                        # second Queue() with no APP_START (the application's name did
                        # not change), so this segment's own result never comes.
                        start = None
                        continue
                    status = fields.get("status", "").upper()
                    self.joined[start.id] = status not in _NEVER_JOINED
                    if fields.get("member"):
                        self.members[start.id] = fields["member"]
                    if fields.get("dialect"):
                        self.dialects[start.id] = fields["dialect"]
                    start = None

    def _first(self, uid: str, kinds: frozenset[str], after: int = -1) -> CelEvent | None:
        return next(
            (r for r in self.by_channel.get(uid, ()) if r.id > after and r.eventtype in kinds),
            None,
        )

    def _segment_member(self, uid: str, anchor: CelEvent) -> str | None:
        starts = [
            r.id
            for r in self.by_channel.get(uid, ())
            if r.id <= anchor.id and r.eventtype == "APP_START" and r.appname.lower() == "queue"
        ]
        return self.members.get(starts[-1]) if starts else None

    def _read_queue_log(self, entries: Sequence[QueueLogEntry]) -> None:
        """``CONNECT`` → ``AgentConnect``; ``COMPLETE*``/transfers → ``AgentComplete``.

        Each is placed just before the CEL row that stands for its moment: the caller's
        bridge with the agent for a connect; the transfer, or the first of the two
        hangups, for the agent's part ending.
        """
        connects: dict[tuple[str, str], tuple[str, CelEvent]] = {}
        for entry in entries:
            caller = entry.callid
            if entry.event == "CONNECT":
                peer = entry.field(2)
                answer = self._first(peer, frozenset({"ANSWER"}))
                anchor = self._first(
                    caller, frozenset({"BRIDGE_ENTER"}), answer.id if answer else -1
                )
                if anchor is None and answer is None:
                    anchor = next(
                        (r for r in self.by_channel.get(caller, ()) if r.eventtime >= entry.time),
                        None,
                    )
                anchor = anchor or answer
                if anchor is None:
                    continue
                peer_rows = self.by_channel.get(peer, ())
                interface = self._segment_member(caller, anchor) or (
                    member_interface(peer_rows[0].channame) if peer_rows else None
                )
                connects[(caller, entry.queue)] = (peer, anchor)
                self._plan(
                    anchor,
                    "AgentConnect",
                    caller,
                    Queue=entry.queue,
                    Interface=interface or "",
                    MemberName=entry.agent,
                    DestUniqueid=peer,
                    HoldTime=entry.field(1),
                )
            elif entry.event in _COMPLETES:
                found = connects.get((caller, entry.queue))
                if found is None:
                    continue
                peer, connected = found
                end = None
                if entry.event in _TRANSFERS:
                    end = next(
                        (r for r in self.rows if r.id > connected.id and r.eventtype in _TRANSFERS),
                        None,
                    )
                if end is None:
                    hangups = frozenset({"HANGUP", "CHAN_END"})
                    ends = [
                        r
                        for r in (
                            self._first(caller, hangups, connected.id),
                            self._first(peer, hangups, connected.id),
                        )
                        if r is not None
                    ]
                    end = min(ends, key=lambda r: r.id, default=None)
                if end is None:
                    continue
                data = entry.data
                self._plan(
                    end,
                    "AgentComplete",
                    caller,
                    Queue=entry.queue,
                    MemberName=entry.agent,
                    DestUniqueid=peer,
                    HoldTime=data[-3] if len(data) >= 3 else "",
                    TalkTime=data[-2] if len(data) >= 2 else "",
                )

    def _plan(self, anchor: CelEvent, name: str, uid: str, **headers: str) -> None:
        synth = _Synth(name, uid, anchor.eventtime, tuple(headers.items()))
        self.before.setdefault(anchor.id, []).append(synth)

    # -- feeding the tracker ---------------------------------------------------------

    def _emit(
        self,
        name: str,
        channel: _Channel,
        at: float,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        base = {
            "Event": name,
            "Uniqueid": channel.uniqueid,
            "Linkedid": channel.linkedid,
            "Channel": channel.name,
            "ChannelState": _UP if channel.up else _RINGING,
            "CallerIDNum": channel.cid_num,
            "CallerIDName": channel.cid_name,
        }
        base.update(headers)
        event = AMIEvent(
            name, base, {"ChanVariable": dict(channel.chanvars)} if channel.chanvars else {}, at
        )
        for record in self.tracker.feed(event):
            if record.outcome is not Outcome.IN_PROGRESS:
                self.finals[record.linkedid] = record

    def run(self) -> None:
        for row in self.rows:
            for synth in self.before.get(row.id, ()):
                channel = self.channels.get(synth.uniqueid)
                if channel is not None and not channel.gone:
                    self._emit(synth.name, channel, synth.at, synth.headers)
            if row.eventtype != "LINKEDID_END":
                self._row(row)

    def hang_up_all(self, at: float, linkedid: str | None = None) -> None:
        """Every channel still up (of ``linkedid``) ends at ``at``: Asterisk is gone."""
        for channel in self.channels.values():
            if not channel.gone and (linkedid is None or channel.linkedid == linkedid):
                channel.gone = True
                self._emit("Hangup", channel, at, (("Cause", ""),))

    def _row(self, row: CelEvent) -> None:
        kind = row.eventtype
        channel = self.channels.get(row.uniqueid)
        if channel is None:
            channel = _Channel(row.uniqueid, row.linkedid, row.channame, row.cid_num, row.cid_name)
            self.channels[row.uniqueid] = channel
            self._emit("Newchannel", channel, row.eventtime)
            if kind == "CHAN_START":
                return
        elif channel.gone:
            return
        else:
            self._follow(channel, row)
        if kind == "ANSWER":
            channel.up = True
            self._emit("Newstate", channel, row.eventtime)
            self._dial_answered(channel, row.eventtime)
        elif kind in ("HANGUP", "CHAN_END"):
            channel.gone = True
            cause = hangup_facts(row).cause if kind == "HANGUP" else None
            self._emit("Hangup", channel, row.eventtime, (("Cause", _text(cause)),))
        elif kind == "APP_START":
            channel.app = row.appname.lower()
            if channel.app == "queue" and self.joined.get(row.id, True):
                queue = _queue_name(row.appdata)
                dialect = self.dialects.get(row.id) or self._inherited_dialect(channel)
                if dialect:
                    channel.chanvars["DIALECT"] = dialect
                self._emit("QueueCallerJoin", channel, row.eventtime, (("Queue", queue),))
                channel.app = "queue:" + queue
        elif kind == "APP_END":
            if channel.app.startswith("queue:"):
                queue = channel.app.removeprefix("queue:")
                self._emit("QueueCallerLeave", channel, row.eventtime, (("Queue", queue),))
            channel.app = ""
        elif is_user_event(row):
            self._user_event(channel, row)

    def _inherited_dialect(self, channel: _Channel) -> str | None:
        """``DIALECT`` as the channel has it at its queue join, when no row said it.

        The dialplan sets ``__DIALECT`` to its default first thing and the IVR changes
        it (saying so in ``CustomerIdentified``/``IvrStep``); the leading ``__`` makes
        every channel the call creates inherit it (an agent's leg, the ``Local`` of a
        consult into a queue). CEL logs neither ``Set()``, so: the channel's own, else
        its call's caller channel's, else the dialplan's default.
        """
        own = channel.chanvars.get("DIALECT")
        if own:
            return own
        caller = self.channels.get(channel.linkedid)
        inherited = caller.chanvars.get("DIALECT") if caller is not None else None
        return inherited or self.default_dialect

    def _follow(self, channel: _Channel, row: CelEvent) -> None:
        """What a row of a known channel says changed: its Linkedid, caller id, name."""
        if row.eventtype == "APP_END":
            return  # written from the snapshot before the change: may be stale
        linkedid = row.linkedid
        if linkedid and linkedid != channel.linkedid and linkedid not in channel.left:
            self._phantom(linkedid)
            channel.left.add(channel.linkedid)
            channel.linkedid = linkedid
            self._emit("Newstate", channel, row.eventtime)
        if row.channame and row.channame != channel.name:
            channel.name = row.channame
            self._emit("Rename", channel, row.eventtime, (("Newname", row.channame),))
        num, name = row.cid_num, row.cid_name
        if (num and num != channel.cid_num) or (name and name != channel.cid_name):
            channel.cid_num, channel.cid_name = num or channel.cid_num, name or channel.cid_name
            self._emit("NewCallerid", channel, row.eventtime)

    def _phantom(self, linkedid: str) -> None:
        """The older call a channel joins, when its caller channel is not in the rows.

        The live tracker knew that call, so it merged the younger one into it; a
        stand-in caller leg dated at the Linkedid's own second lets the tracker do the
        same here (its record is not returned: it is another call's).
        """
        if linkedid in self.uids or linkedid in self.channels:
            return
        stand_in = _Channel(linkedid, linkedid, "", "", "", gone=True)
        self.channels[linkedid] = stand_in
        self._emit("Newchannel", stand_in, linkedid_order(linkedid)[0])

    def _dial_answered(self, callee: _Channel, at: float) -> None:
        """A channel answering a ``Dial()`` of its call: AMI's ``DialEnd`` ANSWER."""
        if callee.uniqueid == callee.linkedid:
            return
        dialer = next(
            (
                c
                for c in reversed(self.channels.values())
                if c.app == "dial" and c.linkedid == callee.linkedid and not c.gone
            ),
            None,
        )
        if dialer is not None:
            headers = (
                ("DialStatus", "ANSWER"),
                ("DestChannel", callee.name),
                ("DestUniqueid", callee.uniqueid),
            )
            self._emit("DialEnd", dialer, at, headers)

    def _user_event(self, channel: _Channel, row: CelEvent) -> None:
        fields = user_fields(row)
        kind = row.userdeftype or row.eventtype
        if kind == "CustomerIdentified":
            customer = fields.get("customerid", "")
            if customer:
                channel.chanvars["CUSTOMER_ID"] = customer
            if fields.get("dialect"):
                channel.chanvars["DIALECT"] = fields["dialect"]
        elif kind == "IvrStep" and fields.get("step", "").startswith("dialect:"):
            dialect = fields["step"].removeprefix("dialect:")
            if dialect:
                channel.chanvars["DIALECT"] = dialect
        headers = [("UserEvent", kind)]
        headers.extend((_HEADERS.get(key, key), value) for key, value in fields.items())
        self._emit("UserEvent", channel, row.eventtime, headers)


def _text(value: int | None) -> str:
    return "" if value is None else str(value)
