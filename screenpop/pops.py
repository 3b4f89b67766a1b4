"""Which agent's page shows which caller, followed from AMI events (sans-I/O).

The pop itself is pushed before the phone rings, by the pre-dial step (see
``screenpop/push.py``); this tracker follows what happens after, and tells each page
when its pop stops being true: the agent did not answer, someone else did, the caller
left. It returns ``Push`` values; the service publishes them on the agent's stream.

Agents are named by the queue member's ``MemberName`` (the agent id given at QueueAdd);
the member interface maps to it for events that carry only the interface.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from hotline.ami.events import AMIEvent
from hotline.ami.typed import (
    AgentCalled,
    AgentConnect,
    AgentEvent,
    AgentRingNoAnswer,
    DialEnd,
    Hangup,
    TypedEvent,
)
from hotline.types import agent_stream


class PushType(enum.StrEnum):
    SCREENPOP = "screenpop"
    WITHDRAWN = "screenpop.withdrawn"
    CONNECTED = "call.connected"
    ENDED = "call.ended"


@dataclass(frozen=True, slots=True)
class Push:
    agent: str
    type: PushType
    linkedid: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        return agent_stream(self.agent)

    def message(self) -> dict[str, Any]:
        return {"type": str(self.type), "linkedid": self.linkedid, **self.data}


@dataclass(slots=True)
class _Call:
    caller_uniqueid: str
    ringing: dict[str, str] = field(default_factory=dict)  # agent → member leg uniqueid
    connected: str | None = None
    queue: str | None = None


class PopTracker:
    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        self._agent_of_interface: dict[str, str] = {}
        self._agent_of_leg: dict[str, tuple[str, str]] = {}  # member uniqueid → (linkedid, agent)
        self.pushed_on_agentcalled = 0

    def agent_for_interface(self, interface: str) -> str | None:
        return self._agent_of_interface.get(interface)

    def feed(self, event: AMIEvent) -> list[Push]:
        if event.name not in _NAMES:
            return []
        typed = event.typed
        handler = None if typed is None else _HANDLERS.get(type(typed))
        return handler(self, typed) if handler else []

    # -- handlers ------------------------------------------------------------------
    def _agent(self, event: AgentEvent) -> str | None:
        member = event.member_name
        interface = event.interface
        if member and interface:
            self._agent_of_interface[interface] = member
        return member or self._agent_of_interface.get(interface) or None

    def _agent_called(self, event: AgentCalled) -> list[Push]:
        agent = self._agent(event)
        linkedid = event.linkedid
        if not agent or not linkedid:
            return []
        call = self._calls.setdefault(linkedid, _Call(caller_uniqueid=event.uniqueid))
        call.queue = event.queue or call.queue
        leg = event.dest_uniqueid
        call.ringing[agent] = leg
        if leg:
            self._agent_of_leg[leg] = (linkedid, agent)
        return [Push(agent, PushType.SCREENPOP, linkedid, {"queue": call.queue, "ringing": True})]

    def _withdraw(self, linkedid: str, agent: str, reason: str) -> list[Push]:
        call = self._calls.get(linkedid)
        if call is None or call.ringing.pop(agent, None) is None:
            return []
        return [Push(agent, PushType.WITHDRAWN, linkedid, {"reason": reason})]

    def _ring_no_answer(self, event: AgentRingNoAnswer) -> list[Push]:
        agent = self._agent(event)
        return self._withdraw(event.linkedid, agent, "no_answer") if agent else []

    def _dial_end(self, event: DialEnd) -> list[Push]:
        status = event.dial_status
        found = self._agent_of_leg.get(event.dest_uniqueid)
        if not found or status == "ANSWER":
            return []
        linkedid, agent = found
        return self._withdraw(linkedid, agent, status.lower() or "ended")

    def _agent_connect(self, event: AgentConnect) -> list[Push]:
        agent = self._agent(event)
        call = self._calls.get(event.linkedid)
        if not agent or call is None:
            return []
        call.connected = agent
        call.ringing.pop(agent, None)
        pushes = [Push(agent, PushType.CONNECTED, event.linkedid, {"queue": event.queue})]
        for other in list(call.ringing):
            pushes += self._withdraw(event.linkedid, other, "answered_elsewhere")
        return pushes

    def _hangup(self, event: Hangup) -> list[Push]:
        linkedid = event.linkedid
        call = self._calls.get(linkedid)
        if call is None:
            self._agent_of_leg.pop(event.uniqueid, None)
            return []
        if event.uniqueid != call.caller_uniqueid:
            self._agent_of_leg.pop(event.uniqueid, None)
            return []
        pushes: list[Push] = []
        for other in list(call.ringing):
            pushes += self._withdraw(linkedid, other, "caller_left")
        if call.connected:
            pushes.append(Push(call.connected, PushType.ENDED, linkedid, {}))
        del self._calls[linkedid]
        return pushes


_E = TypeVar("_E", bound=TypedEvent)
_Handler = Callable[[PopTracker, Any], list[Push]]


def _route(
    cls: type[_E], handler: Callable[[PopTracker, _E], list[Push]]
) -> tuple[type[TypedEvent], _Handler]:
    """One dispatch entry; the type variable checks that the handler takes ``cls``."""
    return cls, handler


# One dispatch table, keyed by the typed event (hotline.ami.typed) each handler takes.
_HANDLERS: Final[dict[type[TypedEvent], _Handler]] = dict(
    [
        _route(AgentCalled, PopTracker._agent_called),
        _route(AgentRingNoAnswer, PopTracker._ring_no_answer),
        _route(DialEnd, PopTracker._dial_end),
        _route(AgentConnect, PopTracker._agent_connect),
        _route(Hangup, PopTracker._hangup),
    ]
)
_NAMES: Final = frozenset(cls.EVENT for cls in _HANDLERS)
