"""Golden replays: every lab recording against the outcome checked in beside it.

Each ``tests/fixtures/ami/**/<name>.ami`` is a real Asterisk stream (``hotline lab
record``, docs/lab.md), and ``<name>.expected.json`` is what the call tracker and the
wallboard made of it (:mod:`tests.support.golden`): every call-log row, the calls left
open, and the wallboard's counters, SL, waits and agent states at the end. The whole dict
is compared, so a change in any outcome, time or counter fails with a diff. After an
intended change, regenerate with ``python -m tests.support.golden --write`` and review
the diff of the expected files like code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.golden import EXPECTED_SUFFIX, FIXTURES, diff, expected_path, golden, recordings

RECORDINGS = recordings()


def _id(path: Path) -> str:
    return str(path.relative_to(FIXTURES).with_suffix(""))


def test_every_recording_has_an_expectation_and_back() -> None:
    stems = {_id(p) for p in RECORDINGS}
    expectations = {
        str(p.relative_to(FIXTURES))[: -len(EXPECTED_SUFFIX)]
        for p in FIXTURES.rglob(f"*{EXPECTED_SUFFIX}")
    }
    assert sorted(stems - expectations) == [], "recordings without an expected file"
    assert sorted(expectations - stems) == [], "expected files without a recording"
    assert len(RECORDINGS) >= 15


@pytest.mark.parametrize("recording", RECORDINGS, ids=_id)
def test_replay_matches_the_expectation(recording: Path) -> None:
    expected = json.loads(expected_path(recording).read_text(encoding="utf-8"))
    actual = golden(recording)
    if actual != expected:
        pytest.fail(
            f"replay differs from the expectation:\n{diff(expected, actual, _id(recording))}"
        )


@pytest.mark.parametrize("recording", RECORDINGS, ids=_id)
def test_every_call_is_closed_and_the_wallboard_settled(recording: Path) -> None:
    """Each recording ends after its last hang-up: nothing is left waiting or open."""
    expected = json.loads(expected_path(recording).read_text(encoding="utf-8"))
    assert expected["open_calls"] == []
    assert expected["wallboard"]["stats"]["waiting"] == 0
    assert expected["wallboard"]["stats"]["pending_exits"] == 0
    assert "in_progress" not in {row["outcome"] for row in expected["calls"]}
