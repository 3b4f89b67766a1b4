"""Agents: queue membership, device state, pause, calls handled and wrap-up.

Per-agent state is derived, not stored as a transition table: Asterisk reports device
state, ``InCall`` and per-queue pause separately and not always in the same order, so the
state is recomputed from those facts after every event (:meth:`Roster.derive`). Wrap-up is
the one timed state: Asterisk's ``wrapuptime`` window ends without an event, so
:meth:`Roster.tick` and the views look at the clock for it, and the time spent in it is
charged to AHT when the state changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from hotline.ami.typed import (
    AgentCalled,
    AgentComplete,
    AgentConnect,
    AgentEvent,
    AgentRingNoAnswer,
    MemberEvent,
    QueueMemberRemoved,
)
from hotline.live.changes import AgentUpdated, Change, QueueUpdated, emit
from hotline.live.model import (
    GARBAGE,
    Agent,
    AgentState,
    Counters,
    Device,
    Membership,
    Queue,
    SkipReason,
    Tally,
)
from hotline.live.queues import QueueBook

__all__ = ["Roster"]

_ON_CALL = frozenset({Device.INUSE, Device.BUSY, Device.RINGINUSE, Device.ONHOLD})
_OFFLINE = frozenset({Device.INVALID, Device.UNAVAILABLE})


class Roster:
    """The agents, by interface, with their memberships and today's figures."""

    def __init__(
        self, counters: Counters, book: QueueBook, *, wrapup_pause_reasons: Iterable[str]
    ) -> None:
        self.counters = counters
        self.book = book
        self.wrapup_pause_reasons = frozenset(r.lower() for r in wrapup_pause_reasons)
        self.agents: dict[str, Agent] = {}

    def agent(self, interface: str, name: str, t: float) -> Agent:
        """The agent on ``interface``, created (logged out) on first sight; renamed if named."""
        agent = self.agents.get(interface)
        if agent is None:
            agent = self.agents[interface] = Agent(interface, name or interface, t)
        elif name and name not in GARBAGE:
            agent.name = name
        return agent

    def new_day(self) -> None:
        """Forget agents in no queue; start everyone's day at zero."""
        for interface in [i for i, a in self.agents.items() if not a.queues]:
            del self.agents[interface]
        for agent in self.agents.values():
            agent.today = Tally()

    def tick(self, now: float, out: list[Change]) -> None:
        for agent in self.agents.values():
            if agent.wrapup_until is not None and agent.wrapup_until <= now:
                self.refresh(agent, now, out)

    # -- events ---------------------------------------------------------------------

    def _member(
        self, event: AgentEvent | MemberEvent, queue: str, t: float, *, member_of: bool = False
    ) -> Agent | None:
        """The agent an event names; ``member_of``: the event proves it is in ``queue``
        (AgentCalled/Connect/Complete), which matters when the stream began mid-day."""
        interface = event.interface or event.location
        name = event.member_name or event.name
        if interface in GARBAGE:
            self.counters.skip(SkipReason.NO_MEMBER)
            return None
        agent = self.agent(interface, name, t)
        if member_of and queue not in GARBAGE and queue not in agent.queues:
            agent.queues[queue] = Membership()
            self.book.queue(queue).members.add(interface)
        return agent

    def on_agent_called(self, event: AgentCalled, t: float, out: list[Change]) -> None:
        agent = self._member(event, event.queue, t, member_of=True)
        if agent is not None:
            agent.device = Device.RINGING  # QueueMemberStatus follows and confirms it
            self.refresh(agent, t, out)

    def on_ring_no_answer(self, event: AgentRingNoAnswer, t: float, out: list[Change]) -> None:
        agent = self._member(event, event.queue, t)
        if agent is not None:
            if agent.device == Device.RINGING:
                agent.device = Device.NOT_INUSE
            self.refresh(agent, t, out)

    def on_connect(self, event: AgentConnect, t: float, out: list[Change]) -> None:
        """``AgentConnect``: the queue counts an answer, the agent is on that call."""
        name, uniqueid = event.queue, event.uniqueid
        if name in GARBAGE:
            return self.counters.skip(SkipReason.NO_QUEUE)
        self.book.answer(name, uniqueid, event.hold_time, t, out)
        agent = self._member(event, name, t, member_of=True)
        if agent is not None:
            agent.call_queue = name
            agent.call_uniqueid = uniqueid or None
            agent.answered_at = t
            agent.after_call_queue = None  # any wrap-up of the previous call is over
            self.refresh(agent, t, out)

    def on_complete(self, event: AgentComplete, t: float, out: list[Change]) -> None:
        """``AgentComplete``: one call handled; its talk time, then the wrap-up window."""
        name = event.queue
        uniqueid = event.uniqueid or None
        talk_time = event.talk_time
        if name in GARBAGE:
            return self.counters.skip(SkipReason.NO_QUEUE)
        agent = self._member(event, name, t, member_of=True)
        if agent is None:
            return
        talk = None
        if agent.answered_at is not None and agent.call_uniqueid in (uniqueid, None):
            talk = t - agent.answered_at
        # TalkTime is whole seconds; keep the stamps' precision when they agree (tracker rule).
        if talk is None or (talk_time is not None and abs(talk - talk_time) > 1.0):
            talk = talk_time or 0.0
        queue = self.book.queue(name)
        for tally in (queue.today, queue.total, agent.today, agent.total):
            tally.handled += 1
            tally.talk += talk
        agent.call_queue = agent.call_uniqueid = agent.answered_at = None
        agent.after_call_queue = name
        membership = agent.queues.get(name)
        window = membership.wrapup if membership and membership.wrapup else 0.0
        window = window or queue.settings.wrapup_seconds
        agent.wrapup_until = t + window if window > 0 else None
        emit(out, QueueUpdated(name))
        emit(out, AgentUpdated(agent.interface))
        self.refresh(agent, t, out)

    def on_member(self, event: MemberEvent, t: float, out: list[Change]) -> None:
        """QueueMemberStatus/Added/Pause: per-queue membership plus device facts."""
        name = event.queue
        if name in GARBAGE:
            return self.counters.skip(SkipReason.NO_QUEUE)
        agent = self._member(event, name, t)
        if agent is None:
            return
        self.update_member(agent, self.book.queue(name), event)
        self.refresh(agent, t, out)
        emit(out, QueueUpdated(name))

    def on_member_removed(self, event: QueueMemberRemoved, t: float, out: list[Change]) -> None:
        name = event.queue
        agent = self._member(event, name, t)
        if agent is None:
            return
        agent.queues.pop(name, None)
        queue = self.book.queues.get(name)
        if queue is not None:
            queue.members.discard(agent.interface)
            emit(out, QueueUpdated(name))
        self.refresh(agent, t, out)

    def update_member(self, agent: Agent, queue: Queue, facts: MemberEvent) -> None:
        """Apply what was said of ``agent`` in ``queue``; what was not said stays.

        A ``QueueMember*`` event carries only some of the facts, and an absent one (``None``)
        must leave what we knew alone. ``device_state`` is -1 when present but unreadable,
        so that a bad one is counted as a skip rather than taken for ``UNKNOWN``.
        """
        membership = agent.queues.get(queue.name)
        if membership is None:
            membership = agent.queues[queue.name] = Membership()
        queue.members.add(agent.interface)
        if facts.paused is not None:
            membership.paused = facts.paused
            membership.reason = facts.paused_reason
        if facts.wrapup is not None:
            membership.wrapup = facts.wrapup
        if facts.device_state is not None:
            if 0 <= facts.device_state <= Device.ONHOLD:
                agent.device = Device(facts.device_state)
            else:
                self.counters.skip(SkipReason.BAD_FIELD)
        if facts.in_call is not None:
            agent.in_call = facts.in_call

    # -- state ----------------------------------------------------------------------

    def pause_reason(self, agent: Agent) -> str | None:
        reasons = [m.reason for m in agent.queues.values() if m.paused and m.reason]
        return reasons[0] if reasons else None

    def derive(self, agent: Agent, t: float) -> AgentState:
        """The state a supervisor should see, from the facts Asterisk reported."""
        if not agent.queues:
            return AgentState.LOGGED_OUT
        if agent.call_queue is not None or agent.in_call or agent.device in _ON_CALL:
            return AgentState.ON_CALL
        if agent.device == Device.RINGING:
            return AgentState.RINGING
        if agent.device in _OFFLINE:
            return AgentState.UNAVAILABLE
        if all(m.paused for m in agent.queues.values()):
            reason = (self.pause_reason(agent) or "").lower()
            return AgentState.WRAP_UP if reason in self.wrapup_pause_reasons else AgentState.PAUSED
        if agent.wrapup_until is not None and t < agent.wrapup_until:
            return AgentState.WRAP_UP
        return AgentState.AVAILABLE

    def effective(self, agent: Agent, now: float) -> tuple[AgentState, float]:
        """State and since at ``now`` without mutating: a wrap-up window may have ended."""
        if (
            agent.state is AgentState.WRAP_UP
            and agent.wrapup_until is not None
            and agent.wrapup_until <= now
        ):
            state = self.derive(agent, now)
            if state is not AgentState.WRAP_UP:
                return state, max(agent.since, agent.wrapup_until)
        return agent.state, agent.since

    def refresh(self, agent: Agent, t: float, out: list[Change]) -> None:
        """Recompute the agent's state; charge a finished wrap-up to AHT."""
        if agent.wrapup_until is not None and agent.wrapup_until <= t:
            end = agent.wrapup_until
            agent.wrapup_until = None
            if agent.state is AgentState.WRAP_UP:
                state = self.derive(agent, t)
                if state is not AgentState.WRAP_UP:  # a wrap-up pause carries on
                    self._change_state(agent, state, max(agent.since, end))
        state = self.derive(agent, t)
        if state is not agent.state:
            self._change_state(agent, state, t)
        emit(out, AgentUpdated(agent.interface))

    def _change_state(self, agent: Agent, state: AgentState, at: float) -> None:
        if agent.state is AgentState.WRAP_UP and agent.after_call_queue is not None:
            spent = max(0.0, at - agent.since)
            queue = self.book.queues.get(agent.after_call_queue)
            tallies = [agent.today, agent.total]
            if queue is not None:
                tallies += [queue.today, queue.total]
            for tally in tallies:
                tally.wrapup += spent
            agent.after_call_queue = None
        agent.state = state
        agent.since = at
