"""One call's final row from Asterisk's own record: CEL rows and queue_log lines in, a
:class:`CallRecord` out (sans-I/O, no clock, no database).

The reconciler settles from here the calls whose AMI events the live tracker missed,
and the two must agree call for call (docs/call-log.md). So this module does not
restate the tracker's rules: it reads each CEL row and queue_log line as the AMI event
Asterisk sent for the same moment (``CHAN_START`` is a ``Newchannel``, ``ANSWER`` a
``Newstate`` to Up, a ``Queue`` application's start a ``QueueCallerJoin``, a
``CONNECT`` line an ``AgentConnect``, the dialplan's ``CELGenUserEvent(QueueResult,…)``
its ``UserEvent(QueueResult,…)``…) and feeds them, in the order Asterisk wrote them,
to a fresh :class:`~hotline.calls.tracker.CallTracker`. Legs, merges of bridged calls,
waits, talk times and the outcome (:func:`hotline.calls.outcomes.unanswered`, the one
rule) are then the tracker's own. That translation is :mod:`hotline.record.replay`; this
module decides which rows make one replay and settles what comes out of it.

Where the two sources differ in what they can know:

* times come from CEL (microseconds), stamped by Asterisk a few milliseconds apart
  from the AMI events they stand for; queue_log lines have whole seconds, so they say
  *what* happened (who answered, the talk time Asterisk counted) and CEL *when*
  (the caller's bridge with the agent, the agent's hangup);
* the ``DIALECT`` channel variable the tracker reads at the queue join is not in CEL:
  it is taken from the dialplan's ``QueueResult`` (``dialect=``) when the dialplan
  writes it, else from the IVR's last say (``CustomerIdentified``, ``dialect:`` step).

Beyond the tracker, the record also knows when a call was cut by Asterisk itself:

* no ``LINKEDID_END`` and Asterisk started since the call's last row: a crash (or a
  shutdown that lost the end) cut it, ``end_reason="asterisk_crash"``
  (``"asterisk_shutdown"`` when ``shutdown_at`` says a shutdown began after it came);
* a caller line hung up with no source and no cause (what ``core stop`` does to every
  channel, docs/asterisk-record.md), or at/after ``shutdown_at`` with no source:
  ``end_reason="asterisk_shutdown"``.

Such a call is ``failed``, never an abandon; an answered call stays answered (the agent
talked to the customer), with the reason noted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hotline.calls.records import (
    ASTERISK_CRASH,
    ASTERISK_SHUTDOWN,
    CallRecord,
    Outcome,
    SettledBy,
)
from hotline.record.cel_calls import CallerCall, caller_calls, hangup_facts, last_time
from hotline.record.entries import CelEvent, QueueLogEntry
from hotline.record.replay import Replay

__all__ = ["CRASH", "SHUTDOWN", "classify", "classify_calls"]

CRASH = ASTERISK_CRASH  # the end reasons are the call log's (hotline.calls.records)
SHUTDOWN = ASTERISK_SHUTDOWN

_SHUTDOWN_SLACK = 1.0  # s: a hangup this close before ``shutdown_at`` is the shutdown's


def _cut_by_shutdown(rows: Sequence[CelEvent], caller: str, shutdown_at: float | None) -> bool:
    """The caller's line was hung up by Asterisk stopping, not by anyone on the call.

    Every party that ends a call names itself in the ``HANGUP`` row's source (the
    caller's or the agent's channel, ``dialplan/builtin`` for ``Hangup()``);
    ``core stop`` soft-hangs every channel up and names nobody, with no cause
    (docs/asterisk-record.md). ``shutdown_at``, when known, confirms it by time.
    """
    hangup = next(
        (r for r in reversed(rows) if r.uniqueid == caller and r.eventtype == "HANGUP"), None
    )
    if hangup is None:
        return False
    facts = hangup_facts(hangup)
    if facts.source:
        return False
    if shutdown_at is not None:
        return hangup.eventtime >= shutdown_at - _SHUTDOWN_SLACK
    return facts.cause in (None, 0)


def _settle(
    call: CallerCall,
    replay: Replay,
    *,
    over: bool,
    restarted: bool,
    shutdown_at: float | None,
) -> CallRecord | None:
    record = replay.finals.get(call.linkedid)
    if record is None:
        return None
    cut: str | None = None
    if record.merged_into is None:
        if not over:
            if not restarted:
                return None
            arrived = record.arrived_at if record.arrived_at is not None else 0.0
            cut = SHUTDOWN if shutdown_at is not None and shutdown_at >= arrived else CRASH
        elif _cut_by_shutdown(call.rows, call.linkedid, shutdown_at):
            cut = SHUTDOWN
    record.settled_by = SettledBy.RECONCILED
    if cut is not None:
        record.end_reason = cut
        if record.outcome is not Outcome.ANSWERED:
            record.outcome = Outcome.FAILED
    return record


def _classify_group(
    call: CallerCall,
    queue_log: Sequence[QueueLogEntry],
    *,
    short_abandon_seconds: float,
    region: str,
    default_dialect: str | None,
    asterisk_started_at: float | None,
    shutdown_at: float | None,
    callers: Sequence[CallerCall],
) -> dict[str, CallRecord | None]:
    rows = call.rows
    replay = Replay(
        rows,
        queue_log,
        region=region,
        short_abandon_seconds=short_abandon_seconds,
        default_dialect=default_dialect,
    )
    replay.run()
    ends = {row.linkedid: row.eventtime for row in rows if row.eventtype == "LINKEDID_END"}
    last = last_time(rows)
    restarted = asterisk_started_at is not None and asterisk_started_at > last
    for caller in callers:  # over, but a hangup row is missing: close it there
        at = ends.get(caller.linkedid)
        if at is not None and caller.linkedid not in replay.finals:
            replay.hang_up_all(at, caller.linkedid)
    if restarted:
        replay.hang_up_all(last)
    return {
        other.linkedid: _settle(
            other,
            replay,
            over=other.linkedid in ends,
            restarted=restarted,
            shutdown_at=shutdown_at,
        )
        for other in callers
    }


def classify_calls(
    cel: Iterable[CelEvent],
    queue_log: Sequence[QueueLogEntry],
    *,
    short_abandon_seconds: float,
    region: str = "CN",
    default_dialect: str | None = None,
    asterisk_started_at: float | None = None,
    shutdown_at: float | None = None,
) -> dict[str, CallRecord | None]:
    """Every caller call among the rows (:func:`~hotline.record.cel_calls.caller_calls`)
    with its final record, or None while the record says it is not over."""
    groups: dict[tuple[int, ...], list[CallerCall]] = {}
    for call in caller_calls(cel):
        groups.setdefault(tuple(row.id for row in call.rows), []).append(call)
    out: dict[str, CallRecord | None] = {}
    for members in groups.values():
        out.update(
            _classify_group(
                members[0],
                queue_log,
                short_abandon_seconds=short_abandon_seconds,
                region=region,
                default_dialect=default_dialect,
                asterisk_started_at=asterisk_started_at,
                shutdown_at=shutdown_at,
                callers=members,
            )
        )
    return out


def classify(
    cel: Sequence[CelEvent],
    queue_log: Sequence[QueueLogEntry],
    *,
    short_abandon_seconds: float,
    region: str = "CN",
    default_dialect: str | None = None,
    asterisk_started_at: float | None = None,
    shutdown_at: float | None = None,
    linkedid: str | None = None,
) -> CallRecord | None:
    """The final record of one caller call, settled ``reconciled``; None while not over.

    ``cel``: the call's rows (its Linkedid's, and its channels' under other Linkedids:
    :func:`hotline.record.store.cel_for`); ``queue_log``: the lines of its channels
    (callid is the Uniqueid of the channel that ran ``Queue()``). ``linkedid`` names the
    call when the rows hold more than one caller call (a call merged into another);
    by default the oldest. None also when the rows hold no caller channel.
    ``default_dialect``: the dialplan's ``DIALECT`` before the IVR sets it (the
    ``DEFAULT_QUEUE`` global, settings' default queue), which CEL cannot show.
    """
    callers = caller_calls(cel)
    call = next((c for c in callers if c.linkedid == linkedid), None) if linkedid else None
    if call is None:
        if linkedid is not None or not callers:
            return None
        call = callers[0]
    members = [c for c in callers if c.rows == call.rows]
    found = _classify_group(
        call,
        queue_log,
        short_abandon_seconds=short_abandon_seconds,
        region=region,
        default_dialect=default_dialect,
        asterisk_started_at=asterisk_started_at,
        shutdown_at=shutdown_at,
        callers=members,
    )
    return found.get(call.linkedid)
