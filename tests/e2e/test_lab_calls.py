"""End to end on the real lab: SIPp calls through Asterisk 22, the bridge, the call log.

Each test owns one queue and one set of agents' phones, places real SIP calls, and
checks the call-log rows the running service wrote, against the timings the SIPp
scenarios were given.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

import pytest

from dialplans.sipp import CallSpec, place_calls, start_calls
from tests.e2e.conftest import seed_customer, wait_rows

pytestmark = pytest.mark.asterisk


async def test_known_caller_answered(service, lab_config, db_url, phones, members):
    """(a) Rings 2 s, talks 3 s: one row, answered, right agent, name intact, customer set."""
    customer_id = seed_customer(db_url, "张伟", "+8613800138000", tier="vip1")
    agent = lab_config.agent("1001")
    await members("cantonese", agent.interface, agent.id)
    phone = phones(agent, lab_config, ring_seconds=2.0, talk_seconds=3.0)
    # The number arrives in national form, as many trunks send it.
    run = await asyncio.to_thread(
        place_calls,
        [CallSpec("13800138000", "张伟客户", queue="cantonese")],
        lab_config,
        hold_seconds=30,
    )
    assert run.proc.returncode == 0, run.output()[-800:]
    rows = await wait_rows(
        db_url, lambda r: r and r[0].outcome != "in_progress", caller_name="张伟客户"
    )
    assert len(rows) == 1
    row = rows[0]
    assert row.outcome == "answered"
    assert row.agent == "1001"
    assert row.agent_interface == agent.interface
    assert row.queue == "cantonese"
    assert row.caller_e164 == "+8613800138000"
    assert row.caller_name == "张伟客户"
    assert row.customer_id == customer_id
    assert row.wait_seconds == pytest.approx(2.0, abs=1.0)
    assert row.talk_seconds == pytest.approx(3.0, abs=1.0)
    assert row.arrived_at <= row.queued_at <= row.answered_at <= row.ended_at
    assert len(phone.invites()) == 1  # the agent's phone really rang once


async def test_caller_hangs_up_in_queue_is_abandoned(service, lab_config, db_url, phones, members):
    """(b) The agent never answers; the caller gives up after 7 s: abandoned."""
    agent = lab_config.agent("1002")
    await members("minnan", agent.interface, agent.id)
    phones(agent, lab_config, behaviour="noanswer")
    run = await asyncio.to_thread(
        place_calls,
        [CallSpec("059212345678", "陈美玲", queue="minnan")],
        lab_config,
        hold_seconds=7,
    )
    assert run.proc.returncode == 0, run.output()[-800:]
    rows = await wait_rows(
        db_url, lambda r: r and r[0].outcome != "in_progress", caller_name="陈美玲"
    )
    assert [r.outcome for r in rows] == ["abandoned"]
    assert rows[0].agent is None
    row = rows[0]
    # the caller hung up 7 s after the answer; the wait runs from joining the queue
    # (after the IVR's welcome) to that hang-up
    assert (row.ended_at - row.arrived_at).total_seconds() == pytest.approx(7.0, abs=1.0)
    assert row.wait_seconds == pytest.approx(
        (row.ended_at - row.queued_at).total_seconds(), abs=0.5
    )
    assert row.wait_seconds > 3
    assert row.caller_e164 == "+8659212345678"


async def test_queue_timeout_is_not_an_abandon(service, lab_config, db_url):
    """(c) The queue gives up after 3 s while the caller is still there: timeout."""
    run = await asyncio.to_thread(
        place_calls,
        [CallSpec("02887654321", "李四", queue="sichuanese", queue_timeout=3)],
        lab_config,
        hold_seconds=30,
    )
    assert run.proc.returncode == 0, run.output()[-800:]
    rows = await wait_rows(
        db_url, lambda r: r and r[0].outcome != "in_progress", caller_name="李四"
    )
    assert [r.outcome for r in rows] == ["timeout"]
    assert rows[0].queue_status == "TIMEOUT"
    assert rows[0].wait_seconds == pytest.approx(3.0, abs=1.0)


async def test_ivr_only_call(service, lab_config, db_url):
    run = await asyncio.to_thread(
        place_calls,
        [CallSpec("13700000009", "IVR客户")],
        lab_config,
        hold_seconds=30,
        exten=lab_config.ivr_only_exten,
    )
    assert run.proc.returncode == 0, run.output()[-800:]
    rows = await wait_rows(
        db_url, lambda r: r and r[0].outcome != "in_progress", caller_name="IVR客户"
    )
    assert [r.outcome for r in rows] == ["ivr_only"]
    assert rows[0].queue is None


async def test_fifty_concurrent_calls_none_lost_none_doubled(
    service, lab_config, db_url, phones, members
):
    """(d) 50 calls at once over 4 agents: 50 rows, one per call, all answered."""
    for agent in lab_config.agents:
        await members("wu", agent.interface, agent.id)
        phones(agent, lab_config, ring_seconds=0.2, talk_seconds=0.5)
    numbers = [f"1391000{n:04d}" for n in range(50)]
    calls = [CallSpec(num, f"并发{n}", queue="wu") for n, num in enumerate(numbers)]
    run = await asyncio.to_thread(start_calls, calls, lab_config, hold_seconds=120, rate=50)
    code = await asyncio.to_thread(run.wait, 180)
    assert code == 0, run.output()[-800:]

    def done(rows):
        mine = [r for r in rows if r.caller_number in set(numbers)]
        return len(mine) >= 50 and all(r.outcome != "in_progress" for r in mine)

    rows = await wait_rows(db_url, done, queue="wu")
    mine = [r for r in rows if r.caller_number in set(numbers)]
    assert len(mine) == 50
    assert len({r.linkedid for r in mine}) == 50
    assert sorted(r.caller_number for r in mine) == sorted(numbers)
    assert {r.outcome for r in mine} == {"answered"}
    assert {r.agent for r in mine} <= {a.id for a in lab_config.agents}
    run.cleanup()


async def test_independent_ami_client_sees_the_same_calls(
    service, lab_config, db_url, phones, members
):
    """asterisk-ami, on its own socket and parser, agrees with the bridge on ids and names."""
    from asterisk.ami import AMIClient

    wanted = {"QueueCallerJoin", "AgentCalled", "AgentConnect"}
    seen_by_bridge: dict[str, set[tuple[str, str]]] = defaultdict(set)
    seen_by_other: dict[str, set[tuple[str, str]]] = defaultdict(set)
    lock = threading.Lock()

    def from_bridge(event) -> None:
        if event.name in wanted:
            seen_by_bridge[event.name].add((event.linkedid, event.get("CallerIDName")))

    def from_other(event, **_kw) -> None:
        with lock:
            seen_by_other[event.name].add(
                (event.keys.get("Linkedid", ""), event.keys.get("CallerIDName", ""))
            )

    service.bridge.subscribe(from_bridge)
    client = AMIClient(address=lab_config.ami_host, port=lab_config.ami_port, timeout=None)
    client.login(username=lab_config.ami_user, secret=lab_config.ami_secret).response  # noqa: B018
    client.add_event_listener(from_other, white_list=list(wanted))
    try:
        agent = lab_config.agent("1003")
        await members("mandarin", agent.interface, agent.id)
        phones(agent, lab_config, ring_seconds=0.5, talk_seconds=1.0)
        names = ["欧阳娜娜", "司马光", "诸葛亮"]
        calls = [CallSpec(f"1350000000{i}", name, queue="mandarin") for i, name in enumerate(names)]
        run = await asyncio.to_thread(start_calls, calls, lab_config, hold_seconds=60, rate=5)
        assert await asyncio.to_thread(run.wait, 90) == 0, run.output()[-800:]
        rows = await wait_rows(
            db_url,
            lambda r: (
                len([x for x in r if x.caller_name in names and x.outcome == "answered"]) == 3
            ),
            queue="mandarin",
        )
    finally:
        client.logoff()
        client.disconnect()
    for name in wanted:
        with lock:
            other = set(seen_by_other[name])
        assert {n for _, n in seen_by_bridge[name]} >= set(names), name
        assert seen_by_bridge[name] == other, name
    logged = {(r.linkedid, r.caller_name) for r in rows if r.caller_name in names}
    assert {x for x in seen_by_other["AgentConnect"] if x[1] in names} == logged
