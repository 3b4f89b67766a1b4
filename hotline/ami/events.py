"""The AMI event as the rest of Hotline sees it.

Panoramisk's ``Message`` is a case-insensitive dict that turns a repeated header into a
list only sometimes (one ``ChanVariable`` stays a str, two become a list). Domain code
should not care, so every frame is parsed once into an :class:`AMIEvent` with plain
dicts: headers keep Asterisk's spelling (it is fixed per event type) and the
``ChanVariable`` family is always a dict, whatever the count.

The consumers (call tracker, live state) read the typed view instead: ``event.typed``,
one frozen dataclass of :mod:`hotline.ami.typed` per event type, built by
:func:`parse_typed` below on first use and kept on the event. The bridge's single
consumer hands the same ``AMIEvent`` to each of them, so each event is parsed once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from hotline.ami.typed import (
    AccountManager,
    AgentCalled,
    AgentComplete,
    AgentConnect,
    AgentEvent,
    AgentRingNoAnswer,
    BridgeEnter,
    ChannelEvent,
    CoreShowChannel,
    CustomerIdentified,
    DialEnd,
    Hangup,
    HotlineDisconnected,
    HotlineResync,
    IvrStep,
    MemberEvent,
    NewCallerid,
    Newchannel,
    Newstate,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueEntry,
    QueueMember,
    QueueMemberAdded,
    QueueMemberPause,
    QueueMemberRemoved,
    QueueMemberStatus,
    QueueParams,
    QueueResult,
    Rename,
    SurveyResult,
    TypedEvent,
    number,
)

__all__ = ["CHANVAR_HEADERS", "AMIEvent", "parse_typed"]

# Headers Asterisk may repeat, one variable per line, in two-channel events too.
CHANVAR_HEADERS = frozenset(
    {
        "ChanVariable",
        "DestChanVariable",
        "TargetChanVariable",
        "TransfereeChanVariable",
        "TransfererChanVariable",
        "SecondTransfererChanVariable",
        "OrigTransfererChanVariable",
        "LocalOneChanVariable",
        "LocalTwoChanVariable",
    }
)


class _Unparsed(enum.Enum):
    """Marks an event whose typed view was not asked for yet (``None`` is a result)."""

    TOKEN = enum.auto()


@dataclass(slots=True)
class AMIEvent:
    """One AMI frame that carried an ``Event`` header.

    ``received`` is the monotonic-free wall clock (epoch seconds) at which the bridge read
    the frame; ``time`` prefers Asterisk's own ``Timestamp`` header (``timestampevents``)
    so that replaying a recorded stream gives the same times as the live run.

    :attr:`typed` is the event as its consumers read it (:mod:`hotline.ami.typed`),
    parsed on first use and kept: headers must not be changed after that.
    """

    name: str
    headers: dict[str, str]
    chanvars: dict[str, dict[str, str]] = field(default_factory=dict)
    received: float = 0.0
    _typed: TypedEvent | _Unparsed | None = field(
        default=_Unparsed.TOKEN, init=False, repr=False, compare=False
    )

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self.headers[key]

    def __contains__(self, key: object) -> bool:
        return key in self.headers

    def var(self, name: str, prefix: str = "") -> str | None:
        """A channel variable from the snapshot (``prefix='Dest'`` for the called leg)."""
        return self.chanvars.get(prefix + "ChanVariable", {}).get(name)

    @property
    def typed(self) -> TypedEvent | None:
        """The typed event (``None`` for an event type no consumer reads), parsed once."""
        typed = self._typed
        if typed is _Unparsed.TOKEN:
            parse = _PARSERS.get(self.name)
            typed = self._typed = None if parse is None else parse(self)
        return typed

    @property
    def time(self) -> float:
        return _stamp(self.headers, self.received)

    @property
    def uniqueid(self) -> str:
        return self.headers.get("Uniqueid", "")

    @property
    def linkedid(self) -> str:
        return self.headers.get("Linkedid", "")


def _stamp(headers: dict[str, str], received: float) -> float:
    stamp = headers.get("Timestamp")
    if stamp:
        try:
            return float(stamp)
        except ValueError:
            pass
    return received


# -- the typed view: the one place that reads these headers by name ----------------------


def _whole(value: str | None) -> int | None:
    """A number header truncated to an int."""
    parsed = number(value)
    return None if parsed is None else int(parsed)


def _whole_or(value: str, default: int) -> int:
    parsed = number(value)
    return default if parsed is None else int(parsed)


def _hms(value: str) -> float | None:
    """``HH:MM:SS`` (CoreShowChannel ``Duration``) in seconds."""
    parts = value.split(":")
    if len(parts) != 3 or not all(p.isdecimal() for p in parts):
        return None
    return int(parts[0]) * 3600.0 + int(parts[1]) * 60.0 + int(parts[2])


def _flag(headers: dict[str, str], key: str) -> bool | None:
    value = headers.get(key)
    return None if value is None else value.strip() == "1"


_Snapshot = tuple[float, str, str, str, "str | None"]


def _snapshot(event: AMIEvent) -> _Snapshot:
    """What every channel event carries: time, Uniqueid, Linkedid, ChannelState, CUSTOMER_ID."""
    headers = event.headers
    chanvars = event.chanvars.get("ChanVariable")
    return (
        _stamp(headers, event.received),
        headers.get("Uniqueid", ""),
        headers.get("Linkedid", ""),
        headers.get("ChannelState", ""),
        None if chanvars is None else chanvars.get("CUSTOMER_ID"),
    )


def _newchannel(event: AMIEvent) -> Newchannel:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    return Newchannel(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        channel=h.get("Channel", ""),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
    )


def _core_show_channel(event: AMIEvent) -> CoreShowChannel:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    queue = ""
    if h.get("Application") == "Queue":
        queue = h.get("ApplicationData", "").split(",", 1)[0].strip()
    return CoreShowChannel(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        channel=h.get("Channel", ""),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
        duration=_hms(h.get("Duration", "")),
        queue=queue,
    )


def _bare(cls: type[ChannelEvent]) -> Callable[[AMIEvent], ChannelEvent]:
    """The parser of an event read only for its channel snapshot (Newstate, BridgeEnter)."""

    def parse(event: AMIEvent) -> ChannelEvent:
        t, uid, lid, state, cid = _snapshot(event)
        return cls(time=t, uniqueid=uid, linkedid=lid, channel_state=state, customer_id=cid)

    return parse


def _new_callerid(event: AMIEvent) -> NewCallerid:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    return NewCallerid(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
    )


def _rename(event: AMIEvent) -> Rename:
    t, uid, lid, state, cid = _snapshot(event)
    return Rename(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        new_name=event.headers.get("Newname", ""),
    )


def _hangup(event: AMIEvent) -> Hangup:
    t, uid, lid, state, cid = _snapshot(event)
    cause = event.headers.get("Cause", "")
    return Hangup(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        cause=int(cause) if cause.isdecimal() else None,
    )


def _dial_end(event: AMIEvent) -> DialEnd:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    return DialEnd(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        dial_status=h.get("DialStatus", ""),
        dest_channel=h.get("DestChannel", ""),
        dest_uniqueid=h.get("DestUniqueid", ""),
    )


def _queue_caller_join(event: AMIEvent) -> QueueCallerJoin:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    return QueueCallerJoin(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        queue=h.get("Queue", ""),
        position=_whole(h.get("Position")),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
        dialect=event.var("DIALECT"),
    )


def _queue_caller_abandon(event: AMIEvent) -> QueueCallerAbandon:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    return QueueCallerAbandon(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        queue=h.get("Queue", ""),
        hold_time=number(h.get("HoldTime")),
    )


def _queue_caller_leave(event: AMIEvent) -> QueueCallerLeave:
    t, uid, lid, state, cid = _snapshot(event)
    return QueueCallerLeave(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        queue=event.headers.get("Queue", ""),
    )


def _agent(cls: type[AgentEvent]) -> Callable[[AMIEvent], AgentEvent]:
    def parse(event: AMIEvent) -> AgentEvent:
        t, uid, lid, state, cid = _snapshot(event)
        h = event.headers
        return cls(
            time=t,
            uniqueid=uid,
            linkedid=lid,
            channel_state=state,
            customer_id=cid,
            queue=h.get("Queue", ""),
            interface=h.get("Interface", ""),
            member_name=h.get("MemberName", ""),
            location=h.get("Location", ""),
            name=h.get("Name", ""),
            dest_uniqueid=h.get("DestUniqueid", ""),
            hold_time=number(h.get("HoldTime")),
            talk_time=number(h.get("TalkTime")),
        )

    return parse


def _member(cls: type[MemberEvent]) -> Callable[[AMIEvent], MemberEvent]:
    def parse(event: AMIEvent) -> MemberEvent:
        h = event.headers
        status = h.get("Status")
        wrapup = h.get("Wrapuptime")
        return cls(
            time=event.time,
            queue=h.get("Queue", ""),
            interface=h.get("Interface", ""),
            member_name=h.get("MemberName", ""),
            location=h.get("Location", ""),
            name=h.get("Name", ""),
            device_state=None if status is None else _whole_or(status, -1),
            paused=_flag(h, "Paused"),
            paused_reason=h.get("PausedReason", "").strip(),
            wrapup=None if wrapup is None else float(_whole_or(wrapup, 0)),
            in_call=_flag(h, "InCall"),
        )

    return parse


def _queue_params(event: AMIEvent) -> QueueParams:
    h = event.headers
    return QueueParams(
        time=event.time, queue=h.get("Queue", ""), service_level=number(h.get("ServiceLevel"))
    )


def _queue_entry(event: AMIEvent) -> QueueEntry:
    h = event.headers
    return QueueEntry(
        time=event.time,
        queue=h.get("Queue", ""),
        position=_whole(h.get("Position")),
        uniqueid=h.get("Uniqueid", ""),
        channel=h.get("Channel", ""),
        wait=number(h.get("Wait")),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id=h.get("CallerID", ""),
        caller_id_name=h.get("CallerIDName", ""),
    )


def _queue_result(event: AMIEvent) -> QueueResult:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    return QueueResult(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        queue=h.get("Queue", "").strip(),
        status=h.get("Status", "").strip().upper(),
    )


def _ivr_step(event: AMIEvent) -> IvrStep:
    t, uid, lid, state, cid = _snapshot(event)
    return IvrStep(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        step=event.headers.get("Step", "").strip(),
    )


def _customer_identified(event: AMIEvent) -> CustomerIdentified:
    t, uid, lid, state, cid = _snapshot(event)
    h = event.headers
    reasons = h.get("Reasons", "")
    return CustomerIdentified(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        dialect=h.get("Dialect", ""),
        dialect_source=h.get("DialectSource", ""),
        queue_prio=_whole(h.get("QueuePrio")),
        reasons=tuple(r.strip() for r in reasons.split(";") if r.strip())[:20],
        candidates=_whole(h.get("Candidates")),
    )


def _survey_result(event: AMIEvent) -> SurveyResult:
    t, uid, lid, state, cid = _snapshot(event)
    score = event.headers.get("Score", "").strip()
    return SurveyResult(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        score=int(score) if score in ("1", "2", "3") else None,
    )


def _account_manager(event: AMIEvent) -> AccountManager:
    t, uid, lid, state, cid = _snapshot(event)
    return AccountManager(
        time=t,
        uniqueid=uid,
        linkedid=lid,
        channel_state=state,
        customer_id=cid,
        agent=event.headers.get("Agent", "").strip(),
    )


_USER_EVENTS: Final[dict[str, Callable[[AMIEvent], TypedEvent]]] = {
    "QueueResult": _queue_result,
    "IvrStep": _ivr_step,
    "CustomerIdentified": _customer_identified,
    "SurveyResult": _survey_result,
    "AccountManager": _account_manager,
}


def _user_event(event: AMIEvent) -> TypedEvent | None:
    parse = _USER_EVENTS.get(event.headers.get("UserEvent", ""))
    return None if parse is None else parse(event)


def _hotline_resync(event: AMIEvent) -> HotlineResync:
    raw = event.headers.get("Uniqueids")
    return HotlineResync(time=event.time, alive=None if raw is None else frozenset(raw.split()))


def _hotline_disconnected(event: AMIEvent) -> HotlineDisconnected:
    return HotlineDisconnected(time=event.time, reason=event.headers.get("Reason", ""))


_PARSERS: Final[dict[str, Callable[[AMIEvent], TypedEvent | None]]] = {
    "Newchannel": _newchannel,
    "CoreShowChannel": _core_show_channel,
    "Newstate": _bare(Newstate),
    "BridgeEnter": _bare(BridgeEnter),
    "NewCallerid": _new_callerid,
    "Rename": _rename,
    "Hangup": _hangup,
    "DialEnd": _dial_end,
    "QueueCallerJoin": _queue_caller_join,
    "QueueCallerAbandon": _queue_caller_abandon,
    "QueueCallerLeave": _queue_caller_leave,
    "AgentCalled": _agent(AgentCalled),
    "AgentRingNoAnswer": _agent(AgentRingNoAnswer),
    "AgentConnect": _agent(AgentConnect),
    "AgentComplete": _agent(AgentComplete),
    "QueueMemberStatus": _member(QueueMemberStatus),
    "QueueMemberAdded": _member(QueueMemberAdded),
    "QueueMemberPause": _member(QueueMemberPause),
    "QueueMemberRemoved": _member(QueueMemberRemoved),
    "QueueMember": _member(QueueMember),
    "QueueParams": _queue_params,
    "QueueEntry": _queue_entry,
    "UserEvent": _user_event,
    "HotlineResync": _hotline_resync,
    "HotlineDisconnected": _hotline_disconnected,
}


def parse_typed(event: AMIEvent) -> TypedEvent | None:
    """The typed view of ``event`` (:mod:`hotline.ami.typed`); ``None`` for an event type,
    or a UserEvent kind, no one reads. Never raises.

    Prefer ``event.typed``, which parses once and keeps the result on the event.
    """
    parse = _PARSERS.get(event.name)
    return None if parse is None else parse(event)
