"""One fault run: place the calls on a timeline, strike, wait for the calls to end, and judge
the call log against Asterisk's queue_log until it is right or the bound has passed.

The clock of a run starts when the first call is placed (``run.at(seconds)`` waits for a
point of it). The time to settle is measured from the moment the last of the run's calls
ended in Asterisk (no live channel carries any of its numbers), or from the end of the
fault when that is later: a row cannot be settled by a process that is not running.
Each run prints one summary line and appends it, as JSON, to the results file
(``HOTLINE_FAULTS_RESULTS``) that docs/reliability.md's table is filled from.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from dialplans.config import LabConfig
from dialplans.sipp import CallSpec, SippRun, start_calls
from tests.faults.ami_probe import AMIProbe
from tests.faults.calls import Planned
from tests.faults.harness import Serve, tree_label
from tests.faults.truth import (
    Expected,
    Verdict,
    expected_from_queue_log,
    judge,
    number_of,
    read_queue_log,
)

SETTLE_BOUND = float(os.environ.get("HOTLINE_FAULTS_SETTLE", "30"))
CALLS_END_BOUND = 120.0  # seconds after the last placement for every call to be over
RESULTS = Path(os.environ.get("HOTLINE_FAULTS_RESULTS", "/tmp/hotline-faults/results.jsonl"))
SUMMARIES: list[str] = []  # printed again at the end of the session (conftest)


@dataclass
class FaultRun:
    """The state of one fault run; made by the ``fault_run`` fixture."""

    name: str
    lab: LabConfig
    serve: Serve
    probe: AMIProbe
    database_url: str  # straight to PostgreSQL, never through the proxy
    queue_log: Path
    short_abandon_seconds: float = 5.0
    planned: list[Planned] = field(default_factory=list)
    runs: list[SippRun] = field(default_factory=list)
    cut_numbers: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    fault_over: float = 0.0
    _log_offset: int = 0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._log_offset = self.queue_log.stat().st_size if self.queue_log.exists() else 0

    # -- the timeline ---------------------------------------------------------------------
    def place(self, planned: Sequence[Planned], *, rate: float = 10.0) -> None:
        """Schedule ``planned`` calls; calls with the same start, hold and extension go in
        one SIPp run at ``rate`` per second."""
        if self.started is None:
            self.started = time.monotonic()
        self.planned.extend(planned)
        groups: dict[tuple[float, float, str], list[Planned]] = {}
        for call in planned:
            groups.setdefault((call.at, call.hold, call.exten), []).append(call)
        for (at, hold, exten), calls in groups.items():
            self._tasks.append(asyncio.create_task(self._start(at, hold, exten, calls, rate)))

    def place_stream(self, planned: Sequence[Planned], *, rate: float) -> None:
        """Schedule ``planned`` (one hold and extension) as one SIPp run at ``rate`` per
        second from the first call's start: the load test's streams."""
        if self.started is None:
            self.started = time.monotonic()
        first = planned[0]
        self.planned.extend(planned)
        task = self._start(first.at, first.hold, first.exten, list(planned), rate)
        self._tasks.append(asyncio.create_task(task))

    async def _start(
        self, at: float, hold: float, exten: str, calls: list[Planned], rate: float
    ) -> None:
        await self.at(at)
        specs = [
            CallSpec(c.number, f"fault {c.intent}", queue=c.queue, queue_timeout=c.queue_timeout)
            for c in calls
        ]
        run = await asyncio.to_thread(
            start_calls, specs, self.lab, hold_seconds=hold, exten=exten, rate=rate
        )
        self.runs.append(run)

    async def at(self, seconds: float) -> None:
        """Wait until ``seconds`` after the run's clock started."""
        assert self.started is not None, "place calls first"
        delay = self.started + seconds - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def now(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    async def outage(self, seconds: float) -> None:
        """The fault's own length: a fixed duration by definition, not a guess at an event."""
        await asyncio.sleep(seconds)

    async def strike(self, *, cut: bool = False) -> None:
        """The fault strikes now: note how many of the run's calls are live (for the
        summary) and, before an Asterisk stop or crash (``cut``), which: the system cuts
        those, so their right outcome is ``failed`` with a reason unless answered."""
        mine = {c.number for c in self.planned}
        channels = await asyncio.to_thread(self.probe.live_channels)
        live = {
            number
            for ch in channels
            for number in (ch.caller_number, ch.connected_number)
            if number in mine
        }
        self.extra["live_at_fault"] = len(live)
        if cut:
            self.cut_numbers = live

    def end_fault(self) -> None:
        self.fault_over = time.monotonic()

    # -- the verdict ----------------------------------------------------------------------
    async def calls_ended(self) -> float:
        """Wait until every call is placed and over in Asterisk; returns when it was seen."""
        await asyncio.gather(*self._tasks)
        mine = {c.number for c in self.planned}
        deadline = time.monotonic() + CALLS_END_BOUND
        ended: float | None = None
        while time.monotonic() < deadline:
            try:
                channels = await asyncio.to_thread(self.probe.live_channels)
            except (OSError, TimeoutError):
                channels = None  # Asterisk restarting: ask again
            live = channels is None or any(
                ch.caller_number in mine or ch.connected_number in mine for ch in channels
            )
            if not live:
                ended = ended or time.monotonic()
                if all(r.proc.poll() is not None for r in self.runs):
                    return ended
                if self.cut_numbers and time.monotonic() - ended > 2.0:
                    # After a crash the callers' SIPp wait for a BYE that never comes:
                    # Asterisk has had none of their channels for 2 s, so they are over.
                    for run in self.runs:
                        run.stop()
                    return ended
            else:
                ended = None
            await asyncio.sleep(0.25)
        for run in self.runs:
            run.stop()
        if ended is None:
            raise AssertionError(f"{self.name}: calls still live {CALLS_END_BOUND:.0f} s on")
        return ended

    def expected(self) -> list[Expected]:
        with open(self.queue_log, errors="replace") as fh:
            fh.seek(self._log_offset)
            by_call = read_queue_log(fh)
        by_number = {number_of(entries): (callid, entries) for callid, entries in by_call.items()}
        expected = []
        for call in self.planned:
            cut = call.number in self.cut_numbers
            callid, entries = by_number.get(call.number, (None, []))
            outcomes, agent = expected_from_queue_log(entries, self.short_abandon_seconds)
            if cut and "answered" not in outcomes:
                outcomes = frozenset({"failed"})  # the system dropped it: not an abandon
            elif not entries:
                outcomes = frozenset({"ivr_only"})
            expected.append(Expected(call.number, outcomes, agent, cut, callid))
        return expected

    def rows(self) -> list[Mapping[str, object]]:
        numbers = [c.number for c in self.planned]
        e164 = ["+86" + n for n in numbers]
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                result = conn.execute(
                    text(
                        "SELECT * FROM call_logs WHERE caller_number = ANY(:n) "
                        "OR caller_e164 = ANY(:e)"
                    ),
                    {"n": numbers, "e": e164},
                )
                rows = [dict(r._mapping) for r in result]
        finally:
            engine.dispose()
        for row in rows:  # one key per call: the national number as placed
            e = str(row.get("caller_e164") or "")
            if e.startswith("+86") and e[3:] in numbers:
                row["caller_number"] = e[3:]
        return rows

    async def settle(self) -> Verdict:
        """Poll the call log until it is right or ``SETTLE_BOUND`` has passed; record it."""
        ended = await self.calls_ended()
        since = max(ended, self.fault_over)
        expected = self.expected()
        deadline = since + SETTLE_BOUND
        while True:
            rows = await asyncio.to_thread(self.rows)
            verdict = judge(expected, rows)
            if verdict.ok:
                verdict.settle_seconds = max(0.0, time.monotonic() - since)
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        if not verdict.ok:
            self._keep_evidence(expected, rows)
        self._record(verdict)
        return verdict

    def _keep_evidence(
        self, expected: Sequence[Expected], rows: Sequence[Mapping[str, object]]
    ) -> None:
        """The test's database is dropped when it ends: keep what the verdict saw (each
        call's expected outcomes, its row, its queue_log lines) next to the serve log."""
        with open(self.queue_log, errors="replace") as fh:
            fh.seek(self._log_offset)
            lines = fh.read().splitlines()
        by_number: dict[str, list[Mapping[str, object]]] = {}
        for row in rows:
            by_number.setdefault(str(row.get("caller_number") or ""), []).append(row)
        calls = []
        for want in expected:
            calls.append(
                {
                    "number": want.number,
                    "intent": next((c.intent for c in self.planned if c.number == want.number), ""),
                    "want": want.describe(),
                    "rows": by_number.get(want.number, []),
                    "queue_log": [
                        ln for ln in lines if want.linkedid and f"|{want.linkedid}|" in ln
                    ],
                }
            )
        path = self.serve.log_file.with_suffix(".evidence.json")
        path.write_text(json.dumps(calls, indent=1, default=str, ensure_ascii=False))
        self.extra["evidence"] = str(path)

    def _record(self, verdict: Verdict) -> None:
        counts = verdict.counts()
        label = tree_label()
        settle = "NOT SETTLED" if counts["settle_s"] is None else f"{counts['settle_s']} s"
        line = (
            f"FAULT {self.name} [{label}]: placed {counts['placed']} logged {counts['logged']} "
            f"right {counts['right']} stuck {counts['stuck']} missing {counts['missing']} "
            f"doubled {counts['doubled']} wrong {counts['wrong']} settle {settle}"
        )
        if self.extra:
            line += " " + " ".join(f"{k}={v}" for k, v in self.extra.items())
        print(line)
        SUMMARIES.append(line)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a", encoding="utf-8") as fh:
            record = {"fault": self.name, "tree": label, "at": time.time(), **counts}
            record.update(self.extra)
            fh.write(json.dumps(record) + "\n")

    def failure(self, verdict: Verdict) -> str:
        return (
            f"{self.name}: the call log is not right {SETTLE_BOUND:.0f} s after the calls "
            f"ended\n{verdict.details()}\nrows and queue_log lines: {self.extra.get('evidence')}"
            f"\n--- hotline serve log ({self.serve.log_file}) ---\n"
            f"{self.serve.log_tail()}"
        )

    def cleanup(self) -> None:
        for task in self._tasks:
            task.cancel()
        for run in self.runs:
            run.cleanup()
