"""One call's final row from Asterisk's own record: CEL rows and queue_log lines in, a
:class:`CallRecord` out (sans-I/O, no clock, no database).

The reconciler settles from here the calls whose AMI events the live tracker missed,
and the two must agree call for call (docs/call-log.md). So this module does not
restate the tracker's rules: it reads each CEL row and queue_log line as the AMI event
Asterisk sent for the same moment (``CHAN_START`` is a ``Newchannel``, ``ANSWER`` a
``Newstate`` to Up, a ``Queue`` application's start a ``QueueCallerJoin``, a
``CONNECT`` line an ``AgentConnect``, the dialplan's ``CELGenUserEvent(QueueResult,…)``
its ``UserEvent(QueueResult,…)``…) and feeds them, in the order Asterisk wrote them,
to a fresh :class:`~hotline.calls.tracker.CallTracker`. Legs, merges of bridged calls,
waits, talk times and the outcome (:func:`hotline.calls.outcomes.unanswered`, the one
rule) are then the tracker's own.

Where the two sources differ in what they can know:

* times come from CEL (microseconds), stamped by Asterisk a few milliseconds apart
  from the AMI events they stand for; queue_log lines have whole seconds, so they say
  *what* happened (who answered, the talk time Asterisk counted) and CEL *when*
  (the caller's bridge with the agent, the agent's hangup);
* the ``DIALECT`` channel variable the tracker reads at the queue join is not in CEL:
  it is taken from the dialplan's ``QueueResult`` (``dialect=``) when the dialplan
  writes it, else from the IVR's last say (``CustomerIdentified``, ``dialect:`` step).

Beyond the tracker, the record also knows when a call was cut by Asterisk itself:

* no ``LINKEDID_END`` and Asterisk started since the call's last row: a crash (or a
  shutdown that lost the end) cut it, ``end_reason="asterisk_crash"``
  (``"asterisk_shutdown"`` when ``shutdown_at`` says a shutdown began after it came);
* a caller line hung up with no source and no cause (what ``core stop`` does to every
  channel, docs/asterisk-record.md), or at/after ``shutdown_at`` with no source:
  ``end_reason="asterisk_shutdown"``.

Such a call is ``failed``, never an abandon; an answered call stays answered (the agent
talked to the customer), with the reason noted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hotline.ami.events import AMIEvent
from hotline.calls.records import CallRecord, Outcome, SettledBy
from hotline.calls.tracker import CallTracker
from hotline.record.cel_calls import (
    CallerCall,
    caller_calls,
    hangup_facts,
    is_user_event,
    last_time,
    linkedid_order,
    member_interface,
    user_fields,
)
from hotline.record.entries import CelEvent, QueueLogEntry

__all__ = ["CRASH", "SHUTDOWN", "classify", "classify_calls"]

CRASH = "asterisk_crash"
SHUTDOWN = "asterisk_shutdown"

_UP, _RINGING = "6", "4"  # ChannelState as AMI writes it
# QUEUESTATUS of a Queue() that never took the caller in (no QueueCallerJoin on AMI).
_NEVER_JOINED = frozenset({"FULL", "JOINEMPTY", "JOINUNAVAIL"})
_TRANSFERS = frozenset({"BLINDTRANSFER", "ATTENDEDTRANSFER", "TRANSFER"})
_COMPLETES = frozenset({"COMPLETEAGENT", "COMPLETECALLER"}) | _TRANSFERS
_SHUTDOWN_SLACK = 1.0  # s: a hangup this close before ``shutdown_at`` is the shutdown's
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


class _Replay:
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


def _cut_by_shutdown(rows: Sequence[CelEvent], caller: str, shutdown_at: float | None) -> bool:
    """The caller's line was hung up by Asterisk stopping, not by anyone on the call.

    Every party that ends a call names itself in the ``HANGUP`` row's source (the
    caller's or the agent's channel, ``dialplan/builtin`` for ``Hangup()``);
    ``core stop`` soft-hangs every channel up and names nobody, with no cause
    (docs/asterisk-record.md). ``shutdown_at``, when known, confirms it by time.
    """
    hangup = next(
        (r for r in reversed(rows) if r.uniqueid == caller and r.eventtype == "HANGUP"), None
    )
    if hangup is None:
        return False
    facts = hangup_facts(hangup)
    if facts.source:
        return False
    if shutdown_at is not None:
        return hangup.eventtime >= shutdown_at - _SHUTDOWN_SLACK
    return facts.cause in (None, 0)


def _settle(
    call: CallerCall,
    replay: _Replay,
    *,
    over: bool,
    restarted: bool,
    shutdown_at: float | None,
) -> CallRecord | None:
    record = replay.finals.get(call.linkedid)
    if record is None:
        return None
    cut: str | None = None
    if record.merged_into is None:
        if not over:
            if not restarted:
                return None
            arrived = record.arrived_at if record.arrived_at is not None else 0.0
            cut = SHUTDOWN if shutdown_at is not None and shutdown_at >= arrived else CRASH
        elif _cut_by_shutdown(call.rows, call.linkedid, shutdown_at):
            cut = SHUTDOWN
    record.settled_by = SettledBy.RECONCILED
    if cut is not None:
        record.end_reason = cut
        if record.outcome is not Outcome.ANSWERED:
            record.outcome = Outcome.FAILED
    return record


def _classify_group(
    call: CallerCall,
    queue_log: Sequence[QueueLogEntry],
    *,
    short_abandon_seconds: float,
    region: str,
    default_dialect: str | None,
    asterisk_started_at: float | None,
    shutdown_at: float | None,
    callers: Sequence[CallerCall],
) -> dict[str, CallRecord | None]:
    rows = call.rows
    replay = _Replay(
        rows,
        queue_log,
        region=region,
        short_abandon_seconds=short_abandon_seconds,
        default_dialect=default_dialect,
    )
    replay.run()
    ends = {row.linkedid: row.eventtime for row in rows if row.eventtype == "LINKEDID_END"}
    last = last_time(rows)
    restarted = asterisk_started_at is not None and asterisk_started_at > last
    for caller in callers:  # over, but a hangup row is missing: close it there
        at = ends.get(caller.linkedid)
        if at is not None and caller.linkedid not in replay.finals:
            replay.hang_up_all(at, caller.linkedid)
    if restarted:
        replay.hang_up_all(last)
    return {
        other.linkedid: _settle(
            other,
            replay,
            over=other.linkedid in ends,
            restarted=restarted,
            shutdown_at=shutdown_at,
        )
        for other in callers
    }


def classify_calls(
    cel: Iterable[CelEvent],
    queue_log: Sequence[QueueLogEntry],
    *,
    short_abandon_seconds: float,
    region: str = "CN",
    default_dialect: str | None = None,
    asterisk_started_at: float | None = None,
    shutdown_at: float | None = None,
) -> dict[str, CallRecord | None]:
    """Every caller call among the rows (:func:`~hotline.record.cel_calls.caller_calls`)
    with its final record, or None while the record says it is not over."""
    groups: dict[tuple[int, ...], list[CallerCall]] = {}
    for call in caller_calls(cel):
        groups.setdefault(tuple(row.id for row in call.rows), []).append(call)
    out: dict[str, CallRecord | None] = {}
    for members in groups.values():
        out.update(
            _classify_group(
                members[0],
                queue_log,
                short_abandon_seconds=short_abandon_seconds,
                region=region,
                default_dialect=default_dialect,
                asterisk_started_at=asterisk_started_at,
                shutdown_at=shutdown_at,
                callers=members,
            )
        )
    return out


def classify(
    cel: Sequence[CelEvent],
    queue_log: Sequence[QueueLogEntry],
    *,
    short_abandon_seconds: float,
    region: str = "CN",
    default_dialect: str | None = None,
    asterisk_started_at: float | None = None,
    shutdown_at: float | None = None,
    linkedid: str | None = None,
) -> CallRecord | None:
    """The final record of one caller call, settled ``reconciled``; None while not over.

    ``cel``: the call's rows (its Linkedid's, and its channels' under other Linkedids:
    :func:`hotline.record.store.cel_for`); ``queue_log``: the lines of its channels
    (callid is the Uniqueid of the channel that ran ``Queue()``). ``linkedid`` names the
    call when the rows hold more than one caller call (a call merged into another);
    by default the oldest. None also when the rows hold no caller channel.
    ``default_dialect``: the dialplan's ``DIALECT`` before the IVR sets it (the
    ``DEFAULT_QUEUE`` global, settings' default queue), which CEL cannot show.
    """
    callers = caller_calls(cel)
    call = next((c for c in callers if c.linkedid == linkedid), None) if linkedid else None
    if call is None:
        if linkedid is not None or not callers:
            return None
        call = callers[0]
    members = [c for c in callers if c.rows == call.rows]
    found = _classify_group(
        call,
        queue_log,
        short_abandon_seconds=short_abandon_seconds,
        region=region,
        default_dialect=default_dialect,
        asterisk_started_at=asterisk_started_at,
        shutdown_at=shutdown_at,
        callers=members,
    )
    return found.get(call.linkedid)
