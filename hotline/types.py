"""The names every layer shares: call and channel ids, E.164 numbers, bus stream names.

This module sits at the bottom of the import graph (docs/architecture.md): it imports
nothing of Hotline's, so the database layer, the domain packages, the pages and the API
can all name a Linkedid or a stream without importing one another. A stream name is
spelled here once; a publisher and the socket that reads it cannot drift apart.
"""

from __future__ import annotations

from typing import Final, NewType

__all__ = [
    "E164",
    "NO_VALUE",
    "SNAPSHOT_KEY",
    "SUPERVISOR_STREAM",
    "Linkedid",
    "Uniqueid",
    "ack_stream",
    "agent_stream",
]

Linkedid = NewType("Linkedid", str)
"""Asterisk's id of the whole call: the Uniqueid of its first channel (docs/call-log.md)."""

Uniqueid = NewType("Uniqueid", str)
"""Asterisk's id of one channel (one leg of a call)."""

E164 = NewType("E164", str)
"""A phone number in E.164 (``+8613800138000``), as :func:`hotline.phones.to_e164` returns."""

NO_VALUE: Final = frozenset({"", "<unknown>", "<null>", "(null)", "<none>"})
"""What Asterisk writes in a header that has no value (caller id, connected line, …)."""

SUPERVISOR_STREAM: Final = "supervisor"
"""Live queue and agent state for ``/ws/supervisor``; readable by supervisors only."""

SNAPSHOT_KEY: Final = "live:snapshot"
"""The latest live snapshot, under the bus's key prefix (e.g. ``hotline:live:snapshot``)."""


def agent_stream(agent_id: str) -> str:
    """One agent's pops and call events; ``/ws/agent`` opens only the caller's own."""
    return f"agent:{agent_id}"


def ack_stream(linkedid: str) -> str:
    """Where the agent's page acknowledges a screen-pop; the pre-dial step waits on it."""
    return f"ack:{linkedid}"
