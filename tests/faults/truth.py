"""What really happened to each call, from Asterisk's own queue_log, and the verdict on the
call log against it (pure: lines and rows in, values out).

The truth never comes from Hotline's own record-keeping: it is app_queue's ``queue_log``
file (parsed by the one parser, :mod:`hotline.record.entries`), the fates the suite
knows it gave (an IVR-only call never queues) and the channels Asterisk showed live at
the moment of an Asterisk stop or crash (those calls were cut by the system). The
mapping of queue_log events to outcomes is the wallboard recount's
(:mod:`hotline.live.queue_log`) with the one unanswered-exit rule
(:mod:`hotline.calls.outcomes`).

queue_log waits are whole seconds (``time(NULL) - start``), so an abandon whose
queue_log wait is within a second of the short-abandon threshold may honestly be either
``abandoned`` or ``short_abandoned``; both are accepted there, and only there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hotline.calls.outcomes import unanswered
from hotline.record.entries import QueueLogEntry, parse_queue_log

_FINAL_UNANSWERED = {"ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY", "WITHDRAW"}
_OVERFLOW = {"EXITEMPTY", "EXITWITHKEY", "WITHDRAW", "FULL", "JOINEMPTY", "JOINUNAVAIL"}


@dataclass(frozen=True, slots=True)
class Expected:
    """One call's right row: any of ``outcomes``, and ``agent`` when answered."""

    number: str
    outcomes: frozenset[str]
    agent: str | None = None
    cut: bool = False  # cut by an Asterisk stop/crash: the row must say why (end_reason)
    linkedid: str | None = None

    def accepts(self, row: Mapping[str, object]) -> bool:
        if row.get("outcome") not in self.outcomes:
            return False
        answered = row.get("outcome") == "answered"
        if answered and self.agent is not None and str(row.get("agent") or "") != self.agent:
            return False
        if self.cut and row.get("outcome") != "answered":
            return bool(row.get("end_reason"))
        return True

    def describe(self) -> str:
        text = "|".join(sorted(self.outcomes))
        if self.agent:
            text += f" by {self.agent}"
        return text + (" (cut, end_reason)" if self.cut else "")


def read_queue_log(lines: Iterable[str]) -> dict[str, list[QueueLogEntry]]:
    """queue_log entries by callid (the caller channel's Uniqueid, i.e. the Linkedid)."""
    by_call: dict[str, list[QueueLogEntry]] = {}
    for entry in parse_queue_log(lines):
        if entry.callid in ("", "NONE", "MANAGER"):
            continue
        by_call.setdefault(entry.callid, []).append(entry)
    return by_call


def number_of(entries: Sequence[QueueLogEntry]) -> str:
    """The caller's number: ENTERQUEUE's data2 (``url|callerid``)."""
    for entry in entries:
        if entry.event == "ENTERQUEUE":
            return entry.field(2)
    return ""


def expected_from_queue_log(
    entries: Sequence[QueueLogEntry], short_abandon_seconds: float
) -> tuple[frozenset[str], str | None]:
    """Outcomes a queued call may rightly have, and its agent, from its queue_log lines.

    An answer anywhere wins (the first CONNECT's member); otherwise the last queue's exit
    decides, as in the call log. No exit line at all: still queued, or cut (the caller
    decides that from the live channels).
    """
    connect = next((e for e in entries if e.event == "CONNECT"), None)
    if connect is not None:
        return frozenset({"answered"}), connect.agent
    exits = [e for e in entries if e.event in _FINAL_UNANSWERED or e.event in _OVERFLOW]
    if not exits:
        return frozenset(), None
    last = exits[-1]
    if last.event == "EXITWITHTIMEOUT":
        return frozenset({"timeout"}), None
    if last.event in _OVERFLOW:
        return frozenset({"overflow"}), None
    wait = _seconds(last.field(3))
    outcomes = {str(unanswered(None, wait, short_abandon_seconds))}
    if wait is not None and abs(wait - short_abandon_seconds) <= 1.0:
        outcomes |= {"abandoned", "short_abandoned"}  # whole seconds: either side is honest
    return frozenset(outcomes), None


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(slots=True)
class Verdict:
    """The call log of one run against the truth."""

    placed: int = 0
    logged: int = 0
    right: int = 0
    stuck: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # "number: got X, want Y"
    settle_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.right == self.placed and not (
            self.stuck or self.missing or self.doubled or self.wrong
        )

    def counts(self) -> dict[str, object]:
        return {
            "placed": self.placed,
            "logged": self.logged,
            "right": self.right,
            "stuck": len(self.stuck),
            "missing": len(self.missing),
            "doubled": len(self.doubled),
            "wrong": len(self.wrong),
            "settle_s": None if self.settle_seconds is None else round(self.settle_seconds, 2),
        }

    def details(self, limit: int = 12) -> str:
        parts = []
        for name in ("missing", "doubled", "stuck", "wrong"):
            items: list[str] = getattr(self, name)
            if items:
                parts.append(f"{name}: " + "; ".join(items[:limit]))
        return "\n".join(parts)


def judge(expected: Sequence[Expected], rows: Sequence[Mapping[str, object]]) -> Verdict:
    """Each expected call against the rows holding its number (one row each, right)."""
    by_number: dict[str, list[Mapping[str, object]]] = {}
    for row in rows:
        number = str(row.get("caller_number") or "")
        by_number.setdefault(number, []).append(row)
    verdict = Verdict(placed=len(expected))
    for want in expected:
        got = by_number.get(want.number, [])
        if not got:
            verdict.missing.append(want.number)
            continue
        verdict.logged += 1
        if len(got) > 1:
            verdict.doubled.append(f"{want.number} x{len(got)}")
            continue
        row = got[0]
        if row.get("outcome") == "in_progress":
            verdict.stuck.append(want.number)
        elif want.accepts(row):
            verdict.right += 1
        else:
            verdict.wrong.append(
                f"{want.number}: got {row.get('outcome')}"
                f"{' by ' + str(row.get('agent')) if row.get('agent') else ''}"
                f"{' end_reason=' + str(row.get('end_reason')) if row.get('end_reason') else ''}"
                f" (settled_by={row.get('settled_by')}, linkedid={row.get('linkedid')})"
                f", want {want.describe()}"
            )
    return verdict
