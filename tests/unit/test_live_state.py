"""LiveState: AMI events in, wallboard figures out.

Synthetic scenarios are built from the event orders Asterisk 22 emits (as recorded in
tests/fixtures/ami: answered = Join, AgentCalled, Leave, AgentConnect, AgentComplete;
unanswered = Abandon, Leave, then the dialplan's QueueResult or the caller's Hangup).
Times are seconds after ``T0``, chosen so every metric has an exact expected value. The
recorded lab streams are replayed too, and checked against their scenario and against the
call tracker.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline.ami.events import AMIEvent
from hotline.ami.typed import QueueCallerJoin
from hotline.calls.records import Outcome
from hotline.live import state as state_module
from hotline.live.state import (
    AgentUpdated,
    CallerAbandoned,
    CallerLeft,
    CallerWaiting,
    Change,
    LinkChanged,
    LiveState,
    QueueSettings,
    QueueUpdated,
    StateReset,
)
from tests.support.replay import final_records, read_ami

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI).timestamp()  # 09:00 local
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
Q = "cantonese"


def ev(name: str, t: float | None, **headers: str) -> AMIEvent:
    if t is not None:
        headers["Timestamp"] = f"{T0 + t:.6f}"
    return AMIEvent(name=name, headers={"Event": name, **headers})


def join(
    t: float, uid: str, queue: str = Q, position: int = 1, number: str = "13800000000"
) -> AMIEvent:
    return ev(
        "QueueCallerJoin",
        t,
        Uniqueid=uid,
        Linkedid=uid,
        Queue=queue,
        Position=str(position),
        CallerIDNum=number,
        CallerIDName="客户",
    )


def answered(
    uid: str, joined: float, wait: float, talk: float, agent: str = "1001"
) -> list[AMIEvent]:
    iface = f"PJSIP/agent-{agent}"
    at = joined + wait
    member = {"Queue": Q, "Interface": iface, "MemberName": agent, "DestUniqueid": uid + "a"}
    return [
        join(joined, uid),
        ev("AgentCalled", at - 0.5, Uniqueid=uid, **member),
        ev("QueueCallerLeave", at, Uniqueid=uid, Queue=Q, Position="1", Count="0"),
        ev("AgentConnect", at, Uniqueid=uid, HoldTime=str(int(wait)), RingTime="0", **member),
        ev("AgentComplete", at + talk, Uniqueid=uid, TalkTime=str(int(talk)), **member),
    ]


def unanswered(
    uid: str, joined: float, wait: float, *, status: str | None = None, queue: str = Q
) -> list[AMIEvent]:
    at = joined + wait
    events = [
        join(joined, uid, queue),
        ev("QueueCallerAbandon", at, Uniqueid=uid, Queue=queue, HoldTime=str(int(wait))),
        ev("QueueCallerLeave", at, Uniqueid=uid, Queue=queue, Count="0"),
    ]
    if status is not None:
        events.append(
            ev("UserEvent", at, Uniqueid=uid, UserEvent="QueueResult", Queue=queue, Status=status)
        )
    events.append(ev("Hangup", at + 0.1, Uniqueid=uid, Linkedid=uid, Cause="16"))
    return events


def member(name: str, t: float, agent: str = "1001", queue: str = Q, **fields: str) -> AMIEvent:
    base = {"Status": "1", "Paused": "0", "PausedReason": "", "InCall": "0", "Wrapuptime": "0"}
    base.update(fields)
    return ev(name, t, Queue=queue, Interface=f"PJSIP/agent-{agent}", MemberName=agent, **base)


def feed_all(live: LiveState, events: list[AMIEvent]) -> list[Change]:
    return [change for event in events for change in live.feed(event)]


def by_time(*streams: list[AMIEvent]) -> list[AMIEvent]:
    return sorted((e for s in streams for e in s), key=lambda e: e.time)


# -- metric arithmetic -------------------------------------------------------------------


def mixed_day() -> list[AMIEvent]:
    """2 answered (10 s, 30 s), 2 abandoned (25 s, 8 s), 1 short (3 s), 1 timeout."""
    return by_time(
        answered("a1", 0, 10, 60),
        answered("a2", 100, 30, 120, agent="1002"),
        unanswered("b1", 300, 25),
        unanswered("b2", 400, 8),
        unanswered("s1", 500, 3),
        unanswered("t1", 600, 60, status="TIMEOUT"),
    )


def test_metrics_follow_the_documented_formulas_exactly() -> None:
    live = LiveState()
    feed_all(live, mixed_day())
    view = live.queue_view(Q, T0 + 1000)
    assert view is not None
    assert view["counts"] == {
        "answered": 2,
        "abandoned": 2,
        "short_abandoned": 1,
        "timeout": 1,
        "overflow": 0,
    }
    assert view["answered_within_sl"] == 1  # 10 s yes, 30 s no (T = 20 s)
    assert view["abandoned_within_sl"] == 1  # 8 s yes, 25 s no; the 3 s short one is apart
    assert view["service_level"] == pytest.approx(1 / 2)
    assert view["service_level2"] == pytest.approx((1 + 1) / (2 + 2))
    assert view["asa"] == pytest.approx((10 + 30) / 2)
    assert view["handled"] == 2
    assert view["aht"] == pytest.approx((60 + 120) / 2)
    assert view["abandon_rate"] == pytest.approx(2 / (2 + 2 + 1 + 0))
    assert view["meets_target"] is False  # 50 % < 80 %
    assert [a["uniqueid"] for a in live.snapshot(T0 + 1000)["abandoned"]] == ["b2", "b1"]


def test_service_level_threshold_and_target_are_per_queue() -> None:
    live = LiveState(queues={Q: QueueSettings(service_level_seconds=30, target=0.5)})
    feed_all(live, mixed_day())
    view = live.queue_view(Q, T0 + 1000)
    assert view is not None
    assert view["service_level"] == pytest.approx(1.0)  # 30 s <= T: within
    assert view["service_level2"] == pytest.approx((2 + 2) / 4)
    assert view["meets_target"] is True


def test_short_abandons_are_counted_apart_and_leave_the_rates_alone() -> None:
    live = LiveState()
    feed_all(live, by_time(answered("a1", 0, 30, 10), unanswered("s1", 100, 4.9)))
    view = live.queue_view(Q, T0 + 200)
    assert view is not None
    assert view["counts"]["short_abandoned"] == 1
    assert view["counts"]["abandoned"] == 0
    assert view["abandon_rate"] == 0.0
    assert view["service_level2"] == 0.0  # only the 30 s answer counts
    assert live.snapshot(T0 + 200)["abandoned"] == []  # not on the call-back list


def test_short_abandon_threshold_is_configurable() -> None:
    live = LiveState(short_abandon_seconds=2.0)
    feed_all(live, unanswered("x", 0, 3))
    assert live.queue_view(Q, T0 + 10)["counts"]["abandoned"] == 1  # type: ignore[index]


def test_timeout_is_not_an_abandon() -> None:
    live = LiveState()
    changes = feed_all(live, unanswered("t1", 0, 45, status="TIMEOUT"))
    view = live.queue_view(Q, T0 + 60)
    assert view is not None
    assert view["counts"]["timeout"] == 1
    assert view["counts"]["abandoned"] == 0
    assert view["abandon_rate"] == 0.0
    assert not any(isinstance(c, CallerAbandoned) for c in changes)


def test_abandon_is_decided_by_what_the_caller_does_next() -> None:
    live = LiveState()
    # QueueCallerAbandon alone decides nothing yet
    feed_all(live, unanswered("x", 0, 30)[:-1])
    assert live.queue_view(Q, T0 + 31)["counts"]["abandoned"] == 0  # type: ignore[index]
    assert live.stats["pending_exits"] == 1
    changes = live.feed(ev("Hangup", 31, Uniqueid="x"))
    assert live.queue_view(Q, T0 + 31)["counts"]["abandoned"] == 1  # type: ignore[index]
    [abandoned] = [c for c in changes if isinstance(c, CallerAbandoned)]
    assert abandoned.caller.caller_number == "13800000000"
    assert abandoned.caller.wait == pytest.approx(30)
    assert abandoned.as_dict()["kind"] == "abandoned"


@pytest.mark.parametrize("status", ["LEAVEEMPTY", "WITHDRAW", "LEAVEUNAVAIL"])
def test_overflow_statuses_are_not_abandons(status: str) -> None:
    live = LiveState()
    feed_all(live, unanswered("x", 0, 30, status=status))
    counts = live.queue_view(Q, T0 + 40)["counts"]  # type: ignore[index]
    assert (counts["overflow"], counts["abandoned"]) == (1, 0)


def test_moving_to_another_queue_is_an_overflow_of_the_first() -> None:
    live = LiveState()
    first = unanswered("x", 0, 30)[:-1]  # no QueueResult in this dialplan, no hangup
    feed_all(live, [*first, join(31, "x", "mandarin"), *answered("x", 31, 5, 10)[3:4]])
    assert live.queue_view(Q, T0 + 40)["counts"]["overflow"] == 1  # type: ignore[index]
    assert live.queue_view(Q, T0 + 40)["counts"]["abandoned"] == 0  # type: ignore[index]


def test_queue_refusing_a_caller_counts_an_overflow() -> None:
    live = LiveState()
    live.feed(ev("UserEvent", 0, Uniqueid="x", UserEvent="QueueResult", Queue=Q, Status="FULL"))
    assert live.queue_view(Q, T0)["counts"]["overflow"] == 1  # type: ignore[index]


def test_answer_without_a_seen_join_uses_holdtime() -> None:
    live = LiveState()
    feed_all(live, answered("a", 0, 12, 30)[2:])  # stream began after the join
    view = live.queue_view(Q, T0 + 100)
    assert view is not None
    assert view["asa"] == pytest.approx(12)
    assert live.stats["skipped.unknown_caller"] == 1  # the Leave of a caller never seen


# -- waiting callers ---------------------------------------------------------------------


def test_waiting_callers_positions_and_waits() -> None:
    live = LiveState()
    changes = feed_all(live, [join(0, "a"), join(5, "b", position=2), join(8, "vip", position=1)])
    assert CallerWaiting(Q, "a", 1) in changes
    view = live.queue_view(Q, T0 + 10)
    assert view is not None
    assert [(c["uniqueid"], c["position"]) for c in view["waiting"]] == [
        ("vip", 1),
        ("a", 2),
        ("b", 3),
    ]
    assert [c["wait"] for c in view["waiting"]] == pytest.approx([2, 10, 5])
    assert view["longest_wait"] == pytest.approx(10)
    changes = live.feed(ev("QueueCallerLeave", 11, Uniqueid="vip", Queue=Q))
    assert CallerLeft(Q, "vip") in changes and QueueUpdated(Q) in changes
    view = live.queue_view(Q, T0 + 12)
    assert [(c["uniqueid"], c["position"]) for c in view["waiting"]] == [("a", 1), ("b", 2)]  # type: ignore[index]
    assert view["waiting_count"] == 2  # type: ignore[index]


# -- agents ------------------------------------------------------------------------------


def agent_view(live: LiveState, t: float, agent: str = "1001") -> dict[str, Any]:
    view = live.agent_view(f"PJSIP/agent-{agent}", T0 + t)
    assert view is not None
    return view


def test_agent_ringing_on_call_available() -> None:
    live = LiveState()
    live.feed(member("QueueMemberAdded", 0))
    assert agent_view(live, 1)["state"] == "available"
    assert agent_view(live, 1)["time_in_state"] == pytest.approx(1)
    call = answered("c", 10, 5, 30)
    changes = feed_all(live, call[:2])  # join, AgentCalled
    assert AgentUpdated("PJSIP/agent-1001") in changes
    assert agent_view(live, 15)["state"] == "ringing"
    live.feed(member("QueueMemberStatus", 14.6, Status="6"))
    feed_all(live, call[2:4])  # leave, connect
    assert agent_view(live, 16)["state"] == "on_call"
    assert agent_view(live, 16)["on_call_with"] == "c"
    live.feed(member("QueueMemberStatus", 15, Status="2", InCall="1"))
    live.feed(call[4])  # AgentComplete at 45
    assert agent_view(live, 45)["state"] == "on_call"  # the phone is still in use
    live.feed(member("QueueMemberStatus", 45.1, Status="1", InCall="0"))
    view = agent_view(live, 50)
    assert view["state"] == "available"
    assert view["time_in_state"] == pytest.approx(50 - 45.1)
    assert (view["handled"], view["aht"]) == (1, pytest.approx(30))


def test_ring_no_answer_returns_the_agent_to_available() -> None:
    live = LiveState()
    live.feed(member("QueueMemberAdded", 0))
    live.feed(join(1, "c"))
    live.feed(ev("AgentCalled", 2, Uniqueid="c", Queue=Q, Interface="PJSIP/agent-1001"))
    live.feed(ev("AgentRingNoAnswer", 17, Uniqueid="c", Queue=Q, Interface="PJSIP/agent-1001"))
    assert agent_view(live, 18)["state"] == "available"


def test_pause_with_reason_then_unpause() -> None:
    live = LiveState()
    live.feed(member("QueueMemberAdded", 0))
    live.feed(member("QueueMemberPause", 10, Paused="1", PausedReason="lunch"))
    view = agent_view(live, 70)
    assert (view["state"], view["reason"], view["time_in_state"]) == ("paused", "lunch", 60)
    live.feed(member("QueueMemberPause", 100, Paused="0", PausedReason=""))
    assert (agent_view(live, 100)["state"], agent_view(live, 100)["reason"]) == ("available", None)


def test_paused_in_one_queue_only_is_still_available() -> None:
    live = LiveState()
    live.feed(member("QueueMemberAdded", 0))
    live.feed(member("QueueMemberAdded", 0, queue="mandarin"))
    live.feed(member("QueueMemberPause", 1, Paused="1", PausedReason="coaching"))
    assert agent_view(live, 2)["state"] == "available"
    live.feed(member("QueueMemberPause", 3, queue="mandarin", Paused="1", PausedReason="x"))
    assert agent_view(live, 4)["state"] == "paused"


@pytest.mark.parametrize(("status", "state"), [("5", "unavailable"), ("4", "unavailable")])
def test_unregistered_phone_is_unavailable(status: str, state: str) -> None:
    live = LiveState()
    live.feed(member("QueueMemberStatus", 0, Status=status))
    assert agent_view(live, 1)["state"] == state


def test_removed_agent_is_logged_out_but_keeps_todays_figures() -> None:
    live = LiveState()
    live.feed(member("QueueMemberAdded", 0))
    feed_all(live, answered("c", 1, 2, 10))
    live.feed(member("QueueMemberRemoved", 20))
    view = agent_view(live, 21)
    assert (view["state"], view["handled"], view["queues"]) == ("logged_out", 1, [])
    assert live.queue_view(Q, T0 + 21)["agents"]["available"] == 0  # type: ignore[index]


def test_wrapup_window_is_a_state_and_part_of_aht() -> None:
    live = LiveState(default=QueueSettings(wrapup_seconds=15))
    live.feed(member("QueueMemberAdded", 0))
    feed_all(live, answered("c", 0, 5, 40))  # complete at 45
    live.feed(member("QueueMemberStatus", 45, Status="1", InCall="0"))
    assert agent_view(live, 50)["state"] == "wrap_up"
    # the window ended at 60: the view says so before any tick …
    assert agent_view(live, 70)["state"] == "available"
    assert agent_view(live, 70)["time_in_state"] == pytest.approx(10)
    # … and tick() books the 15 s into AHT
    assert AgentUpdated("PJSIP/agent-1001") in live.tick(T0 + 70)
    assert agent_view(live, 70)["aht"] == pytest.approx((40 + 15) / 1)
    assert live.queue_view(Q, T0 + 70)["aht"] == pytest.approx(55)  # type: ignore[index]


def test_member_wrapuptime_overrides_the_queue_setting() -> None:
    live = LiveState(default=QueueSettings(wrapup_seconds=15))
    live.feed(member("QueueMemberAdded", 0, Wrapuptime="5"))
    feed_all(live, answered("c", 0, 5, 40))
    live.feed(member("QueueMemberStatus", 45, Status="1", InCall="0", Wrapuptime="5"))
    live.tick(T0 + 100)
    assert agent_view(live, 100)["aht"] == pytest.approx(45)


def test_wrapup_pause_reason_counts_as_wrap_up() -> None:
    live = LiveState()
    live.feed(member("QueueMemberAdded", 0))
    feed_all(live, answered("c", 0, 5, 40))
    live.feed(member("QueueMemberStatus", 45, Status="1", InCall="0"))
    live.feed(member("QueueMemberPause", 45, Paused="1", PausedReason="Wrapup"))
    assert (agent_view(live, 50)["state"], agent_view(live, 50)["reason"]) == ("wrap_up", "Wrapup")
    live.feed(member("QueueMemberPause", 65, Paused="0"))
    assert agent_view(live, 66)["state"] == "available"
    assert agent_view(live, 66)["aht"] == pytest.approx(40 + 20)


# -- days --------------------------------------------------------------------------------


def test_day_rolls_over_at_local_midnight() -> None:
    live = LiveState()  # Asia/Shanghai
    midnight = datetime(2026, 3, 3, 0, 0, tzinfo=SHANGHAI).timestamp() - T0
    feed_all(live, unanswered("late", midnight - 60, 30))
    feed_all(live, answered("a", midnight - 20, 5, 5))
    live.feed(member("QueueMemberAdded", midnight - 100))
    before = live.snapshot(T0 + midnight - 1)
    assert before["day"] == "2026-03-02"
    assert before["queues"][Q]["counts"]["abandoned"] == 1
    # no event yet after midnight: the snapshot already shows a fresh day
    fresh = live.snapshot(T0 + midnight + 1)
    assert fresh["day"] == "2026-03-03"
    assert fresh["queues"][Q]["counts"]["answered"] == 0 and fresh["abandoned"] == []
    changes = feed_all(live, answered("b", midnight + 5, 2, 3))
    assert StateReset("day") in changes
    view = live.queue_view(Q, T0 + midnight + 20)
    assert view is not None
    assert view["counts"]["answered"] == 1 and view["counts"]["abandoned"] == 0
    assert view["totals"]["counts"]["answered"] == 2  # lifetime counters carry on


def test_day_boundary_follows_the_configured_timezone() -> None:
    # 16:30 UTC is 00:30 in Shanghai but still the same day in UTC
    utc_evening = datetime(2026, 3, 2, 16, 30, tzinfo=ZoneInfo("UTC")).timestamp() - T0
    for zone, resets in (("Asia/Shanghai", True), ("UTC", False)):
        live = LiveState(timezone=zone)
        feed_all(live, answered("a", utc_evening - 3600, 1, 1))
        changes = feed_all(live, answered("b", utc_evening, 1, 1))
        assert (StateReset("day") in changes) is resets
    assert tick_rolls_day()


def tick_rolls_day() -> bool:
    live = LiveState()
    feed_all(live, answered("a", 0, 1, 1))
    return StateReset("day") in live.tick(T0 + 86_400)


# -- replay of the lab recordings --------------------------------------------------------

EXPECTED = {
    "answered": {"cantonese": {"answered": 1}},
    "abandoned": {"minnan": {"abandoned": 1}},
    "short_abandoned": {"wu": {"short_abandoned": 1}},
    "timeout": {"sichuanese": {"timeout": 1}},
    "rna_then_answer": {"wu": {"answered": 1}},
    "concurrent20": {"mandarin": {"answered": 20}},
    "ivr_only": {},
}


def replay_fixture(name: str) -> tuple[LiveState, list[AMIEvent]]:
    live = LiveState()
    events = read_ami(FIXTURES / f"{name}.ami")
    feed_all(live, events)
    return live, events


def nonzero_counts(snapshot: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        q: {k: n for k, n in view["counts"].items() if n}
        for q, view in snapshot["queues"].items()
        if any(view["counts"].values())
    }


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.ami")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_fixture(name: str) -> None:
    live, events = replay_fixture(name)
    scenario = json.loads((FIXTURES / f"{name}.json").read_text())
    snapshot = live.snapshot(events[-1].time + 1)
    json.dumps(snapshot)  # JSON-ready
    assert nonzero_counts(snapshot) == EXPECTED[name]
    assert live.stats["skipped"] == 0
    assert live.stats["waiting"] == 0 and live.stats["pending_exits"] == 0
    if "queue" in scenario:
        assert scenario["queue"] in snapshot["queues"]
    # the wallboard agrees with the call log, call for call
    from_log = Counter((r.queue, str(r.outcome)) for r in final_records(events) if r.queue)
    from_live = Counter(
        {(q, k): n for q, counts in nonzero_counts(snapshot).items() for k, n in counts.items()}
    )
    assert from_live == from_log


def test_answered_fixture_agent_and_metrics() -> None:
    live, events = replay_fixture("answered")
    snapshot = live.snapshot(events[-1].time)
    [agent] = [a for a in snapshot["agents"].values() if a["name"] == "1001"]
    assert agent["handled"] == 1
    assert agent["aht"] == pytest.approx(3, abs=0.1)  # talks 3 s
    queue = snapshot["queues"]["cantonese"]
    assert queue["asa"] == pytest.approx(2, abs=0.1)  # rings 2 s
    assert queue["service_level"] == 1.0


def test_rna_fixture_credits_the_agent_who_answered() -> None:
    live, events = replay_fixture("rna_then_answer")
    handled = {a["name"]: a["handled"] for a in live.snapshot(events[-1].time)["agents"].values()}
    assert handled == {"1003": 0, "1004": 1}


def test_abandoned_fixture_lists_the_caller_for_call_back() -> None:
    live, events = replay_fixture("abandoned")
    [entry] = live.snapshot(events[-1].time)["abandoned"]
    [record] = final_records(events)
    assert entry["linkedid"] == record.linkedid
    assert entry["wait"] == pytest.approx(record.wait_seconds)
    assert entry["caller_number"] == record.caller_number


def test_concurrent_fixture_matches_the_tracker_waits() -> None:
    live, events = replay_fixture("concurrent20")
    snapshot = live.snapshot(events[-1].time)
    records = final_records(events)
    waits = [r.wait_seconds for r in records if r.wait_seconds is not None]
    assert len(waits) == len(records)  # every answered call has a wait
    assert snapshot["queues"]["mandarin"]["asa"] == pytest.approx(sum(waits) / len(waits))
    assert sorted(a["handled"] for a in snapshot["agents"].values()) == [5, 5, 5, 5]


def test_short_abandoned_fixture_leaves_the_abandon_rate_alone() -> None:
    live, events = replay_fixture("short_abandoned")
    queue = live.snapshot(events[-1].time)["queues"]["wu"]
    assert queue["abandon_rate"] is None  # nothing counted towards it


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_partial_replays_never_fail(name: str) -> None:
    events = read_ami(FIXTURES / f"{name}.ami")
    for start in range(0, len(events), max(1, len(events) // 25)):
        live = LiveState()
        feed_all(live, events[start:])
        live.snapshot(events[-1].time)
        assert "skipped.internal_error" not in live.stats


# -- reconnects --------------------------------------------------------------------------


def queue_status(t: float) -> list[AMIEvent]:
    return [
        ev("QueueParams", None, Queue=Q, ServiceLevel="30", Calls="2"),
        ev(
            "QueueMember",
            None,
            Queue=Q,
            Name="1002",
            Location="PJSIP/agent-1002",
            Status="1",
            Paused="1",
            PausedReason="training",
            InCall="0",
        ),
        ev("QueueMember", None, Queue=Q, Name="1003", Location="PJSIP/agent-1003", Status="2"),
        ev("QueueEntry", None, Queue=Q, Position="1", Uniqueid="b", Channel="PJSIP/t-1", Wait="9"),
        ev("QueueEntry", None, Queue=Q, Position="2", Uniqueid="c", CallerIDNum="139", Wait="4"),
        ev("QueueStatusComplete", None),
    ]


def test_queue_status_rebuild_marks_and_sweeps() -> None:
    live = LiveState()
    feed_all(live, [join(0, "a"), join(5, "b", position=2)])
    live.feed(member("QueueMemberAdded", 0, agent="1001"))
    live.feed(member("QueueMemberAdded", 0, agent="1002"))
    feed_all(live, [join(1, "m", "mandarin"), member("QueueMemberAdded", 0, queue="mandarin")])
    changes = live.apply_queue_status(queue_status(100), T0 + 100)
    assert changes == [StateReset("queue_status")]
    snapshot = live.snapshot(T0 + 100)
    view = snapshot["queues"][Q]
    assert [(c["uniqueid"], c["position"]) for c in view["waiting"]] == [("b", 1), ("c", 2)]
    assert view["waiting"][0]["wait"] == pytest.approx(95)  # known caller keeps its join time
    assert view["waiting"][1]["wait"] == pytest.approx(4)  # adopted from Wait
    assert view["service_level_seconds"] == 30  # Asterisk's servicelevel, none configured
    agents = snapshot["agents"]
    assert agents["PJSIP/agent-1001"]["state"] == "logged_out"  # absent from the reply
    assert (agents["PJSIP/agent-1002"]["state"], agents["PJSIP/agent-1002"]["reason"]) == (
        "paused",
        "training",
    )
    assert agents["PJSIP/agent-1003"]["state"] == "on_call"
    # an unfiltered reply that does not list "mandarin" sweeps it too
    assert snapshot["queues"]["mandarin"]["waiting"] == []
    assert view["counts"]["abandoned"] == 0  # a sweep is not an outcome


def test_filtered_queue_status_leaves_other_queues_alone() -> None:
    live = LiveState(queues={Q: QueueSettings(service_level_seconds=20)})
    feed_all(live, [join(1, "m", "mandarin"), join(2, "a")])
    live.apply_queue_status(queue_status(100), T0 + 100, complete=False)
    snapshot = live.snapshot(T0 + 100)
    assert [c["uniqueid"] for c in snapshot["queues"]["mandarin"]["waiting"]] == ["m"]
    assert snapshot["queues"][Q]["service_level_seconds"] == 20  # configured wins


def test_resync_settles_callers_whose_channel_is_gone() -> None:
    live = LiveState()
    feed_all(live, [join(0, "gone"), join(1, "alive", position=2)])
    feed_all(live, unanswered("left", 2, 30)[:-1])  # abandon seen, hangup lost
    assert live.feed(ev("HotlineDisconnected", 40)) == [LinkChanged(False)]
    assert live.snapshot(T0 + 41)["connected"] is False
    changes = live.feed(ev("HotlineResync", 60, Uniqueids="alive other"))
    assert LinkChanged(True) in changes and StateReset("resync") in changes
    snapshot = live.snapshot(T0 + 61)
    assert snapshot["connected"] is True
    assert snapshot["queues"][Q]["counts"]["abandoned"] == 2  # as the call tracker closes them
    assert [c["uniqueid"] for c in snapshot["queues"][Q]["waiting"]] == ["alive"]
    assert snapshot["queues"][Q]["waiting"][0]["position"] == 1
    assert live.stats["resyncs"] == 1 and live.stats["disconnects"] == 1


def test_resync_without_a_channel_list_is_refused() -> None:
    live = LiveState()
    live.feed(join(0, "a"))
    assert live.feed(ev("HotlineResync", 5)) == []
    assert live.stats["skipped.bad_field"] == 1
    assert live.stats["waiting"] == 1


def test_an_abandon_with_an_unknown_wait_is_not_short() -> None:
    """The call log's rule (hotline.calls.outcomes): no abandon leaves the rate on a guess."""
    live = LiveState()
    entry = ev("QueueEntry", None, Queue=Q, Position="1", Uniqueid="u")  # no Wait
    live.apply_queue_status([entry], T0 + 100)
    feed_all(
        live,
        [
            ev("QueueCallerAbandon", 101, Uniqueid="u", Queue=Q),  # no HoldTime
            ev("QueueCallerLeave", 101, Uniqueid="u", Queue=Q),
            ev("Hangup", 101.1, Uniqueid="u"),
        ],
    )
    snapshot = live.snapshot(T0 + 102)
    counts = snapshot["queues"][Q]["counts"]
    assert (counts["abandoned"], counts["short_abandoned"]) == (1, 0)
    assert [a["uniqueid"] for a in snapshot["abandoned"]] == ["u"]


# -- garbage -----------------------------------------------------------------------------


GARBAGE = [
    ev("QueueCallerJoin", 0),
    ev("QueueCallerJoin", 0, Queue=Q),
    ev("QueueCallerJoin", 0, Queue=Q, Uniqueid="g", Position="banana"),
    ev("QueueCallerJoin", 0, Queue=Q, Uniqueid="g"),  # duplicate
    ev("QueueCallerAbandon", 1, Queue="nope", Uniqueid="zz", HoldTime="NaN"),
    ev("QueueCallerLeave", 1),
    ev("AgentConnect", 1, Uniqueid="zz", HoldTime="inf"),
    ev("AgentConnect", 1, Uniqueid="zz", Queue=Q, HoldTime="-1e400"),
    ev("AgentComplete", 1, Queue=Q),
    ev("AgentComplete", 1, Queue=Q, Interface="PJSIP/x", TalkTime="x"),
    ev("QueueMemberStatus", 1, Queue=Q, Interface="PJSIP/x", Status="99", Paused="yes"),
    ev("QueueMemberStatus", 1),
    ev("QueueMemberRemoved", 1, Interface="PJSIP/never"),
    ev("UserEvent", 1, UserEvent="QueueResult"),
    ev("UserEvent", 1, UserEvent="QueueResult", Uniqueid="q", Status="TIMEOUT"),
    ev("Hangup", 1),
    ev("Hangup", None, Uniqueid="g", Timestamp="yesterday"),
    ev("HotlineResync", 1, Uniqueids=""),
    ev("Newchannel", 1, Uniqueid="ignored"),
]


def test_garbage_is_skipped_and_counted_never_raised() -> None:
    live = LiveState()
    feed_all(live, GARBAGE)
    snapshot = live.snapshot(T0 + 10)
    json.dumps(snapshot)
    assert "skipped.internal_error" not in live.stats
    assert live.stats["skipped"] >= 5
    assert live.stats["skipped.duplicate"] == 1


def test_mangled_recordings_never_raise() -> None:
    rng = random.Random(6)
    events = read_ami(FIXTURES / "concurrent20.ami")
    for _ in range(20):
        live = LiveState()
        for event in events:
            headers = dict(event.headers)
            for key in rng.sample(sorted(headers), k=rng.randint(0, 3)):
                headers[key] = rng.choice(["", "-1", "NaN", "<unknown>", "日本", "1e999"])
            live.feed(AMIEvent(event.name, headers))
        json.dumps(live.snapshot(events[-1].time))
        assert "skipped.internal_error" not in live.stats


def test_an_internal_error_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    live = LiveState()

    def boom(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(live._handlers, QueueCallerJoin, boom)
    assert live.feed(join(0, "a")) == []
    assert live.stats["skipped.internal_error"] == 1


# -- contract ----------------------------------------------------------------------------


def test_changes_serialise() -> None:
    changes = feed_all(LiveState(), mixed_day())
    kinds = {c.as_dict()["kind"] for c in changes}
    assert kinds == {"queue", "agent", "caller.waiting", "caller.left", "abandoned"}


def test_public_names_exist() -> None:
    names = state_module.__all__
    assert len(set(names)) == len(names)
    assert all(hasattr(state_module, name) for name in names)
    assert Outcome.TIMEOUT in state_module.COUNTED_OUTCOMES
