"""Which caller calls a set of CEL rows forms, and what one row says (sans-I/O).

The live tracker writes one call-log row per Linkedid whose *caller* channel it saw
(the channel whose Uniqueid is its Linkedid, docs/call-log.md). When two calls are
bridged (a transfer, a pickup, a supervisor bridging a waiting caller into an agent's
call) Asterisk copies the older Linkedid onto the younger call's channels; the tracker
then closes the younger call's row with ``merged_into`` and carries on with the older
one (:mod:`hotline.calls.book`). CEL shows the same thing: a channel's rows change
Linkedid, and the younger Linkedid gets its own ``LINKEDID_END`` when its last channel
moves away.

So the rows to read a call from are those of every channel connected to it through a
shared Linkedid: :func:`caller_calls` groups any rows fetched (by Linkedid, by channel)
that way, and names the caller calls among them, each of which gets a row.

The helpers below read a single row: a ``USER_DEFINED`` row's fields (what the dialplan
and the IVR wrote with ``CELGenUserEvent``), a ``HANGUP`` row's cause and source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from hotline.record.entries import CelEvent

__all__ = [
    "USER_DEFINED",
    "CallerCall",
    "HangupFacts",
    "caller_calls",
    "hangup_facts",
    "is_user_event",
    "last_time",
    "linkedid_order",
    "member_interface",
    "ordered",
    "user_fields",
]

USER_DEFINED = "USER_DEFINED"


@dataclass(frozen=True, slots=True)
class CallerCall:
    """One caller call among the rows: its key and the rows to classify it from.

    ``rows`` are every row of every channel connected to it (its own channels, those of
    calls merged into it or it merged into), in the order Asterisk wrote them: the
    tracker needs all of them to tell where a merged channel's part belongs.
    """

    linkedid: str
    rows: tuple[CelEvent, ...]


@dataclass(frozen=True, slots=True)
class HangupFacts:
    """A ``HANGUP`` row's extra: Q.850 cause and who asked for the hangup."""

    cause: int | None
    source: str  # a channel name, "dialplan/builtin", or "" when nothing named set it
    dialstatus: str


def ordered(cel: Iterable[CelEvent]) -> list[CelEvent]:
    """The rows once each, in the order Asterisk wrote them (the table's id)."""
    return sorted({event.id: event for event in cel}.values(), key=lambda e: e.id)


def linkedid_order(linkedid: str) -> tuple[float, int]:
    """Asterisk's own age order of ids (``<epoch>.<sequence>``): older sorts first."""
    head, _, tail = linkedid.partition(".")
    try:
        return float(head), int(tail) if tail.isdigit() else 0
    except ValueError:
        return float("inf"), 0


def caller_calls(cel: Iterable[CelEvent]) -> list[CallerCall]:
    """The caller calls the rows hold, oldest first, each with its connected rows.

    A caller call is a channel whose first row (``CHAN_START``) has its own Uniqueid as
    Linkedid: exactly the calls the live tracker opens a row for. A consult or
    originated call that was bridged into a customer's call is one of them too (the
    tracker closes it with ``merged_into``); a channel created by the call (an agent's
    leg, a Local channel) is not.
    """
    rows = ordered(cel)
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while node != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    first: dict[str, CelEvent] = {}
    for event in rows:
        if not event.uniqueid or not event.linkedid:
            continue
        a, b = find("u" + event.uniqueid), find("l" + event.linkedid)
        if a != b:
            parent[a] = b
        if event.eventtype != "LINKEDID_END":
            known = first.get(event.uniqueid)
            if known is None or (
                event.eventtype == "CHAN_START" and known.eventtype != "CHAN_START"
            ):
                first[event.uniqueid] = event
    groups: dict[str, list[CelEvent]] = {}
    for event in rows:
        if event.uniqueid and event.linkedid:
            groups.setdefault(find("u" + event.uniqueid), []).append(event)
    callers = sorted(
        (uid for uid, event in first.items() if event.linkedid == uid),
        key=lambda uid: (first[uid].eventtime, linkedid_order(uid)),
    )
    return [CallerCall(uid, tuple(groups[find("u" + uid)])) for uid in callers]


def is_user_event(event: CelEvent) -> bool:
    """A ``CELGenUserEvent`` row, whichever way the backend spelled it.

    cel_pgsql with ``show_user_defined`` writes ``USER_DEFINED`` and the name in
    ``userdeftype``; cel_custom's ``eventtype`` is the name itself (``eventenum`` is
    ``USER_DEFINED``).
    """
    return event.eventtype == USER_DEFINED or (
        bool(event.userdeftype) and event.eventtype == event.userdeftype
    )


def user_fields(event: CelEvent) -> dict[str, str]:
    """A user event's fields, keys lower-cased: its text is form-encoded ``key=value&…``.

    Asterisk stores ``CELGenUserEvent(name,text)``'s text as ``{"extra":"<text>"}``; a
    backend or an ingester may also hand the bare text. The dialplan writes lower-case
    keys and the IVR the AMI header spelling (``Step``, ``CustomerID``), hence the
    lower-casing. Never raises: garbage gives ``{}``.
    """
    text = event.extra
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            return {}
        inner = loaded.get("extra", "") if isinstance(loaded, dict) else ""
        text = inner if isinstance(inner, str) else ""
    try:
        pairs = parse_qsl(text, keep_blank_values=True)
    except ValueError:
        return {}
    return {key.strip().lower(): value.strip() for key, value in pairs}


def hangup_facts(event: CelEvent) -> HangupFacts:
    """What a ``HANGUP`` row's JSON extra says; unknowns are ``None``/``""``."""
    try:
        loaded = json.loads(event.extra) if event.extra else {}
    except ValueError:
        loaded = {}
    if not isinstance(loaded, dict):
        loaded = {}
    cause = loaded.get("hangupcause")
    source = loaded.get("hangupsource")
    dialstatus = loaded.get("dialstatus")
    return HangupFacts(
        cause=cause if isinstance(cause, int) and not isinstance(cause, bool) else None,
        source=source if isinstance(source, str) else "",
        dialstatus=dialstatus if isinstance(dialstatus, str) else "",
    )


def member_interface(channel: str) -> str | None:
    """``PJSIP/agent-1001-0000002a`` → ``PJSIP/agent-1001``: a member's channel to its
    interface, as ``AgentConnect`` names it. None when the name has no channel suffix."""
    head, sep, tail = channel.rpartition("-")
    if sep and head and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail):
        return head
    return None


def last_time(rows: Sequence[CelEvent]) -> float:
    """The latest ``eventtime`` among the rows (they are in id order, not time order)."""
    return max(event.eventtime for event in rows)
