"""Prometheus text exposition (format 0.0.4) of the live queue figures.

Written by hand rather than with ``prometheus-client`` on purpose: the figures already
live in :meth:`LiveState.snapshot` (and, stored by :mod:`hotline.live.publisher`, in Redis
for every API process), so ``/metrics`` only has to *render* a snapshot. A client-library
registry would be a second, process-global copy of the same numbers to keep in step, and
one that API workers without the AMI consumer could not fill. The format is a few lines
of text.

Counters come from each queue's process-lifetime ``totals`` (monotonic, as Prometheus
counters must be; a restart is a normal counter reset). Today's ratios are gauges: they
jump back to "no data" at local midnight, which a counter must never do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (name, help, queue_view key) of the per-queue gauges; a None value (no data) is omitted.
_QUEUE_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("hotline_queue_waiting_callers", "Callers waiting in the queue now.", "waiting_count"),
    ("hotline_queue_longest_wait_seconds", "Wait of the longest-waiting caller.", "longest_wait"),
    (
        "hotline_queue_service_level_ratio",
        "Today: answered within T / answered.",
        "service_level",
    ),
    (
        "hotline_queue_service_level2_ratio",
        "Today: (answered + abandoned within T) / (answered + abandoned).",
        "service_level2",
    ),
    (
        "hotline_queue_service_level_target_ratio",
        "Service level target of the queue.",
        "target",
    ),
    ("hotline_queue_service_level_seconds", "Service level threshold T.", "service_level_seconds"),
    ("hotline_queue_asa_seconds", "Today: mean wait of answered calls.", "asa"),
    ("hotline_queue_aht_seconds", "Today: (talk + hold + wrap-up) / handled.", "aht"),
    (
        "hotline_queue_abandon_rate_ratio",
        "Today: abandoned / (answered + abandoned + timeout + overflow); short abandons out.",
        "abandon_rate",
    ),
)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _value(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_: str,
        samples: Iterable[tuple[Mapping[str, object], float | None]],
    ) -> None:
        rows = [(labels, v) for labels, v in samples if v is not None]
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            self.lines.append(f"{name}{_labels(labels)} {_value(value)}")


def render(snapshot: Mapping[str, Any]) -> str:
    """The exposition text for one :meth:`LiveState.snapshot`; never raises on gaps."""
    queues: Mapping[str, Mapping[str, Any]] = snapshot.get("queues") or {}
    agents: Mapping[str, Mapping[str, Any]] = snapshot.get("agents") or {}
    out = _Writer()
    for name, help_, key in _QUEUE_GAUGES:
        out.family(name, "gauge", help_, (({"queue": q}, v.get(key)) for q, v in queues.items()))
    out.family(
        "hotline_queue_calls_today",
        "gauge",
        "Calls settled today by outcome (resets at local midnight).",
        (
            ({"queue": q, "outcome": outcome}, n)
            for q, v in queues.items()
            for outcome, n in (v.get("counts") or {}).items()
        ),
    )
    out.family(
        "hotline_queue_agents",
        "gauge",
        "Queue members by state.",
        (
            ({"queue": q, "state": state}, n)
            for q, v in queues.items()
            for state, n in (v.get("agents") or {}).items()
        ),
    )
    totals = {q: v.get("totals") or {} for q, v in queues.items()}
    out.family(
        "hotline_queue_calls_total",
        "counter",
        "Calls settled since the process started, by outcome.",
        (
            ({"queue": q, "outcome": outcome}, n)
            for q, t in totals.items()
            for outcome, n in (t.get("counts") or {}).items()
        ),
    )
    for name, help_, key in (
        ("hotline_queue_answered_within_sl_total", "Answered within T.", "answered_within_sl"),
        ("hotline_queue_abandoned_within_sl_total", "Abandoned within T.", "abandoned_within_sl"),
        (
            "hotline_queue_answered_wait_seconds_total",
            "Sum of waits of answered calls (ASA = this / answered).",
            "answered_wait_seconds",
        ),
        ("hotline_queue_handled_total", "Calls completed by an agent.", "handled"),
        ("hotline_queue_talk_seconds_total", "Talk time incl. customer hold.", "talk_seconds"),
        ("hotline_queue_wrapup_seconds_total", "After-call work time.", "wrapup_seconds"),
    ):
        out.family(name, "counter", help_, (({"queue": q}, t.get(key)) for q, t in totals.items()))
    by_state: dict[str, int] = {}
    for view in agents.values():
        state = str(view.get("state", "unknown"))
        by_state[state] = by_state.get(state, 0) + 1
    out.family(
        "hotline_agents",
        "gauge",
        "Agents by state (each agent once).",
        (({"state": s}, n) for s, n in sorted(by_state.items())),
    )
    out.family(
        "hotline_ami_connected",
        "gauge",
        "1 while the AMI link is up; figures are stale otherwise.",
        [({}, 1.0 if snapshot.get("connected", False) else 0.0)],
    )
    stats: Mapping[str, Any] = snapshot.get("stats") or {}
    out.family(
        "hotline_live_events_total",
        "counter",
        "AMI events fed to the live state.",
        [({}, stats.get("events"))],
    )
    out.family(
        "hotline_live_skipped_total",
        "counter",
        "Events the live state could not use, by reason.",
        (
            ({"reason": key.partition(".")[2]}, n)
            for key, n in sorted(stats.items())
            if key.startswith("skipped.")
        ),
    )
    return "\n".join(out.lines) + "\n"
