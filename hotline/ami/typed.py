"""Typed AMI events: every event the call tracker and the live state read, as a frozen value.

An :class:`~hotline.ami.events.AMIEvent` is a bag of header strings. Its consumers want
named, converted fields (``hold_time: float | None``, not ``headers.get("HoldTime")``
parsed in three places), so each event type Hotline reads is one frozen dataclass here.
``AMIEvent.typed`` builds it (:func:`hotline.ami.events.parse_typed`, the only code that
looks those headers up by name) on first use and keeps it, so the bridge's consumer,
the tracker and the live state share one parse per event; an event type no one reads
is ``None`` for the cost of one dict lookup.

The conversions keep what the consumers did with the raw headers before, exactly
(recorded streams must replay to the same call log and wallboard):

* A string field is the header as Asterisk sent it, ``""`` when absent. Asterisk's
  placeholders for "no value" (:data:`hotline.types.NO_VALUE`: ``<unknown>``, …) are
  *not* blanked, because the consumers disagree on the set (the live state also drops
  ``unknown``) and on what to fall back to; :func:`known` is the shared test.
* What the dialplan writes (``UserEvent`` bodies) is stripped, as every reader did.
* Numbers (``HoldTime``, ``TalkTime``, ``Wait``…) go through :func:`number`: ``None``
  when absent, not a number, not finite or beyond 1e12.
* ``None`` marks an absent header only where absence means something else than an
  empty value (``Paused``, ``Status``, ``Uniqueids``…).

Parsing never raises on any header value: a bad field becomes ``""``/``None`` and the
consumer decides whether to skip the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final, TypeVar, dataclass_transform

from hotline.types import NO_VALUE

__all__ = [
    "SOFTHANGUP_SHUTDOWN",
    "UP",
    "AccountManager",
    "AgentCalled",
    "AgentComplete",
    "AgentConnect",
    "AgentEvent",
    "AgentRingNoAnswer",
    "BridgeEnter",
    "ChannelEvent",
    "CoreShowChannel",
    "CustomerIdentified",
    "DialEnd",
    "Hangup",
    "HotlineDisconnected",
    "HotlineResync",
    "IvrStep",
    "MemberEvent",
    "NewCallerid",
    "Newchannel",
    "Newstate",
    "QueueCallerAbandon",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueEntry",
    "QueueMember",
    "QueueMemberAdded",
    "QueueMemberPause",
    "QueueMemberRemoved",
    "QueueMemberStatus",
    "QueueParams",
    "QueueResult",
    "Rename",
    "SoftHangupRequest",
    "SurveyResult",
    "TypedEvent",
    "event_class",
    "known",
    "number",
]

UP: Final = "6"
"""``ChannelState`` of an answered channel (``AST_STATE_UP``)."""


def known(value: str) -> str | None:
    """``value``, or ``None`` when it is empty or one of Asterisk's no-value placeholders."""
    return None if value in NO_VALUE else value


def number(value: str | None) -> float | None:
    """A numeric header; ``None`` when absent, not a number, NaN, infinite or absurd."""
    if not value:
        return None
    try:
        parsed = float(value)
    except ValueError:
        return None
    return parsed if parsed == parsed and abs(parsed) < 1e12 else None  # NaN, inf


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def event_class(cls: type[_T]) -> type[_T]:
    """A typed event class: keyword-only, slotted, and read-only to the type checker.

    Why not ``dataclass(frozen=True)``: its ``__init__`` stores every field through
    ``object.__setattr__``, since the class's own refuses, and that made building the
    event cost more than the raw header reads it replaced, on the bridge's hot path
    (docs/benchmarks.md, "AMI consumer path"). So the run-time class is a plain slotted
    dataclass with plain stores, and immutability is the type checker's rule instead:
    ``dataclass_transform(frozen_default=True)`` tells mypy these classes are frozen, so
    assigning a field anywhere in the code fails ``make test``
    (tests/unit/test_ami_typed.py checks that too). ``unsafe_hash`` keeps them hashable,
    as frozen values are.
    """
    return dataclass(slots=True, kw_only=True, unsafe_hash=True)(cls)


# -- the events ---------------------------------------------------------------------------


@event_class
class TypedEvent:
    """Any typed event. ``time`` is :attr:`AMIEvent.time` (Asterisk's ``Timestamp``)."""

    EVENT: ClassVar[str] = ""  # the AMI ``Event`` name this class is parsed from

    time: float


@event_class
class ChannelEvent(TypedEvent):
    """An event about one channel, with the snapshot Asterisk attaches to every such event."""

    uniqueid: str  # as sent: may be a no-value placeholder, see known()
    linkedid: str
    channel_state: str  # compare with UP
    customer_id: str | None  # the CUSTOMER_ID channel variable, once the IVR has set it


@event_class
class Newchannel(ChannelEvent):
    EVENT: ClassVar[str] = "Newchannel"

    channel: str
    caller_id_num: str
    caller_id_name: str


@event_class
class CoreShowChannel(ChannelEvent):
    """One channel of a ``CoreShowChannels`` listing (a resync after reconnecting)."""

    EVENT: ClassVar[str] = "CoreShowChannel"

    channel: str
    caller_id_num: str
    caller_id_name: str
    duration: float | None  # seconds since the channel was created
    queue: str  # the queue it waits in when its application is Queue(), else ""


@event_class
class Newstate(ChannelEvent):
    EVENT: ClassVar[str] = "Newstate"


@event_class
class BridgeEnter(ChannelEvent):
    EVENT: ClassVar[str] = "BridgeEnter"


@event_class
class NewCallerid(ChannelEvent):
    EVENT: ClassVar[str] = "NewCallerid"

    caller_id_num: str
    caller_id_name: str


@event_class
class Rename(ChannelEvent):
    EVENT: ClassVar[str] = "Rename"

    new_name: str


@event_class
class Hangup(ChannelEvent):
    EVENT: ClassVar[str] = "Hangup"

    cause: int | None  # Q.850 cause code


SOFTHANGUP_SHUTDOWN: Final = 4


@event_class
class SoftHangupRequest(ChannelEvent):
    """Asterisk itself asks a channel to hang up. ``cause`` is the AST_SOFTHANGUP_*
    reason, not a Q.850 code: :data:`SOFTHANGUP_SHUTDOWN` (4) is a ``core stop`` or
    ``core restart`` hanging up every channel (tests/fixtures/record/cut_by_restart.ami);
    an ordinary hangup shows 16."""

    EVENT: ClassVar[str] = "SoftHangupRequest"

    cause: int | None


@event_class
class DialEnd(ChannelEvent):
    EVENT: ClassVar[str] = "DialEnd"

    dial_status: str
    dest_channel: str
    dest_uniqueid: str


@event_class
class QueueCallerJoin(ChannelEvent):
    EVENT: ClassVar[str] = "QueueCallerJoin"

    queue: str
    position: int | None
    caller_id_num: str
    caller_id_name: str
    dialect: str | None  # the DIALECT channel variable: what routing settled on


@event_class
class QueueCallerAbandon(ChannelEvent):
    """Raised for timeouts, leave-empty and withdraw too: not by itself an abandon."""

    EVENT: ClassVar[str] = "QueueCallerAbandon"

    queue: str
    hold_time: float | None


@event_class
class QueueCallerLeave(ChannelEvent):
    EVENT: ClassVar[str] = "QueueCallerLeave"

    queue: str


@event_class
class AgentEvent(ChannelEvent):
    """A queue member's part in a caller's call; the channel fields are the caller's.

    ``location`` and ``name`` are the older spellings of ``Interface`` and ``MemberName``
    that the live state falls back on.
    """

    queue: str
    interface: str
    member_name: str
    location: str
    name: str
    dest_uniqueid: str  # the member's channel
    hold_time: float | None  # whole seconds the caller waited (AgentConnect, AgentComplete)
    talk_time: float | None  # whole seconds talked (AgentComplete)


@event_class
class AgentCalled(AgentEvent):
    EVENT: ClassVar[str] = "AgentCalled"


@event_class
class AgentRingNoAnswer(AgentEvent):
    EVENT: ClassVar[str] = "AgentRingNoAnswer"


@event_class
class AgentConnect(AgentEvent):
    EVENT: ClassVar[str] = "AgentConnect"


@event_class
class AgentComplete(AgentEvent):
    EVENT: ClassVar[str] = "AgentComplete"


@event_class
class MemberEvent(TypedEvent):
    """A queue member's state: QueueMember* events and the ``QueueMember`` reply item.

    Each fact is ``None`` when its header is absent (the event does not speak of it).
    """

    queue: str
    interface: str
    member_name: str
    location: str  # Location and Name: the QueueStatus reply's spelling
    name: str
    device_state: int | None  # Status (ast_device_state); -1 when present but not a number
    paused: bool | None
    paused_reason: str  # stripped; meaningful when ``paused`` is not None
    wrapup: float | None  # Wrapuptime in whole seconds; 0 when present but not a number
    in_call: bool | None


@event_class
class QueueMemberStatus(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberStatus"


@event_class
class QueueMemberAdded(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberAdded"


@event_class
class QueueMemberPause(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberPause"


@event_class
class QueueMemberRemoved(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberRemoved"


@event_class
class QueueMember(MemberEvent):
    """A member in a ``QueueStatus`` reply."""

    EVENT: ClassVar[str] = "QueueMember"


@event_class
class QueueParams(TypedEvent):
    """A queue in a ``QueueStatus`` reply."""

    EVENT: ClassVar[str] = "QueueParams"

    queue: str
    service_level: float | None


@event_class
class QueueEntry(TypedEvent):
    """A waiting caller in a ``QueueStatus`` reply (it carries no Linkedid)."""

    EVENT: ClassVar[str] = "QueueEntry"

    queue: str
    position: int | None
    uniqueid: str
    channel: str
    wait: float | None
    caller_id_num: str
    caller_id: str  # older spelling of CallerIDNum
    caller_id_name: str


# Dialplan UserEvents (docs/call-log.md): the body is what the dialplan wrote, stripped.


@event_class
class QueueResult(ChannelEvent):
    """``UserEvent(QueueResult,Queue: q,Status: ${QUEUESTATUS})`` after ``Queue()`` returns."""

    EVENT: ClassVar[str] = "UserEvent"

    queue: str
    status: str  # upper-cased QUEUESTATUS; "" when missing


@event_class
class IvrStep(ChannelEvent):
    EVENT: ClassVar[str] = "UserEvent"

    step: str


@event_class
class CustomerIdentified(ChannelEvent):
    """The IVR's identify step: the routing decision, for the call log."""

    EVENT: ClassVar[str] = "UserEvent"

    dialect: str
    dialect_source: str
    queue_prio: int | None  # QueuePrio (``Priority`` is the dialplan's own, on every event)
    reasons: tuple[str, ...]  # ``;``-separated in the event, blanks dropped, at most 20
    candidates: int | None


@event_class
class SurveyResult(ChannelEvent):
    EVENT: ClassVar[str] = "UserEvent"

    score: int | None  # 1 非常满意, 2 满意, 3 不满意; None for any other key


@event_class
class AccountManager(ChannelEvent):
    """The dialplan is about to ring the customer's account manager directly."""

    EVENT: ClassVar[str] = "UserEvent"

    agent: str


# Synthetic events the bridge raises (hotline.ami.bridge RESYNC_EVENT, DISCONNECTED_EVENT).


@event_class
class HotlineResync(TypedEvent):
    EVENT: ClassVar[str] = "HotlineResync"

    alive: frozenset[str] | None  # Uniqueids of the live channels; None when not listed


@event_class
class HotlineDisconnected(TypedEvent):
    EVENT: ClassVar[str] = "HotlineDisconnected"

    reason: str
