"""Supervisors on the real lab: the wallboard's numbers are Asterisk's numbers.

After a run of mixed calls, every count on ``/api/queues`` must equal the count computed
independently from Asterisk's own ``queue_log`` file and from the call log. The page
must show a waiting caller within a second; a supervisor can listen in on a live call.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from dialplans.sipp import CallSpec, start_agent, start_calls
from hotline.live.queue_log import count_queue_log
from tests.e2e.conftest import call_rows, wait_queues, wait_rows

pytestmark = [pytest.mark.asterisk]

OUTCOMES = ("answered", "abandoned", "short_abandoned", "timeout")


async def _calls(calls, lab_config, **kw):
    run = await asyncio.to_thread(start_calls, calls, lab_config, **kw)
    assert await asyncio.to_thread(run.wait, 120) == 0, run.output()[-600:]
    run.cleanup()


def _auth(stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.tokens['supervisor']}"}


async def test_wallboard_equals_queue_log_equals_call_log(stack, lab_config, lab, phones,
                                                          stack_members):  # fmt: skip
    t0 = int(time.time())
    answering = lab_config.agent("1001")
    await stack_members("sichuanese", answering.interface, answering.id)
    phones(answering, lab_config, ring_seconds=0.5, talk_seconds=1.0)
    # sichuanese: two answered; wu (no members, callers wait): abandoned, short, timeout
    await asyncio.gather(
        _calls([CallSpec(f"1380000100{n}", f"墙答{n}", queue="sichuanese") for n in range(2)],
               lab_config, hold_seconds=30, rate=1),
        _calls([CallSpec("13800001100", "墙弃", queue="wu")], lab_config, hold_seconds=9),
        _calls([CallSpec("13800001101", "墙短", queue="wu")], lab_config, hold_seconds=2),
        _calls([CallSpec("13800001102", "墙超", queue="wu", queue_timeout=4)], lab_config,
               hold_seconds=30),
    )  # fmt: skip
    names = {"墙答0", "墙答1", "墙弃", "墙短", "墙超"}

    def all_final(rows) -> bool:
        done = [x for x in rows if x.caller_name in names and x.outcome != "in_progress"]
        return len(done) == 5

    await wait_rows(stack.db_url, all_final)

    def settled(board: dict[str, dict[str, Any]]) -> bool:
        # the published snapshot trails the events by its throttle (0.5 s)
        counts = {q: board.get(q, {}).get("counts", {}) for q in ("sichuanese", "wu")}
        return (
            counts["sichuanese"].get("answered", 0) == 2
            and sum(counts["wu"].get(o, 0) for o in ("abandoned", "short_abandoned", "timeout"))
            == 3
        )

    board = await wait_queues(stack, settled, timeout=10)

    lines = [line for line in lab.queue_log().read_text().splitlines()
             if line.split("|", 1)[0].isdigit() and int(line.split("|", 1)[0]) >= t0]  # fmt: skip
    from_log = count_queue_log(lines)

    rows = [r for r in await asyncio.to_thread(call_rows, stack.db_url) if r.caller_name in names]
    from_calls = Counter((r.queue, r.outcome) for r in rows)

    expected = {
        "sichuanese": {"answered": 2, "abandoned": 0, "short_abandoned": 0, "timeout": 0},
        "wu": {"answered": 0, "abandoned": 1, "short_abandoned": 1, "timeout": 1},
    }
    for queue, want in expected.items():
        for outcome in OUTCOMES:
            wallboard = board[queue]["counts"].get(outcome, 0)
            queue_log = from_log[queue].counts.get(outcome, 0) if queue in from_log else 0
            call_log = from_calls[(queue, outcome)]
            assert wallboard == queue_log == call_log == want[outcome], (
                queue, outcome, wallboard, queue_log, call_log,
            )  # fmt: skip
    # derived figures agree too
    sl_log = from_log["sichuanese"]
    assert board["sichuanese"]["service_level"] == pytest.approx(sl_log.service_level)
    assert board["sichuanese"]["asa"] == pytest.approx(sl_log.asa, abs=1.0)  # log has whole s
    assert board["wu"]["abandon_rate"] == pytest.approx(from_log["wu"].abandon_rate)
    assert board["wu"]["abandon_rate"] == pytest.approx(1 / 2)  # 1 abandon / (1 + 1 timeout)


async def test_waiting_caller_on_the_wallboard_within_a_second(stack, lab_config, browser):
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await page.goto(f"{stack.base_url}/wallboard")
    await page.fill("#token", stack.tokens["supervisor"])
    await page.click("#signin button")
    await page.wait_for_selector("[data-queue='minnan']", timeout=10000)
    run = await asyncio.to_thread(
        start_calls, [CallSpec("13800001200", "墙等", queue="minnan")], lab_config, hold_seconds=6
    )
    joined = asyncio.get_running_loop().create_future()

    def on_event(event) -> None:
        mine = event.name == "QueueCallerJoin" and event.get("CallerIDName") == "墙等"
        if mine and not joined.done():
            joined.set_result(event.time)

    stack.service.bridge.subscribe(on_event)
    join_at = await asyncio.wait_for(joined, 15)
    await page.wait_for_function(
        "document.querySelector(\"[data-queue='minnan'] .waiting\")?.textContent.includes('墙等')",
        timeout=5000,
    )
    shown_at = time.time()
    assert shown_at - join_at < 1.0, f"shown {shown_at - join_at:.3f} s after joining"
    await page.screenshot(path="docs/screenshots/wallboard.png", full_page=True)
    await asyncio.to_thread(run.wait, 30)
    run.cleanup()


async def test_supervisor_listens_to_a_live_call_and_agents_cannot(stack, lab_config, phones,
                                                                   stack_members):  # fmt: skip
    agent, supervisor_phone = lab_config.agent("1002"), lab_config.agent("1004")
    await stack_members("cantonese", agent.interface, agent.id)
    phones(agent, lab_config, ring_seconds=0.3, talk_seconds=12)
    sup = start_agent(supervisor_phone, lab_config, ring_seconds=0.2, talk_seconds=5)
    spies: list[str] = []
    stack.service.bridge.subscribe(
        lambda e: spies.append(e.get("SpyeeChannel")) if e.name == "ChanSpyStart" else None
    )
    run = await asyncio.to_thread(
        start_calls, [CallSpec("13800001300", "监听", queue="cantonese")], lab_config,
        hold_seconds=40,
    )  # fmt: skip
    try:
        rows = await wait_rows(stack.db_url, lambda r: r and r[0].agent == agent.id,
                               caller_name="监听")  # fmt: skip
        linkedid = rows[0].linkedid
        body = {"mode": "listen", "supervisor_phone": supervisor_phone.interface}
        async with httpx.AsyncClient(base_url=stack.base_url) as http:
            refused = await http.post(
                f"/api/calls/{linkedid}/spy", json=body,
                headers={"Authorization": f"Bearer {stack.tokens[agent.id]}"},
            )  # fmt: skip
            assert refused.status_code == 403
            deadline = time.monotonic() + 10  # the live snapshot follows AMI within ~0.5 s
            while time.monotonic() < deadline:
                agents = (await http.get("/api/agents", headers=_auth(stack))).json()["agents"]
                on_call = {a.get("agent_id") for a in agents if a.get("state") == "on_call"}
                if agent.id in on_call:
                    break
                await asyncio.sleep(0.2)
            r = await http.post(f"/api/calls/{linkedid}/spy", json=body, headers=_auth(stack))
            assert r.status_code in (200, 202), r.text
        deadline = time.monotonic() + 10
        while not spies and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert spies and spies[0].startswith(agent.interface + "-"), spies
    finally:
        sup.cleanup()
        await asyncio.to_thread(run.wait, 60)
        run.cleanup()


async def test_call_back_an_abandoned_caller_rings_the_agent_then_the_customer(
    stack, lab_config, phones, stack_members
):
    from dialplans.config import LabAgent

    agent = lab_config.agent("1003")
    await stack_members("mandarin", agent.interface, agent.id)  # known to the wallboard
    results: list[str] = []
    stack.service.bridge.subscribe(
        lambda e: (
            results.append(e.get("Status"))
            if e.name == "UserEvent" and e.get("UserEvent") == "CallbackResult"
            else None
        )
    )
    await _calls([CallSpec("13800001400", "回拨客户", queue="wu")], lab_config, hold_seconds=7)
    rows = await wait_rows(stack.db_url, lambda r: r and r[0].outcome == "abandoned",
                           caller_name="回拨客户")  # fmt: skip
    linkedid = rows[0].linkedid
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = (await http.get("/api/abandoned", headers=_auth(stack))).json()
            if linkedid in json_ids(listed):
                break
            await asyncio.sleep(0.2)
        assert linkedid in json_ids(listed), listed
        agent_phone = phones(agent, lab_config, ring_seconds=0.3, talk_seconds=4)
        customer = phones(LabAgent(id="customer", port=lab_config.trunk_out_port), lab_config,
                          ring_seconds=0.5, talk_seconds=2)  # fmt: skip
        r = await http.post(f"/api/abandoned/{linkedid}/callback", json={"agent_id": agent.id},
                            headers=_auth(stack))  # fmt: skip
        assert r.status_code in (200, 202), r.text
    deadline = time.monotonic() + 20
    while "ANSWER" not in results and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert results == ["ANSWER"]
    assert len(agent_phone.invites()) == 1  # the agent's phone rang first...
    assert len(customer.invites()) == 1  # ...then the customer's
    assert min(agent_phone.invites().values()) < min(customer.invites().values())


def json_ids(listed: dict) -> set[str]:
    items = listed.get("items") or listed.get("abandoned") or []
    return {i.get("linkedid") for i in items}
