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
    SoftHangupRequest,
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


_UNPARSED: Final = _Unparsed.TOKEN


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
        if typed is _UNPARSED:  # first use: parse_typed, spelled out (once per event)
            parse = _PARSERS.get(self.name)
            if parse is None:
                typed = None
            else:
                stamp = self.headers.get("Timestamp")
                try:
                    at = float(stamp) if stamp else self.received
                except ValueError:
                    at = self.received
                typed = parse(self, at)
            self._typed = typed
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
    if value.isdecimal() and len(value) <= 12:  # the usual case; below 1e12 as number() wants
        return int(value)
    parsed = number(value)
    return default if parsed is None else int(parsed)


def _hms(value: str) -> float | None:
    """``HH:MM:SS`` (CoreShowChannel ``Duration``) in seconds."""
    parts = value.split(":")
    if len(parts) != 3 or not all(p.isdecimal() for p in parts):
        return None
    return int(parts[0]) * 3600.0 + int(parts[1]) * 60.0 + int(parts[2])


_NO_VARS: Final[dict[str, str]] = {}  # never written: the snapshot when none was sent

# Every channel event starts with the snapshot Asterisk attaches to it: time, Uniqueid,
# Linkedid, ChannelState and CUSTOMER_ID (ChannelEvent's fields). The parsers spell it
# out: one event is parsed per AMI event the consumers read, so no intermediate tuple
# and no extra call.


def _newchannel(event: AMIEvent, at: float) -> Newchannel:
    h = event.headers
    return Newchannel(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        channel=h.get("Channel", ""),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
    )


def _core_show_channel(event: AMIEvent, at: float) -> CoreShowChannel:
    h = event.headers
    queue = ""
    if h.get("Application") == "Queue":
        queue = h.get("ApplicationData", "").split(",", 1)[0].strip()
    return CoreShowChannel(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        channel=h.get("Channel", ""),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
        duration=_hms(h.get("Duration", "")),
        queue=queue,
    )


def _bare(cls: type[ChannelEvent]) -> Callable[[AMIEvent, float], ChannelEvent]:
    """The parser of an event read only for its channel snapshot (Newstate, BridgeEnter)."""

    def parse(event: AMIEvent, at: float) -> ChannelEvent:
        h = event.headers
        return cls(
            time=at,
            uniqueid=h.get("Uniqueid", ""),
            linkedid=h.get("Linkedid", ""),
            channel_state=h.get("ChannelState", ""),
            customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        )

    return parse


def _new_callerid(event: AMIEvent, at: float) -> NewCallerid:
    h = event.headers
    return NewCallerid(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
    )


def _rename(event: AMIEvent, at: float) -> Rename:
    h = event.headers
    return Rename(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        new_name=h.get("Newname", ""),
    )


def _caused(cls: type[Hangup | SoftHangupRequest]) -> Callable[[AMIEvent, float], ChannelEvent]:
    """The parser of a hangup event: its channel snapshot and its numeric ``Cause``."""

    def parse(event: AMIEvent, at: float) -> ChannelEvent:
        h = event.headers
        cause = h.get("Cause", "")
        return cls(
            time=at,
            uniqueid=h.get("Uniqueid", ""),
            linkedid=h.get("Linkedid", ""),
            channel_state=h.get("ChannelState", ""),
            customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
            cause=int(cause) if cause.isdecimal() else None,
        )

    return parse


def _dial_end(event: AMIEvent, at: float) -> DialEnd:
    h = event.headers
    return DialEnd(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        dial_status=h.get("DialStatus", ""),
        dest_channel=h.get("DestChannel", ""),
        dest_uniqueid=h.get("DestUniqueid", ""),
    )


def _queue_caller_join(event: AMIEvent, at: float) -> QueueCallerJoin:
    h = event.headers
    return QueueCallerJoin(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        queue=h.get("Queue", ""),
        position=_whole(h.get("Position")),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id_name=h.get("CallerIDName", ""),
        dialect=event.var("DIALECT"),
    )


def _queue_caller_abandon(event: AMIEvent, at: float) -> QueueCallerAbandon:
    h = event.headers
    return QueueCallerAbandon(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        queue=h.get("Queue", ""),
        hold_time=number(h.get("HoldTime")),
    )


def _queue_caller_leave(event: AMIEvent, at: float) -> QueueCallerLeave:
    h = event.headers
    return QueueCallerLeave(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        queue=h.get("Queue", ""),
    )


def _agent(cls: type[AgentEvent]) -> Callable[[AMIEvent, float], AgentEvent]:

    def parse(event: AMIEvent, at: float) -> AgentEvent:
        h = event.headers
        return cls(
            time=at,
            uniqueid=h.get("Uniqueid", ""),
            linkedid=h.get("Linkedid", ""),
            channel_state=h.get("ChannelState", ""),
            customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
            queue=h.get("Queue", ""),
            interface=h.get("Interface", ""),
            member_name=h.get("MemberName", ""),
            location=h.get("Location", ""),
            name=h.get("Name", ""),
            dest_uniqueid=h.get("DestUniqueid", ""),
            hold_time=number(hold) if (hold := h.get("HoldTime")) else None,  # not on all
            talk_time=number(talk) if (talk := h.get("TalkTime")) else None,
        )

    return parse


def _member(cls: type[MemberEvent]) -> Callable[[AMIEvent, float], MemberEvent]:

    def parse(event: AMIEvent, at: float) -> MemberEvent:
        h = event.headers
        status = h.get("Status")
        wrapup = h.get("Wrapuptime")
        paused = h.get("Paused")
        in_call = h.get("InCall")
        return cls(
            time=at,
            queue=h.get("Queue", ""),
            interface=h.get("Interface", ""),
            member_name=h.get("MemberName", ""),
            location=h.get("Location", ""),
            name=h.get("Name", ""),
            device_state=None if status is None else _whole_or(status, -1),
            paused=None if paused is None else paused.strip() == "1",
            paused_reason=h.get("PausedReason", "").strip(),
            wrapup=None if wrapup is None else float(_whole_or(wrapup, 0)),
            in_call=None if in_call is None else in_call.strip() == "1",
        )

    return parse


def _queue_params(event: AMIEvent, at: float) -> QueueParams:
    h = event.headers
    return QueueParams(
        time=at, queue=h.get("Queue", ""), service_level=number(h.get("ServiceLevel"))
    )


def _queue_entry(event: AMIEvent, at: float) -> QueueEntry:
    h = event.headers
    return QueueEntry(
        time=at,
        queue=h.get("Queue", ""),
        position=_whole(h.get("Position")),
        uniqueid=h.get("Uniqueid", ""),
        channel=h.get("Channel", ""),
        wait=number(h.get("Wait")),
        caller_id_num=h.get("CallerIDNum", ""),
        caller_id=h.get("CallerID", ""),
        caller_id_name=h.get("CallerIDName", ""),
    )


def _queue_result(event: AMIEvent, at: float) -> QueueResult:
    h = event.headers
    return QueueResult(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        queue=h.get("Queue", "").strip(),
        status=h.get("Status", "").strip().upper(),
    )


def _ivr_step(event: AMIEvent, at: float) -> IvrStep:
    h = event.headers
    return IvrStep(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        step=h.get("Step", "").strip(),
    )


def _customer_identified(event: AMIEvent, at: float) -> CustomerIdentified:
    h = event.headers
    reasons = h.get("Reasons", "")
    return CustomerIdentified(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        dialect=h.get("Dialect", ""),
        dialect_source=h.get("DialectSource", ""),
        queue_prio=_whole(h.get("QueuePrio")),
        reasons=tuple(r.strip() for r in reasons.split(";") if r.strip())[:20],
        candidates=_whole(h.get("Candidates")),
    )


def _survey_result(event: AMIEvent, at: float) -> SurveyResult:
    h = event.headers
    score = h.get("Score", "").strip()
    return SurveyResult(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        score=int(score) if score in ("1", "2", "3") else None,
    )


def _account_manager(event: AMIEvent, at: float) -> AccountManager:
    h = event.headers
    return AccountManager(
        time=at,
        uniqueid=h.get("Uniqueid", ""),
        linkedid=h.get("Linkedid", ""),
        channel_state=h.get("ChannelState", ""),
        customer_id=(event.chanvars.get("ChanVariable") or _NO_VARS).get("CUSTOMER_ID"),
        agent=h.get("Agent", "").strip(),
    )


_USER_EVENTS: Final[dict[str, Callable[[AMIEvent, float], TypedEvent]]] = {
    "QueueResult": _queue_result,
    "IvrStep": _ivr_step,
    "CustomerIdentified": _customer_identified,
    "SurveyResult": _survey_result,
    "AccountManager": _account_manager,
}


def _user_event(event: AMIEvent, at: float) -> TypedEvent | None:
    parse = _USER_EVENTS.get(event.headers.get("UserEvent", ""))
    return None if parse is None else parse(event, at)


def _hotline_resync(event: AMIEvent, at: float) -> HotlineResync:
    raw = event.headers.get("Uniqueids")
    return HotlineResync(time=at, alive=None if raw is None else frozenset(raw.split()))


def _hotline_disconnected(event: AMIEvent, at: float) -> HotlineDisconnected:
    return HotlineDisconnected(time=at, reason=event.headers.get("Reason", ""))


_PARSERS: Final[dict[str, Callable[[AMIEvent, float], TypedEvent | None]]] = {
    "Newchannel": _newchannel,
    "CoreShowChannel": _core_show_channel,
    "Newstate": _bare(Newstate),
    "BridgeEnter": _bare(BridgeEnter),
    "NewCallerid": _new_callerid,
    "Rename": _rename,
    "Hangup": _caused(Hangup),
    "SoftHangupRequest": _caused(SoftHangupRequest),
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
    return None if parse is None else parse(event, _stamp(event.headers, event.received))
