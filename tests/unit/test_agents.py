"""The agent directory (both databases) and queue-membership sync against a fake Asterisk.

The fake keeps real queue state: QueueStatus reports it, QueueAdd/QueueRemove/QueuePenalty
change it and refuse what Asterisk refuses ("Already there", "Not there", static members),
and a restart forgets dynamic members and drops the link, as a real Asterisk restart does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hotline.agents.directory import (
    InterfaceInUseError,
    InvalidAgentError,
    load_agents,
    load_directory,
    parse_skill,
    parse_skills,
    remove_agent,
    save_agent,
)
from hotline.agents.membership import MembershipSyncError, membership_login_hook, sync_membership
from hotline.ami.bridge import AMIBridge
from hotline.db.models import Agent
from hotline.db.session import make_engine, session_factory, upgrade
from hotline.routing.skills import AgentSkills, Skill
from tests.unit.test_ami_bridge import SECRET, USER, FakeAMI, frame

QUEUES = ("mandarin", "cantonese", "minnan")
QUEUE_ACTIONS = {"QueueAdd", "QueueRemove", "QueuePenalty"}


class FakeAsterisk(FakeAMI):
    """FakeAMI plus queues: ``members[(queue, interface)] = (name, penalty, membership)``."""

    def __init__(self, queues: tuple[str, ...] = (*QUEUES, "sales")) -> None:
        super().__init__()
        self.channels = []
        self.queues = set(queues)
        self.members: dict[tuple[str, str], tuple[str, int, str]] = {}
        self.fail_adds: set[tuple[str, str]] = set()
        self.refuse_status = False

    def queue_actions(self) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action") in QUEUE_ACTIONS]

    def dynamic(self) -> dict[tuple[str, str], tuple[str, int]]:
        return {k: (n, p) for k, (n, p, m) in self.members.items() if m == "dynamic"}

    async def restart(self) -> None:
        """Asterisk restarts: dynamic members are gone and every AMI link drops."""
        self.members = {k: v for k, v in self.members.items() if v[2] == "static"}
        for writer in self.writers:
            writer.close()

    async def _answer(self, number: int, action: dict[str, str], writer: Any) -> bool:
        name, action_id = action.get("Action"), action.get("ActionID", "")
        queue, interface = action.get("Queue", ""), action.get("Interface", "")
        key = (queue, interface)

        def reply(ok: bool, message: str) -> None:
            response = "Success" if ok else "Error"
            writer.write(frame(Response=response, ActionID=action_id, Message=message))

        if name == "QueueStatus":
            if self.refuse_status:
                reply(False, "Permission denied")
                return True
            data = frame(
                Response="Success",
                ActionID=action_id,
                EventList="start",
                Message="Queue status will follow",
            )
            items = 0
            for q in sorted(self.queues):
                data += frame(Event="QueueParams", Queue=q, Max="0", ActionID=action_id)
                items += 1
                for (mq, iface), (member, penalty, membership) in sorted(self.members.items()):
                    if mq != q:
                        continue
                    data += frame(
                        Event="QueueMember",
                        Queue=q,
                        Name=member,
                        Location=iface,
                        StateInterface=iface,
                        Membership=membership,
                        Penalty=str(penalty),
                        Paused="0",
                        ActionID=action_id,
                    )
                    items += 1
            data += frame(
                Event="QueueStatusComplete",
                ActionID=action_id,
                EventList="Complete",
                ListItems=str(items),
            )
            writer.write(data)
        elif name == "QueueAdd":
            if queue not in self.queues:
                reply(False, "Unable to add interface to queue: No such queue")
            elif key in self.members:
                reply(False, "Unable to add interface: Already there")
            elif key in self.fail_adds:
                reply(False, "Out of memery")
            else:
                penalty = int(action.get("Penalty", "0"))
                self.members[key] = (action.get("MemberName", interface), penalty, "dynamic")
                reply(True, "Added interface to queue")
        elif name == "QueueRemove":
            if key not in self.members:
                reply(False, "Unable to remove interface: Not there")
            elif self.members[key][2] != "dynamic":
                reply(False, "Unable to remove interface: Not Dynamic")
            else:
                del self.members[key]
                reply(True, "Removed interface from queue")
        elif name == "QueuePenalty":
            if key not in self.members:
                reply(False, "Invalid interface, queuename or penalty")
            else:
                member, _, membership = self.members[key]
                self.members[key] = (member, int(action["Penalty"]), membership)
                reply(True, "Interface penalty set successfully")
        else:
            return await super()._answer(number, action, writer)
        return True


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    server = FakeAsterisk()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def bridge(asterisk: FakeAsterisk) -> AsyncIterator[AMIBridge]:
    b = AMIBridge(
        "127.0.0.1", asterisk.port, USER, SECRET, ping_interval=30.0, reconnect_delay=0.05
    )
    await b.start()
    assert await b.wait_connected(2)
    yield b
    await b.stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``predicate`` (the hook's report is set after the fake's last notification)."""

    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(loop(), timeout)


def agent(agent_id: str, interface: str, **skills: str) -> AgentSkills:
    return AgentSkills(agent_id=agent_id, interface=interface, skills=skills)


TEAM = [
    agent("1001", "PJSIP/agent-1001", cantonese="native", mandarin="good"),
    agent("1002", "PJSIP/agent-1002", mandarin="native", cantonese="fallback"),
    agent("1003", "PJSIP/agent-1003", minnan="native", shanghainese="native"),  # no wu queue
]


# -- validation ------------------------------------------------------------------------


def test_parse_skill_normalises_and_refuses_unknown_levels() -> None:
    assert parse_skill(" Cantonese:Native ") == ("cantonese", Skill.NATIVE)
    assert parse_skills(["minnan:good", "wu:fallback"]) == {
        "minnan": Skill.GOOD,
        "wu": Skill.FALLBACK,
    }
    with pytest.raises(InvalidAgentError, match=r"unknown level 'fluent'.*native, good, fallback"):
        parse_skill("cantonese:fluent")
    for bad in ["cantonese", ":native", "cantonese:", "粤语:native", "can tonese:good", "a:b:c"]:
        with pytest.raises(InvalidAgentError):
            parse_skill(bad)
    with pytest.raises(InvalidAgentError, match="more than once"):
        parse_skills(["cantonese:native", "Cantonese:good"])


# -- the directory on both databases ---------------------------------------------------


def test_directory_round_trip(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            row, created = save_agent(
                session,
                "1001",
                interface=" PJSIP/agent-1001 ",
                skills=["Cantonese:NATIVE", "mandarin:good"],
                name="陈美玲",
            )
            assert created and row.interface == "PJSIP/agent-1001"
            _, created = save_agent(
                session, "1002", interface="PJSIP/agent-1002", skills=["mandarin:native"]
            )
            assert created
        with sessions() as session:
            stored = session.get(Agent, "1001")
            assert stored is not None
            assert stored.skills == ["cantonese:native", "mandarin:good"]
            assert stored.name == "陈美玲" and stored.created_at is not None
            assert load_agents(session) == [
                agent("1001", "PJSIP/agent-1001", cantonese="native", mandarin="good"),
                agent("1002", "PJSIP/agent-1002", mandarin="native"),
            ]
            # replace (upsert): new skills, same id
            _, created = save_agent(
                session, "1001", interface="PJSIP/agent-1001", skills=["cantonese:good"]
            )
            assert not created
            with pytest.raises(InterfaceInUseError, match="agent 1001"):
                save_agent(session, "1003", interface="PJSIP/agent-1001", skills=[])
            with pytest.raises(InvalidAgentError, match="unknown level"):
                save_agent(session, "1003", interface="PJSIP/agent-1003", skills=["wu:expert"])
            with pytest.raises(InvalidAgentError):
                save_agent(session, "bad\r\nAction: Logoff", interface="PJSIP/x", skills=[])
            with pytest.raises(InvalidAgentError):
                save_agent(session, "1003", interface="PJSIP/x\r\nAction: Logoff", skills=[])
        with sessions() as session:
            assert [a.skills for a in load_agents(session)] == [
                {"cantonese": Skill.GOOD},
                {"mandarin": Skill.NATIVE},
            ]
            assert session.get(Agent, "1003") is None
            assert remove_agent(session, "1002") is True
            assert remove_agent(session, "1002") is False
        with sessions() as session:
            assert [a.agent_id for a in load_agents(session)] == ["1001"]
    finally:
        engine.dispose()


def test_invalid_stored_skills_are_reported_apart(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        session.add(Agent(id="1001", interface="PJSIP/agent-1001", skills=["cantonese:native"]))
        session.add(Agent(id="1009", interface="PJSIP/agent-1009", skills=["cantonese:fluent"]))
    with Session(engine) as session:
        good, bad = load_directory(session)
    engine.dispose()
    assert [a.agent_id for a in good] == ["1001"]
    assert [row.id for row in bad] == ["1009"]


# -- sync against the fake Asterisk ----------------------------------------------------


async def test_fresh_asterisk_gets_queueadds_with_penalties(
    asterisk: FakeAsterisk, bridge: AMIBridge
) -> None:
    report = await sync_membership(bridge, TEAM, QUEUES)
    assert report.ok and report.applied == report.planned == 5 and report.failed == 0
    assert asterisk.dynamic() == {
        ("cantonese", "PJSIP/agent-1001"): ("1001", 0),
        ("mandarin", "PJSIP/agent-1001"): ("1001", 5),
        ("cantonese", "PJSIP/agent-1002"): ("1002", 10),
        ("mandarin", "PJSIP/agent-1002"): ("1002", 0),
        ("minnan", "PJSIP/agent-1003"): ("1003", 0),
    }
    adds = asterisk.queue_actions()
    assert {a["Action"] for a in adds} == {"QueueAdd"}
    first = next(
        a for a in adds if a["Interface"] == "PJSIP/agent-1002" and a["Queue"] == "cantonese"
    )
    assert (first["MemberName"], first["Penalty"]) == ("1002", "10")


async def test_second_sync_is_a_no_op(asterisk: FakeAsterisk, bridge: AMIBridge) -> None:
    await sync_membership(bridge, TEAM, QUEUES)
    sent = len(asterisk.queue_actions())
    report = await sync_membership(bridge, TEAM, QUEUES)
    assert (report.planned, report.applied, report.current) == (0, 0, 5)
    assert len(asterisk.queue_actions()) == sent


async def test_changed_skill_sends_queuepenalty(asterisk: FakeAsterisk, bridge: AMIBridge) -> None:
    await sync_membership(bridge, TEAM, QUEUES)
    asterisk.actions.clear()
    changed = [
        agent("1001", "PJSIP/agent-1001", cantonese="native", mandarin="fallback"),
        *TEAM[1:],
    ]
    report = await sync_membership(bridge, changed, QUEUES)
    assert report.applied == 1
    assert asterisk.queue_actions() == [
        {
            "Action": "QueuePenalty",
            "ActionID": asterisk.queue_actions()[0]["ActionID"],
            "Queue": "mandarin",
            "Interface": "PJSIP/agent-1001",
            "Penalty": "10",
        }
    ]
    assert asterisk.dynamic()[("mandarin", "PJSIP/agent-1001")] == ("1001", 10)


async def test_removed_agent_sends_queueremove(asterisk: FakeAsterisk, bridge: AMIBridge) -> None:
    await sync_membership(bridge, TEAM, QUEUES)
    asterisk.actions.clear()
    report = await sync_membership(bridge, TEAM[1:], QUEUES)
    assert report.applied == 2
    assert sorted((a["Action"], a["Queue"], a["Interface"]) for a in asterisk.queue_actions()) == [
        ("QueueRemove", "cantonese", "PJSIP/agent-1001"),
        ("QueueRemove", "mandarin", "PJSIP/agent-1001"),
    ]
    assert not any(iface == "PJSIP/agent-1001" for _, iface in asterisk.dynamic())


async def test_failed_queueadd_is_counted_and_the_rest_applied(
    asterisk: FakeAsterisk, bridge: AMIBridge
) -> None:
    asterisk.fail_adds = {("cantonese", "PJSIP/agent-1001")}
    report = await sync_membership(bridge, TEAM, QUEUES)
    assert (report.planned, report.applied, report.failed) == (5, 4, 1)
    assert not report.ok
    assert report.failures == [
        {
            "action": "QueueAdd",
            "queue": "cantonese",
            "interface": "PJSIP/agent-1001",
            "message": "Out of memery",
        }
    ]
    assert len(asterisk.dynamic()) == 4
    asterisk.fail_adds.clear()  # the next sync retries only what is missing
    retry = await sync_membership(bridge, TEAM, QUEUES)
    assert (retry.planned, retry.applied, retry.failed) == (1, 1, 0)


async def test_static_members_and_other_queues_are_left_alone(
    asterisk: FakeAsterisk, bridge: AMIBridge
) -> None:
    asterisk.members = {
        ("sales", "PJSIP/agent-1001"): ("1001", 3, "dynamic"),  # not a managed queue
        ("mandarin", "PJSIP/boss"): ("boss", 0, "static"),  # queues.conf
        ("minnan", "PJSIP/old-9"): ("9", 0, "dynamic"),  # stale: must go
    }
    report = await sync_membership(bridge, TEAM, QUEUES)
    assert report.failed == 0 and report.static == 1
    touched = {(a["Queue"], a["Interface"]) for a in asterisk.queue_actions()}
    assert ("sales", "PJSIP/agent-1001") not in touched
    assert ("mandarin", "PJSIP/boss") not in touched
    assert ("minnan", "PJSIP/old-9") in touched
    assert asterisk.members[("sales", "PJSIP/agent-1001")] == ("1001", 3, "dynamic")
    assert asterisk.members[("mandarin", "PJSIP/boss")] == ("boss", 0, "static")


async def test_leave_alone_keeps_an_agents_membership(
    asterisk: FakeAsterisk, bridge: AMIBridge
) -> None:
    await sync_membership(bridge, TEAM, QUEUES)
    asterisk.actions.clear()
    report = await sync_membership(bridge, TEAM[1:], QUEUES, leave_alone={"PJSIP/agent-1001"})
    assert report.planned == 0 and asterisk.queue_actions() == []


async def test_unreadable_membership_changes_nothing(
    asterisk: FakeAsterisk, bridge: AMIBridge
) -> None:
    asterisk.refuse_status = True
    with pytest.raises(MembershipSyncError, match="Permission denied"):
        await sync_membership(bridge, TEAM, QUEUES)
    assert asterisk.queue_actions() == []


async def test_login_hook_reapplies_after_asterisk_restart(
    asterisk: FakeAsterisk, sqlite_url: str
) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        save_agent(session, "1001", interface="PJSIP/agent-1001", skills=["cantonese:native"])
        save_agent(session, "1002", interface="PJSIP/agent-1002", skills=["cantonese:good"])
    hook = membership_login_hook(sessions, QUEUES)
    b = AMIBridge(
        "127.0.0.1", asterisk.port, USER, SECRET, ping_interval=30.0, reconnect_delay=0.05
    )
    b.add_login_hook(hook)
    expected = {
        ("cantonese", "PJSIP/agent-1001"): ("1001", 0),
        ("cantonese", "PJSIP/agent-1002"): ("1002", 5),
    }
    await b.start()
    try:
        await eventually(lambda: hook.last_report is not None)
        assert asterisk.dynamic() == expected
        assert hook.runs == 1

        first = hook.last_report

        await asterisk.restart()
        assert asterisk.dynamic() == {}
        await eventually(lambda: hook.last_report is not first)
        assert asterisk.dynamic() == expected
        assert hook.runs == 2 and b.stats()["reconnects"] == 1
        assert hook.last_report is not None
        assert (hook.last_report.current, hook.last_report.applied) == (0, 2)
    finally:
        await b.stop()
        engine.dispose()


async def test_login_hook_skips_the_sync_when_the_database_is_down(
    asterisk: FakeAsterisk, bridge: AMIBridge
) -> None:
    await sync_membership(bridge, TEAM, QUEUES)
    asterisk.actions.clear()

    def broken_sessions() -> Session:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    hook = membership_login_hook(broken_sessions, QUEUES)
    await hook(bridge)
    # An empty directory would have removed everyone; a skipped sync removes no one.
    assert asterisk.queue_actions() == []
    assert len(asterisk.dynamic()) == 5
    assert hook.last_error == "database: OperationalError"


async def test_link_drop_mid_sync_counts_the_rest_as_not_sent() -> None:
    class FlakyBridge:
        """Answers QueueStatus (empty) and one action, then reports the link down."""

        def __init__(self) -> None:
            self.sent: list[dict[str, str]] = []

        @property
        def connected(self) -> bool:
            return len(self.sent) < 2

        async def send_action(self, action: Any, as_list: Any = None, *, timeout: float = 10):
            self.sent.append(dict(action))
            await asyncio.sleep(0)
            if action["Action"] == "QueueStatus":
                return [{"Response": "Success"}, {"Event": "QueueStatusComplete"}]
            return {"Response": "Success", "Message": "Added interface to queue"}

    flaky = FlakyBridge()
    report = await sync_membership(flaky, TEAM, QUEUES)
    assert (report.planned, report.applied, report.not_sent) == (5, 1, 4)
    assert not report.ok


# -- the CLI ---------------------------------------------------------------------------


def test_cli_add_list_remove(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from hotline.agents.cli import agents_app

    monkeypatch.setenv("HOTLINE_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    args = ["add", "1001", "--interface", "PJSIP/agent-1001", "--skill", "cantonese:native"]
    added = runner.invoke(agents_app, [*args, "--skill", "mandarin:good", "--name", "陈美玲"])
    assert added.exit_code == 0, added.output
    assert "added 1001 PJSIP/agent-1001 cantonese:native mandarin:good" in added.output
    updated = runner.invoke(agents_app, args)
    assert updated.exit_code == 0 and "updated 1001" in updated.output

    bad = runner.invoke(agents_app, ["add", "1002", "--interface", "PJSIP/b", "--skill", "wu:meh"])
    assert bad.exit_code == 2
    assert "unknown level 'meh'" in bad.output
    clash = runner.invoke(agents_app, ["add", "1002", "--interface", "PJSIP/agent-1001"])
    assert clash.exit_code == 2 and "already belongs to agent 1001" in clash.output

    listed = runner.invoke(agents_app, ["list", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output) == [
        {
            "id": "1001",
            "name": "",
            "interface": "PJSIP/agent-1001",
            "skills": ["cantonese:native"],
        }
    ]
    assert runner.invoke(agents_app, ["remove", "1001"]).exit_code == 0
    missing = runner.invoke(agents_app, ["remove", "1001"])
    assert missing.exit_code == 1 and "no agent 1001" in missing.output
