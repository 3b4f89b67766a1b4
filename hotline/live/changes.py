"""What :class:`~hotline.live.state.LiveState` answers each event with: typed change values.

The supervisor WebSocket (:mod:`hotline.live.publisher`) turns each change into a frame.
Queue and agent changes carry only a key, not the figures: the publisher takes the view
when it sends, so a frame is never built from figures an earlier event already replaced.
Every change is a frozen value so that :func:`emit` can drop the second "queue X changed"
of one event by equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AbandonedCaller",
    "AgentUpdated",
    "CallerAbandoned",
    "CallerLeft",
    "CallerWaiting",
    "Change",
    "LinkChanged",
    "QueueUpdated",
    "StateReset",
    "emit",
]


@dataclass(frozen=True, slots=True)
class QueueUpdated:
    """A queue's figures changed: push ``queue_view(queue, now)``."""

    kind: ClassVar[str] = "queue"
    queue: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "queue": self.queue}


@dataclass(frozen=True, slots=True)
class AgentUpdated:
    """An agent's state or figures changed: push ``agent_view(interface, now)``."""

    kind: ClassVar[str] = "agent"
    interface: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "interface": self.interface}


@dataclass(frozen=True, slots=True)
class CallerWaiting:
    kind: ClassVar[str] = "caller.waiting"
    queue: str
    uniqueid: str
    position: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "queue": self.queue,
            "uniqueid": self.uniqueid,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class CallerLeft:
    """The caller is no longer waiting (answered, gone, or swept by a resync)."""

    kind: ClassVar[str] = "caller.left"
    queue: str
    uniqueid: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "queue": self.queue, "uniqueid": self.uniqueid}


@dataclass(frozen=True, slots=True)
class AbandonedCaller:
    """One entry of today's call-back list (real abandons only, not short ones)."""

    queue: str
    uniqueid: str
    linkedid: str
    caller_number: str
    caller_name: str
    customer_id: str | None
    joined_at: float | None
    abandoned_at: float
    wait: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "uniqueid": self.uniqueid,
            "linkedid": self.linkedid,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "customer_id": self.customer_id,
            "joined_at": self.joined_at,
            "abandoned_at": self.abandoned_at,
            "wait": self.wait,
        }


@dataclass(frozen=True, slots=True)
class CallerAbandoned:
    kind: ClassVar[str] = "abandoned"
    caller: AbandonedCaller

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.caller.as_dict()}


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The AMI link dropped (figures freeze and may be stale) or came back."""

    kind: ClassVar[str] = "link"
    connected: bool

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": self.connected}


@dataclass(frozen=True, slots=True)
class StateReset:
    """Many things changed at once (``day``, ``resync``, ``queue_status``): push a snapshot."""

    kind: ClassVar[str] = "reset"
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason}


Change = (
    QueueUpdated
    | AgentUpdated
    | CallerWaiting
    | CallerLeft
    | CallerAbandoned
    | LinkChanged
    | StateReset
)


def emit(out: list[Change], change: Change) -> None:
    """Append ``change`` unless this event already reported it: each change once per event."""
    if change not in out:
        out.append(change)
