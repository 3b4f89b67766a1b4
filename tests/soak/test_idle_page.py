"""An idle agent page keeps one socket for 10 minutes with Redis configured
(docs/reliability.md, "Degraded modes").

The socket was opened when collection ended (conftest.py, which also puts this test
last); here it must still be the same socket, never closed, after ``SOAK_SECONDS``, and
still get a probe published to its stream.
"""

from __future__ import annotations

import asyncio
import time

from tests.conftest import need
from tests.soak.conftest import SOAK_SECONDS, IdlePage
from tests.support.pages import publisher


async def test_an_idle_agent_page_keeps_one_socket_for_ten_minutes(idle_page: IdlePage) -> None:
    if idle_page.error is not None:
        need(f"the idle page never opened: {idle_page.error}")  # Redis missing, most likely
    assert idle_page.opened_at is not None
    remaining = SOAK_SECONDS - (time.monotonic() - idle_page.opened_at)
    if remaining > 0:  # only when this folder runs without the rest of the suite
        await asyncio.to_thread(idle_page.changed.wait, remaining)  # wakes early if it closes
        while idle_page.closed is None and time.monotonic() - idle_page.opened_at < SOAK_SECONDS:
            idle_page.changed.clear()
            left = SOAK_SECONDS - (time.monotonic() - idle_page.opened_at)
            await asyncio.to_thread(idle_page.changed.wait, max(0.0, left))
    open_for = time.monotonic() - idle_page.opened_at
    assert idle_page.closed is None, f"the socket ended after {open_for:.0f} s: {idle_page.closed}"
    assert idle_page.connections == 1
    assert open_for >= SOAK_SECONDS

    bus = await publisher(idle_page.pages.redis_url, idle_page.pages.prefix)
    try:
        seen = len(idle_page.frames)
        idle_page.changed.clear()
        await bus.publish(f"agent:{idle_page.agent}", {"type": "probe", "after_s": int(open_for)})
        deadline = time.monotonic() + 5
        while len(idle_page.frames) == seen and time.monotonic() < deadline:
            await asyncio.to_thread(idle_page.changed.wait, deadline - time.monotonic())
            idle_page.changed.clear()
    finally:
        await bus.close()
    assert [f["type"] for f in idle_page.frames[seen:]] == ["probe"]
    assert idle_page.closed is None and idle_page.connections == 1
    assert [f["type"] for f in idle_page.frames[:seen]] == ["hello"]  # nothing else came
