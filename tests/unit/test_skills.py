"""Agents' dialect skills → queue membership → AMI actions."""

from __future__ import annotations

import pytest

from hotline.routing.skills import (
    PENALTY,
    AgentSkills,
    Member,
    Skill,
    current_members,
    desired_members,
    plan,
)

QUEUES = ("mandarin", "cantonese", "minnan", "wu", "sichuanese")


def agents() -> list[AgentSkills]:
    return [
        AgentSkills(
            agent_id="1001",
            interface="PJSIP/agent-1001",
            skills={"mandarin": "native", "cantonese": "native"},
        ),
        AgentSkills(
            agent_id="1002",
            interface="PJSIP/agent-1002",
            skills={"mandarin": Skill.NATIVE, "cantonese": "good"},
        ),
        AgentSkills(
            agent_id="1003",
            interface="PJSIP/agent-1003",
            skills={"mandarin": "native", "cantonese": "fallback", "hakka": "native"},
        ),
    ]


def test_penalties_are_the_design_values() -> None:
    assert PENALTY == {Skill.NATIVE: 0, Skill.GOOD: 5, Skill.FALLBACK: 10}


def test_desired_members_from_skills() -> None:
    members = desired_members(agents(), QUEUES)
    assert Member("cantonese", "PJSIP/agent-1001", "1001", 0) in members
    assert Member("cantonese", "PJSIP/agent-1002", "1002", 5) in members
    assert Member("cantonese", "PJSIP/agent-1003", "1003", 10) in members
    assert not any(m.queue == "hakka" for m in members)  # no hakka queue configured
    assert len(members) == 6 and members == sorted(members)


def test_unknown_skill_is_refused() -> None:
    with pytest.raises(ValueError):
        desired_members(
            [AgentSkills(agent_id="1", interface="PJSIP/1", skills={"wu": "fluent"})], QUEUES
        )


def test_plan_from_empty_adds_everyone() -> None:
    actions = plan(desired_members(agents(), QUEUES), [])
    assert [a["Action"] for a in actions] == ["QueueAdd"] * 6
    assert {
        "Action": "QueueAdd",
        "Queue": "cantonese",
        "Interface": "PJSIP/agent-1002",
        "MemberName": "1002",
        "Penalty": "5",
    } in actions


def test_plan_in_sync_is_empty() -> None:
    desired = desired_members(agents(), QUEUES)
    assert plan(desired, desired) == []


def test_plan_removes_changes_penalty_and_adds_in_that_order() -> None:
    desired = [
        Member("cantonese", "PJSIP/agent-1001", "1001", 0),
        Member("wu", "PJSIP/agent-1002", "1002", 0),
    ]
    current = [
        Member("cantonese", "PJSIP/agent-1001", "1001", 10),  # penalty change
        Member("cantonese", "PJSIP/agent-1009", "1009", 0),  # left
    ]
    actions = plan(desired, current, managed_queues=QUEUES)
    assert actions == [
        {"Action": "QueueRemove", "Queue": "cantonese", "Interface": "PJSIP/agent-1009"},
        {
            "Action": "QueueAdd",
            "Queue": "wu",
            "Interface": "PJSIP/agent-1002",
            "MemberName": "1002",
            "Penalty": "0",
        },
        {
            "Action": "QueuePenalty",
            "Queue": "cantonese",
            "Interface": "PJSIP/agent-1001",
            "Penalty": "0",
        },
    ]


def test_unmanaged_queues_and_static_members_are_left_alone() -> None:
    current = [
        Member("sales", "PJSIP/agent-1001", "1001", 0),
        Member("wu", "PJSIP/agent-2000", "2000", 3),
    ]
    actions = plan([], current, managed_queues=["wu"], static=[current[1]])
    assert actions == []


def test_renamed_member_is_removed_and_added() -> None:
    desired = [Member("wu", "PJSIP/agent-1001", "1001", 0)]
    current = [Member("wu", "PJSIP/agent-1001", "old-name", 0)]
    assert [a["Action"] for a in plan(desired, current)] == ["QueueRemove", "QueueAdd"]


def test_current_members_reads_queue_status_and_member_events() -> None:
    events = [
        {"Event": "QueueParams", "Queue": "wu"},
        {
            "Event": "QueueMember",
            "Queue": "wu",
            "Name": "1003",
            "Location": "PJSIP/agent-1003",
            "Membership": "dynamic",
            "Penalty": "5",
        },
        {
            "Event": "QueueMemberAdded",
            "Queue": "wu",
            "MemberName": "1004",
            "Interface": "PJSIP/agent-1004",
            "Membership": "dynamic",
            "Penalty": "0",
        },
        {
            "Event": "QueueMember",
            "Queue": "wu",
            "Name": "static",
            "Location": "PJSIP/x",
            "Membership": "static",
            "Penalty": "oops",
        },
        {"Event": "QueueMember", "Queue": "wu"},  # no interface: skipped
    ]
    dynamic, static = current_members(events)
    assert dynamic == [
        Member("wu", "PJSIP/agent-1003", "1003", 5),
        Member("wu", "PJSIP/agent-1004", "1004", 0),
    ]
    assert static == [Member("wu", "PJSIP/x", "static", 0)]


def test_resync_after_restart_re_adds_everyone() -> None:
    """After an Asterisk restart QueueStatus shows no dynamic members: the plan re-adds all."""
    desired = desired_members(agents(), QUEUES)
    dynamic, static = current_members([{"Event": "QueueParams", "Queue": q} for q in QUEUES])
    actions = plan(desired, dynamic, managed_queues=QUEUES, static=static)
    assert len(actions) == len(desired) and all(a["Action"] == "QueueAdd" for a in actions)
