"""Replaying recorded AMI streams (tests/fixtures/ami/**/*.ami, recorded from the lab).

The first seven recordings sit at the top of the folder (several test modules read them by
name); later families each have a sub-folder, so glob recursively to see them all.
"""

from __future__ import annotations

from pathlib import Path

from hotline.ami.events import AMIEvent
from hotline.ami.framing import AMIFramer
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"


def events_from_bytes(chunks: list[bytes]) -> list[AMIEvent]:
    """Events through the production framer, fed ``chunks`` one read at a time."""
    framer = AMIFramer()
    frames = [frame for chunk in chunks for frame in framer.feed(chunk)]
    return [f.to_event() for f in frames if f.name]


def read_ami(path: Path) -> list[AMIEvent]:
    return events_from_bytes([path.read_bytes()])


def final_records(events: list[AMIEvent], **tracker_kw: object) -> list[CallRecord]:
    """The last record of each call, in the order calls finished."""
    tracker = CallTracker(**tracker_kw)  # type: ignore[arg-type]
    done: dict[str, CallRecord] = {}
    for event in events:
        for record in tracker.feed(event):
            if record.outcome != Outcome.IN_PROGRESS:
                done[record.linkedid] = record
    return list(done.values())
