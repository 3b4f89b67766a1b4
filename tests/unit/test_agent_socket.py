"""/ws/agent: an agent only ever gets its own stream; pages resume; acks reach the bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token
from hotline.db.session import make_engine, upgrade
from hotline.settings import load_settings


@pytest.fixture
def client(sqlite_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    tokens = {
        "a": create_token(engine, role=Role.AGENT, name="a", agent_id="1001"),
        "b": create_token(engine, role=Role.AGENT, name="b", agent_id="1002"),
        "sup": create_token(engine, role=Role.SUPERVISOR, name="s"),
    }
    engine.dispose()
    app = create_app(load_settings(database_url=sqlite_url, redis_url=None))
    with TestClient(app) as c:
        yield c, tokens


def publish(client: TestClient, stream: str, data: dict) -> str:
    bus = client.app.state.bus
    return client.portal.call(bus.publish, stream, data)  # type: ignore[union-attr]


def test_agent_receives_only_its_own_pops(client) -> None:
    c, tokens = client
    with c.websocket_connect(f"/ws/agent?token={tokens['a']}") as ws_a:
        assert ws_a.receive_json()["agent"] == "1001"
        publish(c, "agent:1002", {"type": "screenpop", "linkedid": "B", "customer": "不该看到"})
        publish(c, "agent:1001", {"type": "screenpop", "linkedid": "A"})
        first = ws_a.receive_json()
        assert first["linkedid"] == "A"  # B's pop, published first, never came


def test_an_agent_cannot_ask_for_another_agents_stream(client) -> None:
    c, tokens = client
    with (
        pytest.raises(WebSocketDisconnect),
        c.websocket_connect(f"/ws/agent?token={tokens['a']}&agent=1002") as ws,
    ):
        ws.receive_json()


def test_no_token_or_bad_token_is_refused(client) -> None:
    c, _ = client
    for url in ("/ws/agent", "/ws/agent?token=nope"):
        with pytest.raises(WebSocketDisconnect), c.websocket_connect(url) as ws:
            ws.receive_json()


def test_supervisor_may_watch_an_agent(client) -> None:
    c, tokens = client
    with c.websocket_connect(f"/ws/agent?token={tokens['sup']}&agent=1002") as ws:
        assert ws.receive_json()["agent"] == "1002"
        publish(c, "agent:1002", {"type": "call.ended", "linkedid": "X"})
        assert ws.receive_json()["type"] == "call.ended"


def test_a_page_that_reconnects_gets_what_it_missed(client) -> None:
    c, tokens = client
    with c.websocket_connect(f"/ws/agent?token={tokens['a']}") as ws:
        ws.receive_json()
        publish(c, "agent:1001", {"type": "screenpop", "linkedid": "1"})
        seen = ws.receive_json()
    publish(c, "agent:1001", {"type": "screenpop.withdrawn", "linkedid": "1"})
    publish(c, "agent:1001", {"type": "screenpop", "linkedid": "2"})
    with c.websocket_connect(f"/ws/agent?token={tokens['a']}&last_id={seen['id']}") as ws:
        ws.receive_json()  # hello
        missed = [ws.receive_json(), ws.receive_json()]
    assert [(m["type"], m["linkedid"]) for m in missed] == [
        ("screenpop.withdrawn", "1"),
        ("screenpop", "2"),
    ]


def test_ack_goes_on_the_bus_and_garbage_is_survived(client) -> None:
    c, tokens = client
    bus = c.app.state.bus
    start = c.portal.call(bus.last_id, "ack:L1")
    with c.websocket_connect(f"/ws/agent?token={tokens['a']}") as ws:
        ws.receive_json()
        ws.send_text("{not json")
        assert ws.receive_json()["error_id"] == "bad-json"
        ws.send_text("x" * 10000)
        ws.send_json(["a", "list"])
        ws.send_json({"type": "ack", "linkedid": "L1"})

        async def wait_ack():
            return await bus.read("ack:L1", start, block_ms=2000)

        acks = c.portal.call(wait_ack)
    assert [m.data["agent"] for m in acks] == ["1001"]


@pytest.mark.parametrize("path", ["/ws/agent", "/ws/supervisor"])
@pytest.mark.parametrize("bad", ["x", "", "12", "1-2-3", "-1-0", "1-0;DROP", "9" * 21 + "-0"])
def test_both_sockets_refuse_a_last_id_that_is_not_a_bus_id(client, path, bad) -> None:
    """One rule for both sockets (docs/access.md): refused before the handshake, 1008."""
    c, tokens = client
    token = tokens["a"] if path == "/ws/agent" else tokens["sup"]
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        c.websocket_connect(f"{path}?token={token}&last_id={bad}") as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008


@pytest.mark.parametrize("path", ["/ws/agent", "/ws/supervisor"])
def test_both_sockets_resume_from_a_good_last_id(client, path) -> None:
    c, tokens = client
    stream = "agent:1001" if path == "/ws/agent" else "supervisor"
    token = tokens["a"] if path == "/ws/agent" else tokens["sup"]
    seen = publish(c, stream, {"type": "x", "n": 1})
    publish(c, stream, {"type": "x", "n": 2})
    with c.websocket_connect(f"{path}?token={token}&last_id={seen}") as ws:
        hello = ws.receive_json()
        assert (hello["type"], hello["last_id"]) == ("hello", seen)
        assert ws.receive_json()["n"] == 2


def test_a_socket_that_closes_leaves_no_subscription_behind(client) -> None:
    c, tokens = client
    fanout = c.app.state.bus.fanout
    for _ in range(3):
        with c.websocket_connect(f"/ws/agent?token={tokens['a']}") as ws:
            ws.receive_json()
            assert len(fanout) >= 1
    publish(c, "agent:1001", {"type": "x"})  # the pump notices the closed socket on send
    deadline = time.monotonic() + 5
    while len(fanout) and time.monotonic() < deadline:
        c.portal.call(asyncio.sleep, 0.02)
    assert len(fanout) == 0
