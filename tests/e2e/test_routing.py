"""Dialect routing and IVR flows on the real lab.

Callers carry no lab queue header here: the FastAGI identify/route flows and the
dialect menu decide, as in production. Where a test only needs to see the queue a
caller lands in, the caller leaves after a while and the call log's ``queue`` says
where it was.
"""

from __future__ import annotations

import asyncio

import pytest

from dialplans.sipp import CallSpec, start_calls
from tests.e2e.conftest import seed_customer, wait_queues, wait_rows

pytestmark = pytest.mark.asterisk

CITIES = [
    # (caller number as a trunk sends it, city, expected queue)
    ("02087654321", "广州", "cantonese"),
    ("075523456789", "深圳", "cantonese"),
    ("05925123456", "厦门", "minnan"),
    ("075488123456", "汕头", "minnan"),  # Teochew has no queue: falls back to Minnan
    ("02162345678", "上海", "wu"),
    ("051265123456", "苏州", "wu"),
    ("02885123456", "成都", "sichuanese"),
    ("02363123456", "重庆", "sichuanese"),
    ("13800138000", "北京手机", "mandarin"),
]


async def _calls(calls, lab_config, **kw):
    run = await asyncio.to_thread(start_calls, calls, lab_config, **kw)
    code = await asyncio.to_thread(run.wait, 300)
    assert code == 0, run.output()[-800:]
    run.cleanup()


def _final(rows):
    return bool(rows) and all(r.outcome != "in_progress" for r in rows)


async def test_callers_land_in_their_regions_queue(stack, lab_config):
    """No customer record, no digit pressed: the number's region decides."""
    calls = [CallSpec(number, f"区域-{city}") for number, city, _ in CITIES]
    # the menu times out (3 × 5 s) before routing; stay long enough to join the queue
    await _calls(calls, lab_config, hold_seconds=25, rate=10)
    for number, city, queue in CITIES:
        rows = await wait_rows(stack.db_url, _final, caller_name=f"区域-{city}")
        assert len(rows) == 1, city
        assert rows[0].queue == queue, f"{city} {number}: {rows[0].queue} ({rows[0].route_reasons})"
        assert rows[0].dialect is not None


async def test_customer_preference_beats_region_and_skips_the_menu(stack, lab_config):
    seed_customer(stack.db_url, "吴先生", "+862087650000", preferred_dialect="wu", tier="standard")
    await _calls([CallSpec("02087650000", "偏好吴语")], lab_config, hold_seconds=6)
    rows = await wait_rows(stack.db_url, _final, caller_name="偏好吴语")
    assert rows[0].queue == "wu"
    assert rows[0].route_source == "customer"
    assert not any(step.startswith("dialect:") for step in rows[0].ivr_path)  # no menu


async def test_dtmf_choice_beats_region(stack, lab_config):
    # A Guangzhou caller presses 4 (吴语) as SIP INFO while the menu waits.
    await _calls(
        [CallSpec("02087651111", "按键吴语", dtmf="4")],
        lab_config,
        hold_seconds=10,
        dtmf_gap_seconds=3.0,
    )
    rows = await wait_rows(stack.db_url, _final, caller_name="按键吴语")
    assert rows[0].queue == "wu", rows[0].route_reasons
    assert "dialect:wu" in rows[0].ivr_path


async def test_vip_arriving_later_is_answered_first(stack, lab_config, phones, stack_members):
    agent = lab_config.agent("1001")
    await stack_members("cantonese", agent.interface, agent.id)
    for n in range(3):
        seed_customer(
            stack.db_url, f"普通{n}", f"+8613500000{n:03d}", preferred_dialect="cantonese"
        )
    seed_customer(
        stack.db_url, "贵宾", "+8613599999999", preferred_dialect="cantonese", tier="vip2"
    )
    phones(agent, lab_config, ring_seconds=0.3, talk_seconds=3.0)
    ordinary = [CallSpec(f"13500000{n:03d}", f"普通来电{n}") for n in range(3)]
    first = asyncio.create_task(_calls(ordinary, lab_config, hold_seconds=60, rate=2))
    # the three ordinary callers are in: one is being served, two wait
    board = await wait_queues(stack, lambda b: b.get("cantonese", {}).get("waiting_count", 0) >= 2)
    assert board["cantonese"]["waiting_count"] >= 2, board.get("cantonese")
    await _calls([CallSpec("13599999999", "贵宾来电")], lab_config, hold_seconds=60)
    await first
    rows = await wait_rows(
        stack.db_url,
        lambda r: len([x for x in r if x.outcome == "answered"]) == 4,
        queue="cantonese",
    )
    answered = sorted((r for r in rows if r.outcome == "answered"), key=lambda r: r.answered_at)
    vip = next(r for r in answered if r.caller_name == "贵宾来电")
    later_ordinary = [
        r
        for r in answered
        if r.caller_name != "贵宾来电"
        and r.arrived_at < vip.arrived_at
        and r.answered_at > vip.answered_at
    ]
    assert vip.priority == 20
    # the VIP arrived after all three but only the one already being served went first
    assert all(r.arrived_at < vip.arrived_at for r in answered if r is not vip)
    assert len(later_ordinary) >= 1, [(r.caller_name, r.answered_at) for r in answered]
    assert answered.index(vip) <= 1


async def test_cantonese_caller_widens_to_a_bilingual_agent(
    stack, lab_config, phones, stack_members
):
    """Native agent busy; after the rule's 30 s the caller reaches the penalty-5 agent."""
    native, bilingual = lab_config.agent("1002"), lab_config.agent("1003")
    await stack_members("cantonese", native.interface, native.id, 0)
    await stack_members("cantonese", bilingual.interface, bilingual.id, 5)
    seed_customer(stack.db_url, "占线客户", "+8613511110000", preferred_dialect="cantonese")
    seed_customer(stack.db_url, "等候客户", "+8613511110001", preferred_dialect="cantonese")
    phones(native, lab_config, ring_seconds=0.2, talk_seconds=50)
    phones(bilingual, lab_config, ring_seconds=0.2, talk_seconds=2)
    busy = asyncio.create_task(
        _calls([CallSpec("13511110000", "占线")], lab_config, hold_seconds=90)
    )
    served = await wait_rows(
        stack.db_url, lambda r: any(x.answered_at is not None for x in r), caller_name="占线"
    )
    assert served and served[0].agent == native.id, served
    await _calls([CallSpec("13511110001", "等候粤语")], lab_config, hold_seconds=90)
    rows = await wait_rows(stack.db_url, _final, caller_name="等候粤语")
    row = rows[0]
    assert row.outcome == "answered"
    assert row.agent == bilingual.id
    assert row.wait_seconds == pytest.approx(30, abs=5)  # the widen rule's first step
    busy.cancel()


async def test_survey_digit_is_on_the_call_log(stack, lab_config, phones, stack_members):
    agent = lab_config.agent("1004")
    await stack_members("minnan", agent.interface, agent.id)
    seed_customer(stack.db_url, "调查客户", "+8613522220000", preferred_dialect="minnan")
    phones(agent, lab_config, ring_seconds=0.2, talk_seconds=1.0)
    # digits every 2.5 s: the ones during the talk go to the agent, one lands in the survey
    await _calls(
        [CallSpec("13522220000", "满意度", dtmf="2222")],
        lab_config,
        hold_seconds=30,
        dtmf_gap_seconds=2.5,
    )
    rows = await wait_rows(
        stack.db_url,
        lambda r: _final(r) and r[0].survey_score is not None,
        caller_name="满意度",
        timeout=30,
    )
    assert rows[0].outcome == "answered"
    assert rows[0].survey_score == 2


async def test_account_manager_rings_first_then_the_queue(stack, lab_config, phones, stack_members):
    manager, queue_agent = lab_config.agent("1004"), lab_config.agent("1001")
    await stack_members("mandarin", queue_agent.interface, queue_agent.id)
    seed_customer(stack.db_url, "大客户", "+8613533330000", preferred_dialect="mandarin",
                  account_manager=manager.id)  # fmt: skip
    seed_customer(stack.db_url, "大客户二", "+8613533330001", preferred_dialect="mandarin",
                  account_manager=manager.id)  # fmt: skip
    manager_phone = phones(manager, lab_config, ring_seconds=1.0, talk_seconds=2.0)
    phones(queue_agent, lab_config, ring_seconds=0.3, talk_seconds=2.0)
    await _calls([CallSpec("13533330000", "找客户经理")], lab_config, hold_seconds=30)
    rows = await wait_rows(stack.db_url, _final, caller_name="找客户经理")
    assert rows[0].outcome == "answered"
    assert rows[0].agent == manager.id  # the manager answered, before any queue
    assert rows[0].queue is None
    assert any("account manager" in r.lower() for r in rows[0].route_reasons), rows[0].route_reasons
    assert len(manager_phone.invites()) == 1
    # the manager busy (rejects): after that the queue answers
    manager_phone.cleanup()
    phones(manager, lab_config, behaviour="reject", ring_seconds=0.5)
    await _calls([CallSpec("13533330001", "经理忙")], lab_config, hold_seconds=30)
    rows = await wait_rows(stack.db_url, _final, caller_name="经理忙")
    assert rows[0].outcome == "answered"
    assert rows[0].agent == queue_agent.id
    assert rows[0].queue == "mandarin"
