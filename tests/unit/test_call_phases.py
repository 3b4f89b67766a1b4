"""The call tracker's phase table: every phase change of a call, in one place."""

from __future__ import annotations

from hotline.calls.phases import TRANSITIONS, CallPhase, Step, advance


def test_answer_and_join_move_every_phase() -> None:
    for phase in CallPhase:
        assert advance(phase, Step.ANSWERED) is CallPhase.CONNECTED
        assert advance(phase, Step.JOINED) is CallPhase.QUEUED


def test_caller_up_only_leaves_ringing() -> None:
    assert advance(CallPhase.RINGING, Step.CALLER_UP) is CallPhase.IVR
    for phase in set(CallPhase) - {CallPhase.RINGING}:
        assert advance(phase, Step.CALLER_UP) is phase


def test_leaving_and_the_queue_result() -> None:
    assert advance(CallPhase.QUEUED, Step.LEFT) is CallPhase.LEFT_QUEUE
    for phase in set(CallPhase) - {CallPhase.QUEUED}:
        assert advance(phase, Step.LEFT) is phase  # e.g. QueueCallerLeave after AgentConnect
    for phase in set(CallPhase) - {CallPhase.CONNECTED}:
        assert advance(phase, Step.RESULT) is CallPhase.LEFT_QUEUE
    assert advance(CallPhase.CONNECTED, Step.RESULT) is CallPhase.CONNECTED


def test_the_table_is_the_only_source() -> None:
    moved = {
        (phase, step) for phase in CallPhase for step in Step if advance(phase, step) is not phase
    }
    assert moved <= set(TRANSITIONS)
    assert all(isinstance(target, CallPhase) for target in TRANSITIONS.values())
