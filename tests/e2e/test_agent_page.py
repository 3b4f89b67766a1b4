"""The agent's page in headless Chromium, driven by a real lab call.

The page signs in with an agent token, receives the pop over its WebSocket before the
agent's SIPp phone rings, shows the customer as text (a name full of markup must not
run), and its wrap-up form lands on the call log. A screenshot goes to docs/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialplans.sipp import CallSpec, start_calls
from tests.e2e.conftest import seed_customer, wait_rows

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
EVIL = '<img src=x onerror="window.__pwned=1">王<script>window.__pwned=2</script>'


async def _sign_in(page, base_url: str, token: str) -> None:
    await page.goto(f"{base_url}/agent")
    await page.fill("#token", token)
    await page.click("#signin button")
    await page.wait_for_function("document.getElementById('status').textContent === '在线'")


async def test_pop_shows_the_customer_as_text_and_wrapup_reaches_the_log(
    stack, lab_config, phones, stack_members, browser
):
    import httpx

    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        created = await http.post(
            "/api/customers",
            headers={"Authorization": f"Bearer {stack.tokens['supervisor']}"},
            json={
                "name": EVIL,
                "phones": ["+8613566667777"],
                "addresses": ["广东省广州市天河区体育西路191号中石化大厦B塔2栋1203"],
                "products": [
                    {"model": "JSQ25-13ZD 燃气热水器", "serial": "HW2024110088",
                     "purchase_date": "2024-11-02", "warranty_end": "2027-11-02",
                     "dealer": "天河苏宁"},
                ],
                "tier": "vip1",
                "preferred_dialect": "cantonese",
            },
        )  # fmt: skip
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    agent = lab_config.agent("1002")
    await stack_members("cantonese", agent.interface, agent.id)
    phones(agent, lab_config, ring_seconds=1.0, talk_seconds=8.0)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, stack.base_url, stack.tokens[agent.id])

    run = await asyncio.to_thread(
        start_calls, [CallSpec("13566667777", "网页测试", queue="cantonese")], lab_config,
        hold_seconds=30,
    )  # fmt: skip
    await page.wait_for_selector("#customer:not([hidden])", timeout=20000)
    assert await page.text_content("#c-name") == EVIL  # shown as text, exactly
    assert await page.text_content("#c-id") == str(customer_id)
    assert await page.evaluate("window.__pwned === undefined")
    await page.wait_for_function(
        "document.getElementById('pop-state').textContent === '通话中'", timeout=15000
    )
    await page.fill("#notes", "客户反映热水器不出热水，已预约上门。<b>不是粗体</b>")
    await page.select_option("#disposition", "repair_booked")
    await page.click("#wrapup button")
    await page.wait_for_function(
        "document.getElementById('wrapup-result').textContent === '已保存'", timeout=10000
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "agent-page.png"), full_page=True)
    await asyncio.to_thread(run.wait, 60)
    rows = await wait_rows(stack.db_url, lambda r: r and r[0].outcome == "answered",
                           caller_name="网页测试")  # fmt: skip
    row = rows[0]
    assert row.disposition == "repair_booked"
    assert row.notes == "客户反映热水器不出热水，已预约上门。<b>不是粗体</b>"
    assert row.customer_id == customer_id
    assert row.agent == agent.id


async def test_unknown_caller_page_searches_and_links(
    stack, lab_config, phones, stack_members, browser
):
    target = seed_customer(stack.db_url, "欧阳娜娜", "+8613700001234", tier="standard")
    agent = lab_config.agent("1003")
    await stack_members("wu", agent.interface, agent.id)
    phones(agent, lab_config, ring_seconds=1.0, talk_seconds=8.0)
    page = await browser.new_page()
    await _sign_in(page, stack.base_url, stack.tokens[agent.id])
    run = await asyncio.to_thread(
        start_calls, [CallSpec("13999990000", "陌生来电", queue="wu")], lab_config, hold_seconds=30
    )
    await page.wait_for_selector("#candidates:not([hidden])", timeout=20000)
    assert "未找到客户" in (await page.text_content("#cand-title"))
    await page.fill("#q", "ouyangnana")
    await page.click("#search-form button")
    await page.wait_for_selector("#search-results li", timeout=10000)
    assert "欧阳娜娜" in (await page.text_content("#search-results"))
    await page.wait_for_function(
        "document.getElementById('pop-state').textContent === '通话中'", timeout=15000
    )
    await page.click("#search-results li button")
    await page.wait_for_selector("#customer:not([hidden])", timeout=10000)
    assert await page.text_content("#c-name") == "欧阳娜娜"
    await asyncio.to_thread(run.wait, 60)
    rows = await wait_rows(stack.db_url, lambda r: r and r[0].outcome == "answered",
                           caller_name="陌生来电")  # fmt: skip
    assert rows[0].customer_id == target
    assert rows[0].customer_link_source == "agent"
