"""Catching up after the AMI link came back: the ``QueueStatus`` mark and sweep.

While the link was down Asterisk went on without us, so after every login the bridge asks
for ``QueueStatus`` and hands the reply to :meth:`LiveState.apply_queue_status
<hotline.live.state.LiveState.apply_queue_status>`. The reply is the truth for the queues
it lists: their waiting callers and members are rebuilt from it, and whatever it does not
list is dropped *without counting an outcome* (what happened to those callers while we
were away is for the call log's resync to decide; see ``HotlineResync`` in
:mod:`hotline.live.state`). Today's counters are kept: Asterisk's ``Completed`` and
``Abandoned`` count since its last reset, not per day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline.ami.events import AMIEvent
from hotline.ami.typed import QueueEntry, QueueMember, QueueParams
from hotline.live.changes import Change
from hotline.live.members import Roster
from hotline.live.model import GARBAGE, Caller, Queue, QueueSettings, SkipReason

__all__ = ["apply_queue_status"]


@dataclass(slots=True)
class _Listed:
    """What the reply lists for one queue, keyed as the live state keys them."""

    members: dict[str, QueueMember] = field(default_factory=dict)
    entries: dict[str, QueueEntry] = field(default_factory=dict)


def apply_queue_status(roster: Roster, items: list[AMIEvent], now: float, complete: bool) -> None:
    """Mark what the reply lists, then sweep the rest (of every queue when ``complete``).

    ``complete`` means an unfiltered ``QueueStatus``: a queue absent from it has no
    callers and no members. The agents' states are recomputed at ``now`` afterwards, but
    the changes are not returned one by one: the caller pushes a whole snapshot.
    """
    book = roster.book
    listed = _read(roster, items)
    sweep = book.queues if complete else {n: book.queues[n] for n in listed}
    for name, queue in sweep.items():
        found = listed.get(name) or _Listed()
        for uniqueid in [u for u in queue.callers if u not in found.entries]:
            del queue.callers[uniqueid]
        for key, entry in found.entries.items():
            _adopt(queue, key, entry, now)
        for interface in [i for i in queue.members if i not in found.members]:
            queue.members.discard(interface)
            agent = roster.agents.get(interface)
            if agent is not None:
                agent.queues.pop(name, None)
        for interface, member in found.members.items():
            # The reply spells the member Location/Name, the events Interface/MemberName.
            agent = roster.agent(interface, member.name or member.member_name, now)
            roster.update_member(agent, queue, member)
    scratch: list[Change] = []
    for agent in roster.agents.values():
        roster.refresh(agent, now, scratch)


def _read(roster: Roster, items: list[AMIEvent]) -> dict[str, _Listed]:
    """The reply's items by queue; ``QueueParams`` sets an unconfigured queue's T."""
    book, skip = roster.book, roster.counters.skip
    listed: dict[str, _Listed] = {}
    for item in items:
        typed = item.typed
        if not isinstance(typed, QueueParams | QueueMember | QueueEntry):
            continue
        name = typed.queue
        if name in GARBAGE:
            skip(SkipReason.NO_QUEUE)
            continue
        found = listed.setdefault(name, _Listed())
        queue = book.queue(name)
        if isinstance(typed, QueueParams):
            level = typed.service_level
            if name not in book.configured and level:
                default = book.default
                queue.settings = QueueSettings(level, default.target, default.wrapup_seconds)
        elif isinstance(typed, QueueMember):
            interface = typed.location or typed.interface
            if interface in GARBAGE:
                skip(SkipReason.NO_MEMBER)
                continue
            found.members[interface] = typed
        else:
            key = typed.uniqueid or typed.channel
            if key in GARBAGE:
                skip(SkipReason.NO_UNIQUEID)
                continue
            found.entries[key] = typed
    return listed


def _adopt(queue: Queue, key: str, entry: QueueEntry, now: float) -> None:
    """A listed caller: a known one keeps its join time, an unknown one joined ``Wait`` ago."""
    position = len(queue.callers) + 1 if entry.position is None else entry.position
    caller = queue.callers.get(key)
    if caller is not None:
        caller.position = position
        return
    number = entry.caller_id_num or entry.caller_id
    queue.callers[key] = Caller(
        uniqueid=key,
        linkedid=key,  # QueueEntry carries no Linkedid; the caller leg's is its own
        queue=queue.name,
        position=position,
        joined_at=None if entry.wait is None else now - entry.wait,
        number="" if number in GARBAGE else number,
        name="" if entry.caller_id_name in GARBAGE else entry.caller_id_name,
        customer_id=None,
    )
