"""The JSON-ready views the wallboard shows: one queue, one agent.

Pure functions of the state and a ``now``: they may run between two events (the
publisher takes them when it sends), and they never move an agent out of wrap-up, they
only show it out (:meth:`Roster.effective <hotline.live.members.Roster.effective>`).
``fresh`` is False once ``now`` is past the day the counters belong to: the view then
shows a new day's zeros before any event has rolled the day over. The formulas are the
ones in docs/wallboard.md (Metrics). Ratios are None, not 0, when nothing was counted yet.
"""

from __future__ import annotations

from typing import Any

from hotline.calls.records import Outcome
from hotline.live.members import Roster
from hotline.live.model import AgentState, Tally, ratio

__all__ = ["agent_view", "queue_view", "tally_dict"]


def tally_dict(tally: Tally) -> dict[str, Any]:
    return {
        "counts": {str(k): v for k, v in tally.counts.items()},
        "answered_within_sl": tally.answered_in_sl,
        "abandoned_within_sl": tally.abandoned_in_sl,
        "answered_wait_seconds": tally.answered_wait,
        "handled": tally.handled,
        "talk_seconds": tally.talk,
        "wrapup_seconds": tally.wrapup,
    }


def queue_view(roster: Roster, name: str, now: float, *, fresh: bool) -> dict[str, Any] | None:
    """Waiting callers, today's counts and rates, and the members by state."""
    queue = roster.book.queues.get(name)
    if queue is None:
        return None
    settings = queue.settings
    today = queue.today if fresh else Tally()
    counts = today.counts
    answered = counts[Outcome.ANSWERED]
    abandoned = counts[Outcome.ABANDONED]
    offered = answered + abandoned + counts[Outcome.TIMEOUT] + counts[Outcome.OVERFLOW]
    waiting = sorted(queue.callers.values(), key=lambda c: c.position)
    waits = [max(0.0, now - c.joined_at) for c in waiting if c.joined_at is not None]
    service_level = ratio(today.answered_in_sl, answered)
    by_state = dict.fromkeys((str(s) for s in AgentState), 0)
    for interface in queue.members:
        agent = roster.agents.get(interface)
        if agent is not None:
            by_state[str(roster.effective(agent, now)[0])] += 1
    return {
        "name": name,
        "service_level_seconds": settings.service_level_seconds,
        "target": settings.target,
        "waiting": [
            {
                "uniqueid": c.uniqueid,
                "linkedid": c.linkedid,
                "position": c.position,
                "wait": None if c.joined_at is None else max(0.0, now - c.joined_at),
                "caller_number": c.number,
                "caller_name": c.name,
                "customer_id": c.customer_id,
            }
            for c in waiting
        ],
        "waiting_count": len(waiting),
        "longest_wait": max(waits, default=0.0),
        "counts": {str(k): v for k, v in counts.items()},
        "answered_within_sl": today.answered_in_sl,
        "abandoned_within_sl": today.abandoned_in_sl,
        "service_level": service_level,
        "service_level2": ratio(today.answered_in_sl + today.abandoned_in_sl, answered + abandoned),
        "meets_target": None if service_level is None else service_level >= settings.target,
        "asa": ratio(today.answered_wait, answered),
        "handled": today.handled,
        "aht": ratio(today.talk + today.wrapup, today.handled),
        "abandon_rate": ratio(abandoned, offered),
        "agents": by_state,
        "totals": tally_dict(queue.total),
    }


def agent_view(roster: Roster, interface: str, now: float, *, fresh: bool) -> dict[str, Any] | None:
    """State (with the pause reason), time in it, and today's calls handled and AHT."""
    agent = roster.agents.get(interface)
    if agent is None:
        return None
    state, since = roster.effective(agent, now)
    today = agent.today if fresh else Tally()
    return {
        "interface": interface,
        "name": agent.name,
        "state": str(state),
        "reason": roster.pause_reason(agent)
        if state in (AgentState.PAUSED, AgentState.WRAP_UP)
        else None,
        "since": since,
        "time_in_state": max(0.0, now - since),
        "queues": sorted(agent.queues),
        "on_call_with": agent.call_uniqueid,
        "handled": today.handled,
        "talk_seconds": today.talk,
        "wrapup_seconds": today.wrapup,
        "aht": ratio(today.talk + today.wrapup, today.handled),
        "totals": tally_dict(agent.total),
    }
