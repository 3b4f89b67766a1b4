"""Golden replays: what the call log and the wallboard make of one recorded lab stream.

A recording (``tests/fixtures/ami/**/*.ami``, docs/lab.md) is replayed through the
production framer into a fresh :class:`CallTracker` and a fresh :class:`LiveState`, side
by side as the bridge feeds them. The result is one JSON-ready dict, compared whole with
the ``<name>.expected.json`` checked in beside the recording, so any change in what the
tracker or the wallboard reports for a real Asterisk stream shows up as a diff.

Only the public API of the two consumers is used, so the module also runs against older
code (``PYTHONPATH=<old checkout>``), which is how the expectations are regenerated and
compared across a refactor (``python -m tests.support.golden --write``, docs/lab.md).

Nothing here depends on the wall clock: the wallboard is read at the time of the last
event in the stream, and the fields that only measure "now minus then" (the snapshot's
``at``, waits of callers still queued, an agent's time in state) are left out, since
they describe the moment of reading rather than the calls.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from pathlib import Path
from typing import Any

from hotline.ami.events import AMIEvent
from hotline.ami.framing import AMIFramer
from hotline.calls.records import Outcome
from hotline.calls.tracker import CallTracker
from hotline.live.state import LiveState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
EXPECTED_SUFFIX = ".expected.json"

# Snapshot fields that are "now minus an event time": they change with the reading time.
_SNAPSHOT_NOW_FIELDS = ("at",)
_QUEUE_NOW_FIELDS = ("longest_wait",)
_WAITING_NOW_FIELDS = ("wait",)
_AGENT_NOW_FIELDS = ("time_in_state",)


def recordings(root: Path = FIXTURES) -> list[Path]:
    """Every recording under ``root``, sorted by relative path."""
    return sorted(root.rglob("*.ami"))


def expected_path(recording: Path) -> Path:
    return recording.with_name(recording.stem + EXPECTED_SUFFIX)


def read_events(recording: Path) -> list[AMIEvent]:
    """The stream's events through the production framer (responses dropped)."""
    framer = AMIFramer()
    return [frame.to_event() for frame in framer.feed(recording.read_bytes()) if frame.name]


def _without(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in fields}


def _queue(view: dict[str, Any]) -> dict[str, Any]:
    out = _without(view, _QUEUE_NOW_FIELDS)
    out["waiting"] = [_without(w, _WAITING_NOW_FIELDS) for w in view["waiting"]]
    return out


def wallboard(live: LiveState, now: float) -> dict[str, Any]:
    """The snapshot at ``now`` without the fields that only measure the reading time."""
    snapshot = _without(live.snapshot(now), _SNAPSHOT_NOW_FIELDS)
    snapshot["queues"] = {name: _queue(view) for name, view in snapshot["queues"].items()}
    snapshot["agents"] = {
        name: _without(view, _AGENT_NOW_FIELDS) for name, view in snapshot["agents"].items()
    }
    return snapshot


def golden(recording: Path) -> dict[str, Any]:
    """Call-log rows, calls still open and the wallboard at the end of ``recording``.

    ``calls`` lists every final record the tracker returned, in the order it returned
    them (a call closed twice would show twice: the writer's upsert would hide that).
    """
    events = read_events(recording)
    tracker = CallTracker()
    live = LiveState()
    rows: list[dict[str, object]] = []
    for event in events:
        for record in tracker.feed(event):
            if record.outcome != Outcome.IN_PROGRESS:
                rows.append(record.as_dict())
        live.feed(event)
    times = [e.time for e in events if math.isfinite(e.time) and e.time > 0]
    end = max(times, default=0.0)
    result = {
        "calls": rows,
        "open_calls": [record.as_dict() for record in tracker.open_calls()],
        "wallboard": wallboard(live, end),
    }
    # the checked-in form: what JSON can hold (tuples become lists, keys strings)
    return dict(json.loads(json.dumps(result, ensure_ascii=False)))


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def diff(expected: dict[str, Any], actual: dict[str, Any], name: str = "") -> str:
    """A unified diff of the two rendered dicts, for a readable test failure."""
    lines = difflib.unified_diff(
        render(expected).splitlines(),
        render(actual).splitlines(),
        fromfile=f"{name} expected",
        tofile=f"{name} replayed",
        lineterm="",
        n=4,
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Check (default) or ``--write`` the expectation of every recording under ``--root``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=FIXTURES)
    parser.add_argument("--write", action="store_true", help="(re)write the expected files")
    parser.add_argument("names", nargs="*", help="only recordings whose stem is listed")
    args = parser.parse_args(argv)
    failed = 0
    for recording in recordings(args.root):
        if args.names and recording.stem not in args.names:
            continue
        actual = golden(recording)
        target = expected_path(recording)
        label = str(recording.relative_to(args.root))
        if args.write:
            target.write_text(render(actual), encoding="utf-8")
            print(f"wrote {target.relative_to(args.root)}")
            continue
        if not target.exists():
            print(f"MISSING {label}")
            failed += 1
        elif json.loads(target.read_text(encoding="utf-8")) != actual:
            print(f"DIFFERS {label}\n{diff(json.loads(target.read_text()), actual, label)}")
            failed += 1
        else:
            print(f"same    {label}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
