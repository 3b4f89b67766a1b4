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

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, TypeVar

from hotline.types import NO_VALUE

__all__ = [
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
    "SurveyResult",
    "TypedEvent",
    "known",
    "maker",
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


# -- the events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TypedEvent:
    """Any typed event. ``time`` is :attr:`AMIEvent.time` (Asterisk's ``Timestamp``)."""

    EVENT: ClassVar[str] = ""  # the AMI ``Event`` name this class is parsed from

    time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(TypedEvent):
    """An event about one channel, with the snapshot Asterisk attaches to every such event."""

    uniqueid: str  # as sent: may be a no-value placeholder, see known()
    linkedid: str
    channel_state: str  # compare with UP
    customer_id: str | None  # the CUSTOMER_ID channel variable, once the IVR has set it


@dataclass(frozen=True, slots=True, kw_only=True)
class Newchannel(ChannelEvent):
    EVENT: ClassVar[str] = "Newchannel"

    channel: str
    caller_id_num: str
    caller_id_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreShowChannel(ChannelEvent):
    """One channel of a ``CoreShowChannels`` listing (a resync after reconnecting)."""

    EVENT: ClassVar[str] = "CoreShowChannel"

    channel: str
    caller_id_num: str
    caller_id_name: str
    duration: float | None  # seconds since the channel was created
    queue: str  # the queue it waits in when its application is Queue(), else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Newstate(ChannelEvent):
    EVENT: ClassVar[str] = "Newstate"


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEnter(ChannelEvent):
    EVENT: ClassVar[str] = "BridgeEnter"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCallerid(ChannelEvent):
    EVENT: ClassVar[str] = "NewCallerid"

    caller_id_num: str
    caller_id_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(ChannelEvent):
    EVENT: ClassVar[str] = "Rename"

    new_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(ChannelEvent):
    EVENT: ClassVar[str] = "Hangup"

    cause: int | None  # Q.850 cause code


@dataclass(frozen=True, slots=True, kw_only=True)
class DialEnd(ChannelEvent):
    EVENT: ClassVar[str] = "DialEnd"

    dial_status: str
    dest_channel: str
    dest_uniqueid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerJoin(ChannelEvent):
    EVENT: ClassVar[str] = "QueueCallerJoin"

    queue: str
    position: int | None
    caller_id_num: str
    caller_id_name: str
    dialect: str | None  # the DIALECT channel variable: what routing settled on


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerAbandon(ChannelEvent):
    """Raised for timeouts, leave-empty and withdraw too: not by itself an abandon."""

    EVENT: ClassVar[str] = "QueueCallerAbandon"

    queue: str
    hold_time: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallerLeave(ChannelEvent):
    EVENT: ClassVar[str] = "QueueCallerLeave"

    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCalled(AgentEvent):
    EVENT: ClassVar[str] = "AgentCalled"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRingNoAnswer(AgentEvent):
    EVENT: ClassVar[str] = "AgentRingNoAnswer"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnect(AgentEvent):
    EVENT: ClassVar[str] = "AgentConnect"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentComplete(AgentEvent):
    EVENT: ClassVar[str] = "AgentComplete"


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberStatus(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberStatus"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberAdded(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberAdded"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberPause(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberPause"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMemberRemoved(MemberEvent):
    EVENT: ClassVar[str] = "QueueMemberRemoved"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMember(MemberEvent):
    """A member in a ``QueueStatus`` reply."""

    EVENT: ClassVar[str] = "QueueMember"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueParams(TypedEvent):
    """A queue in a ``QueueStatus`` reply."""

    EVENT: ClassVar[str] = "QueueParams"

    queue: str
    service_level: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueResult(ChannelEvent):
    """``UserEvent(QueueResult,Queue: q,Status: ${QUEUESTATUS})`` after ``Queue()`` returns."""

    EVENT: ClassVar[str] = "UserEvent"

    queue: str
    status: str  # upper-cased QUEUESTATUS; "" when missing


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrStep(ChannelEvent):
    EVENT: ClassVar[str] = "UserEvent"

    step: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerIdentified(ChannelEvent):
    """The IVR's identify step: the routing decision, for the call log."""

    EVENT: ClassVar[str] = "UserEvent"

    dialect: str
    dialect_source: str
    queue_prio: int | None  # QueuePrio (``Priority`` is the dialplan's own, on every event)
    reasons: tuple[str, ...]  # ``;``-separated in the event, blanks dropped, at most 20
    candidates: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveyResult(ChannelEvent):
    EVENT: ClassVar[str] = "UserEvent"

    score: int | None  # 1 非常满意, 2 满意, 3 不满意; None for any other key


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountManager(ChannelEvent):
    """The dialplan is about to ring the customer's account manager directly."""

    EVENT: ClassVar[str] = "UserEvent"

    agent: str


# Synthetic events the bridge raises (hotline.ami.bridge RESYNC_EVENT, DISCONNECTED_EVENT).


@dataclass(frozen=True, slots=True, kw_only=True)
class HotlineResync(TypedEvent):
    EVENT: ClassVar[str] = "HotlineResync"

    alive: frozenset[str] | None  # Uniqueids of the live channels; None when not listed


@dataclass(frozen=True, slots=True, kw_only=True)
class HotlineDisconnected(TypedEvent):
    EVENT: ClassVar[str] = "HotlineDisconnected"

    reason: str


# -- construction -------------------------------------------------------------------------

_T = TypeVar("_T", bound=TypedEvent)


def _fast_init(cls: type[TypedEvent]) -> None:
    """Give a typed event class an ``__init__`` that stores its fields through the slots.

    The ``__init__`` that ``dataclass(frozen=True)`` writes calls ``object.__setattr__``
    for every field, about a fifth of the whole parse, which runs for every event the
    tracker reads on the bridge's hot path (bench/ami_throughput.py). This one has the
    same keyword-only signature and stores the same values through the slots' own
    descriptors, so the instance is the same and as frozen (assigning a field still
    raises ``FrozenInstanceError``).
    """
    names = [f.name for f in fields(cls)]
    namespace = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    source = f"def __init__(self, *, {', '.join(names)}):\n" + "".join(
        f"    _set_{name}(self, {name})\n" for name in names
    )
    exec(source, namespace)  # as dataclasses itself does: one function, fixed names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses to assign to a method)


def maker(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of ``cls`` for the parsers: the class's keyword-only signature.

    The parsers build one event per AMI event the consumers read, and storing a field
    of a frozen class costs a call through the slot's descriptor (the class's own
    ``__setattr__`` refuses), several times a plain attribute store. So the instance is
    built as a private subclass that adds no slot and keeps the plain ``__setattr__``,
    with plain stores, then given its class, which Python allows between classes of the
    same layout. The result is the instance ``cls(...)`` builds (same class, slots and
    values, as frozen), and without the type call either.
    """
    names = [f.name for f in fields(cls)]
    builder = type(
        f"_{cls.__name__}Builder",
        (cls,),
        {
            "__slots__": (),
            "__setattr__": object.__setattr__,  # both: together they are one type slot
            "__delattr__": object.__delattr__,
        },
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_builder": builder, "_cls": cls}
    source = (
        f"def make(*, {', '.join(names)}):\n    self = _new(_builder)\n"
        + "".join(f"    self.{name} = {name}\n" for name in names)
        + "    self.__class__ = _cls\n    return self\n"
    )
    exec(source, namespace)  # fixed names only, as in _fast_init
    make: Callable[..., _T] = namespace["make"]
    return make


for _name in __all__:  # every concrete event class: the ones naming their AMI event
    _class = globals()[_name]
    if isinstance(_class, type) and issubclass(_class, TypedEvent) and _class.EVENT:
        _fast_init(_class)
