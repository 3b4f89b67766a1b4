"""The pop follow-up (withdrawn / connected / ended) replayed from real lab recordings."""

from __future__ import annotations

from screenpop.pops import PopTracker, PushType
from tests.support.replay import FIXTURES, read_ami


def pushes(name: str) -> list[tuple[str, str]]:
    tracker = PopTracker()
    out = []
    for event in read_ami(FIXTURES / f"{name}.ami"):
        out += [(p.agent, str(p.type)) for p in tracker.feed(event)]
    return out


def test_answered_call() -> None:
    assert pushes("answered") == [
        ("1001", PushType.SCREENPOP),
        ("1001", PushType.CONNECTED),
        ("1001", PushType.ENDED),
    ]


def test_rejecting_agent_is_withdrawn_then_the_other_connects() -> None:
    got = pushes("rna_then_answer")
    assert ("1003", PushType.SCREENPOP) in got
    assert ("1003", PushType.WITHDRAWN) in got
    assert got.index(("1003", PushType.WITHDRAWN)) < got.index(("1004", PushType.CONNECTED))
    assert got[-1] == ("1004", PushType.ENDED)
    # every pop shown is later withdrawn or connected: no page is left showing a stale call
    shown = [a for a, t in got if t == PushType.SCREENPOP]
    closed = [a for a, t in got if t in (PushType.WITHDRAWN, PushType.CONNECTED)]
    assert sorted(shown) == sorted(closed)


def test_caller_gone_while_ringing_withdraws() -> None:
    got = pushes("abandoned")
    assert got and got[0] == ("1002", PushType.SCREENPOP)
    assert all(agent == "1002" for agent, _ in got)
    assert got.count(("1002", PushType.SCREENPOP)) == got.count(("1002", PushType.WITHDRAWN))
    assert ("1002", PushType.CONNECTED) not in got


def test_concurrent_calls_each_agent_only_its_own() -> None:
    tracker = PopTracker()
    by_call: dict[str, set[str]] = {}
    for event in read_ami(FIXTURES / "concurrent20.ami"):
        for p in tracker.feed(event):
            if p.type == PushType.CONNECTED:
                by_call.setdefault(p.linkedid, set()).add(p.agent)
    assert len(by_call) == 20
    assert all(len(agents) == 1 for agents in by_call.values())
