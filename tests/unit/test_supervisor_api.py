"""Supervisor API: roles, live reads from the stored snapshot, the exact AMI actions sent,
refusals (422/404/409/503), /metrics, and the /ws/supervisor feed with resume."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from hotline.ami.bridge import AMINotConnectedError
from hotline.ami.events import AMIEvent
from hotline.api.app import create_app
from hotline.api.auth import Role, create_token, effective_routes, guards_of
from hotline.api.routes import actions, supervisor
from hotline.bus import MemoryBus
from hotline.db.models import Agent
from hotline.db.session import make_engine, upgrade
from hotline.live.publisher import LivePublisher
from hotline.live.state import LiveState
from hotline.settings import load_settings
from hotline.types import SUPERVISOR_STREAM

T0 = 1_772_413_200.0  # 2026-03-02 09:00 Asia/Shanghai
SNAP_AT = T0 + 90  # when the publisher took the snapshot
NOW = T0 + 100  # what the routes think "now" is
Q = "cantonese"
OK = {"Response": "Success", "Message": "done"}
ANSWERED = [
    {"Response": "Success", "Message": "Originate successfully queued"},
    {"Event": "OriginateResponse", "Response": "Success", "Reason": "4"},
]


def ev(name: str, t: float, **headers: str) -> AMIEvent:
    return AMIEvent(name=name, headers={"Event": name, "Timestamp": f"{T0 + t:.6f}", **headers})


def member(agent: str) -> AMIEvent:
    return ev(
        "QueueMemberAdded",
        0,
        Queue=Q,
        Interface=f"PJSIP/agent-{agent}",
        MemberName=agent,
        Status="1",
        Paused="0",
        InCall="0",
    )


def join(t: float, uid: str, number: str) -> AMIEvent:
    return ev(
        "QueueCallerJoin",
        t,
        Uniqueid=uid,
        Linkedid=uid,
        Queue=Q,
        Position="1",
        CallerIDNum=number,
        CallerIDName="客户",
    )


def day() -> list[AMIEvent]:
    """1001 on a call with live1; ab1 and ab2 (withheld) abandoned; w1 waiting since +80."""
    on_call = {"Queue": Q, "Interface": "PJSIP/agent-1001", "MemberName": "1001"}
    events = [member("1001"), member("1002")]
    for uid, number, t in (("ab1", "13912345678", 10), ("ab2", "", 20)):
        events += [
            join(t, uid, number),
            ev("QueueCallerAbandon", t + 30, Uniqueid=uid, Queue=Q, HoldTime="30"),
            ev("QueueCallerLeave", t + 30, Uniqueid=uid, Queue=Q, Count="0"),
            ev("Hangup", t + 30.1, Uniqueid=uid, Linkedid=uid, Cause="16"),
        ]
    events += [
        join(60, "live1", "13700000000"),
        ev("AgentCalled", 61, Uniqueid="live1", **on_call),
        ev("QueueCallerLeave", 62, Uniqueid="live1", Queue=Q, Count="0"),
        ev("AgentConnect", 62, Uniqueid="live1", HoldTime="2", RingTime="1", **on_call),
        join(80, "w1", "13600000000"),
    ]
    return sorted(events, key=lambda e: e.time)


@dataclass
class FakeBridge:
    calls: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0

    async def send_action(self, action: Any, as_list: Any = None, timeout: float = 10.0) -> Any:
        self.calls.append(dict(action))
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self.replies.get(
            action["Action"], ANSWERED if action["Action"] == "Originate" else OK
        )
        if isinstance(reply, BaseException):
            raise reply
        return reply


@dataclass
class FakeService:
    bridge: FakeBridge = field(default_factory=FakeBridge)
    bus: MemoryBus = field(default_factory=MemoryBus)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ami_status(self) -> dict[str, object]:
        return {"connected": True}


class Clock:
    now = NOW

    @classmethod
    def time(cls) -> float:
        return cls.now


def with_router(app: FastAPI) -> FastAPI:
    """The lead adds the include to create_app; until then (or twice) include it once."""
    if not any(getattr(r, "path", "") == "/api/queues" for r in effective_routes(app.routes)):
        app.include_router(supervisor.router)
    return app


@dataclass
class Env:
    client: TestClient
    service: FakeService | None
    tokens: dict[str, str]
    publisher: LivePublisher | None = None

    def h(self, who: str | None = "sup") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}

    def get(self, path: str, who: str | None = "sup", **params: Any):
        return self.client.get(path, headers=self.h(who), params=params)

    def post(self, path: str, body: Any = None, who: str | None = "sup"):
        return self.client.post(path, headers=self.h(who), json=body)

    @property
    def sent(self) -> list[dict[str, Any]]:
        assert self.service is not None
        return self.service.bridge.calls

    def bus_frames(self) -> list[dict[str, Any]]:
        bus = self.client.app.state.bus  # type: ignore[attr-defined]
        found = self.client.portal.call(bus.read, SUPERVISOR_STREAM, "0-0")
        return [m.data for m in found]

    def feed(self, events: list[AMIEvent], now: float, *, snapshot: bool = False) -> None:
        """Feed events through the publisher; ``snapshot``: end with a forced snapshot, as
        the service's once-a-second tick would after the throttle interval."""
        assert self.publisher is not None
        pub = self.publisher

        async def run() -> None:
            for event in events:
                pub.on_changes(pub.state.feed(event), now)
            if snapshot:
                pub.publish_snapshot(now, force=True)
            await pub.drain()

        self.client.portal.call(run)


def make_env(sqlite_url: str, monkeypatch, *, service: bool = True, seed: bool = True):
    monkeypatch.setattr(supervisor, "time", Clock)
    Clock.now = NOW
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    tokens = {
        "agent": create_token(engine, role=Role.AGENT, name="a", agent_id="1001"),
        "sup": create_token(engine, role=Role.SUPERVISOR, name="s"),
        "admin": create_token(engine, role=Role.ADMIN, name="root"),
    }
    with Session(engine) as session, session.begin():
        session.add(Agent(id="1003", name="王芳", interface="PJSIP/agent-1003", skills=[]))
    engine.dispose()
    fake = FakeService() if service else None
    app = with_router(create_app(load_settings(database_url=sqlite_url, redis_url=None), fake))
    return app, fake, tokens


@pytest.fixture
def env(sqlite_url, monkeypatch) -> Iterator[Env]:
    app, fake, tokens = make_env(sqlite_url, monkeypatch)
    with TestClient(app) as client:
        e = Env(client, fake, tokens, LivePublisher(app.state.bus, LiveState()))
        e.feed(day(), SNAP_AT, snapshot=True)
        yield e


# -- roles ----------------------------------------------------------------------------------

READS = ["/api/queues", "/api/agents", "/api/abandoned", "/metrics"]
WRITES = [
    ("/api/agents/1002/pause", {"reason": "午餐"}),
    ("/api/agents/1002/unpause", None),
    ("/api/agents/1002/queues", {"queue": Q, "penalty": 0}),
    ("/api/calls/live1/spy", {"mode": "listen", "supervisor_phone": "PJSIP/agent-9000"}),
    ("/api/abandoned/ab1/callback", {"agent_id": "1002"}),
]


def test_every_route_has_a_supervisor_guard() -> None:
    routes = [*supervisor.router.routes, *actions.router.routes]
    assert {r.path for r in routes} >= {"/metrics", "/ws/supervisor", "/api/queues"}
    for route in routes:
        assert guards_of(route) == [frozenset({Role.SUPERVISOR})], route.path


@pytest.mark.parametrize("path", READS)
def test_reads_refuse_agents_and_anonymous(env, path) -> None:
    assert env.get(path, who="agent").status_code == 403
    assert env.get(path, who=None).status_code == 401
    assert env.get(path, who="admin").status_code == 200


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_actions_refuse_agents_before_anything_is_sent(env, path, body) -> None:
    assert env.post(path, body, who="agent").status_code == 403
    assert env.post(path, {"junk": 1}, who="agent").status_code == 403  # 403 before 422
    assert env.post(path, body, who=None).status_code == 401
    delete = env.client.delete(f"/api/agents/1002/queues/{Q}", headers=env.h("agent"))
    assert delete.status_code == 403
    assert env.sent == []


# -- live reads ------------------------------------------------------------------------------


def test_queues_are_aged_to_now(env) -> None:
    body = env.get("/api/queues").json()
    assert body["stale"] is False and body["snapshot_at"] == SNAP_AT and body["at"] == NOW
    (queue,) = [q for q in body["queues"] if q["name"] == Q]
    assert [c["uniqueid"] for c in queue["waiting"]] == ["w1"]
    assert queue["waiting"][0]["wait"] == pytest.approx(20)  # 10 s at the snapshot + 10
    assert queue["longest_wait"] == pytest.approx(20)
    assert queue["counts"]["abandoned"] == 2 and queue["counts"]["answered"] == 1


def test_an_old_snapshot_is_marked_stale(env) -> None:
    Clock.now = SNAP_AT + supervisor.STALE_AFTER + 1
    assert env.get("/api/queues").json()["stale"] is True


def test_agents_live_with_filters(env) -> None:
    agents = env.get("/api/agents").json()["agents"]
    by_id = {a["agent_id"]: a for a in agents}
    assert by_id["1001"]["state"] == "on_call" and by_id["1001"]["on_call_with"] == "live1"
    assert by_id["1001"]["time_in_state"] == pytest.approx(NOW - (T0 + 62))
    assert by_id["1002"]["state"] == "available"
    on_call = env.get("/api/agents", state="on_call").json()["agents"]
    assert [a["agent_id"] for a in on_call] == ["1001"]
    assert env.get("/api/agents", queue="wu").json()["agents"] == []


def test_abandoned_callers_for_call_back(env) -> None:
    items = env.get("/api/abandoned").json()["items"]
    assert [a["linkedid"] for a in items] == ["ab2", "ab1"]  # newest first
    since = "2026-03-02T01:00:45Z"  # T0 + 45 s: after ab1 (T0+40), before ab2 (T0+50)
    later = env.get("/api/abandoned", since=since).json()
    assert [a["linkedid"] for a in later["items"]] == ["ab2"] and later["count"] == 1
    assert env.get("/api/abandoned", since="yesterday").status_code == 422


def test_no_snapshot_yet_is_503(sqlite_url, monkeypatch) -> None:
    app, _, tokens = make_env(sqlite_url, monkeypatch)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {tokens['sup']}"}
        response = client.get("/api/queues", headers=headers)
        assert response.status_code == 503
        assert response.json()["error_id"] == "live-unavailable"
        metrics = client.get("/metrics", headers=headers)
        assert metrics.status_code == 200 and "hotline_ami_connected 0" in metrics.text


def test_metrics_render_the_snapshot(env) -> None:
    response = env.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert f'hotline_queue_waiting_callers{{queue="{Q}"}} 1' in response.text
    assert f'hotline_queue_calls_total{{queue="{Q}",outcome="abandoned"}} 2' in response.text
    assert "hotline_ami_connected 1" in response.text


# -- actions ---------------------------------------------------------------------------------


def test_pause_with_reason(env) -> None:
    response = env.post("/api/agents/1002/pause", {"reason": "午餐"})
    assert response.status_code == 200, response.text
    assert env.sent == [
        {
            "Action": "QueuePause",
            "Interface": "PJSIP/agent-1002",
            "Paused": "true",
            "Reason": "午餐",
        }
    ]


def test_unpause_everywhere_or_in_one_queue(env) -> None:
    assert env.post("/api/agents/1002/unpause").status_code == 200
    assert env.post("/api/agents/1002/unpause", {"queue": Q}).status_code == 200
    assert env.sent == [
        {"Action": "QueuePause", "Interface": "PJSIP/agent-1002", "Paused": "false"},
        {"Action": "QueuePause", "Interface": "PJSIP/agent-1002", "Paused": "false", "Queue": Q},
    ]


def test_queue_add_uses_the_agents_table_for_an_agent_in_no_queue(env) -> None:
    response = env.post("/api/agents/1003/queues", {"queue": "mandarin", "penalty": 5})
    assert response.status_code == 200, response.text
    assert env.sent == [
        {
            "Action": "QueueAdd",
            "Queue": "mandarin",
            "Interface": "PJSIP/agent-1003",
            "MemberName": "1003",
            "Penalty": "5",
        }
    ]


def test_queue_remove(env) -> None:
    response = env.client.delete(f"/api/agents/1002/queues/{Q}", headers=env.h())
    assert response.status_code == 200, response.text
    assert env.sent == [{"Action": "QueueRemove", "Queue": Q, "Interface": "PJSIP/agent-1002"}]


def test_unknown_agent_or_queue_is_404_and_nothing_is_sent(env) -> None:
    assert env.post("/api/agents/9999/pause", {}).json()["error_id"] == "no-such-agent"
    response = env.post("/api/agents/1002/queues", {"queue": "klingon"})
    assert response.status_code == 404 and response.json()["error_id"] == "no-such-queue"
    assert env.sent == []


def test_asterisk_refusal_is_409_with_its_message(env) -> None:
    env.service.bridge.replies["QueueRemove"] = {"Response": "Error", "Message": "Not there"}
    response = env.client.delete(f"/api/agents/1002/queues/{Q}", headers=env.h())
    assert response.status_code == 409
    assert response.json()["details"]["asterisk"] == "Not there"


def test_a_disconnected_bridge_is_503(env) -> None:
    env.service.bridge.replies["QueuePause"] = AMINotConnectedError("down")
    response = env.post("/api/agents/1002/pause", {})
    assert response.status_code == 503 and response.json()["error_id"] == "ami-unavailable"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/agents/1002/pause", {"reason": "x\r\nAction: Originate"}),  # header injection
        ("/api/agents/1002/pause", {"reason": "r" * 65}),
        ("/api/agents/1002/pause", {"reason": "ok", "extra": 1}),
        ("/api/agents/1002/pause", ["not", "an", "object"]),
        ("/api/agents/10 02/pause", {}),
        ("/api/agents/1002/queues", {"queue": Q, "penalty": -1}),
        ("/api/agents/1002/queues", {"penalty": 1}),
        ("/api/agents/1002/queues", {"queue": "a\nb"}),
        ("/api/calls/live1/spy", {"mode": "steal", "supervisor_phone": "PJSIP/agent-9000"}),
        ("/api/calls/live1/spy", {"mode": "listen", "supervisor_phone": "PJSIP/0044@trunk"}),
        ("/api/calls/live1/spy", {"mode": "listen", "supervisor_phone": "Local/1@x"}),
        ("/api/calls/live1/spy", {"mode": "listen"}),
        ("/api/abandoned/ab1/callback", {}),
        ("/api/abandoned/ab1/callback", {"agent_id": "1002,evil"}),
    ],
)
def test_malformed_payloads_are_422_and_nothing_is_sent(env, path, body) -> None:
    response = env.post(path, body)
    assert response.status_code == 422, response.text
    assert response.json()["error_id"] == "invalid-request"
    assert env.sent == []


@pytest.mark.parametrize(
    ("mode", "options"), [("listen", "qE"), ("whisper", "qEw"), ("barge", "qEB")]
)
def test_spy_originates_the_supervisor_phone_into_chanspy_on_the_agent_leg(
    env, mode, options
) -> None:
    response = env.post(
        "/api/calls/live1/spy", {"mode": mode, "supervisor_phone": "PJSIP/agent-9000"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "answered"
    (action,) = env.sent
    channel_id = action.pop("ChannelId")
    assert len(channel_id) == 36
    assert action == {
        "Action": "Originate",
        "Channel": "PJSIP/agent-9000",
        "Application": "ChanSpy",
        "Data": f"PJSIP/agent-1001-,{options}",
        "CallerID": f'"{mode}" <1001>',
        "Variable": "HOTLINE_SPY_OF=live1",
        "Async": "true",
        "Timeout": "30000",
    }
    result = [f for f in env.bus_frames() if f["type"] == "action"]
    assert result[-1]["channel_id"] == channel_id and result[-1]["ok"] is True


def test_spy_targets_the_exact_leg_when_the_state_knows_it() -> None:
    view = {"interface": "PJSIP/agent-1001", "channel_uniqueid": "1772413262.42"}
    assert actions._spy_target(view) == ("1772413262.42", "u")
    assert actions._spy_target({"interface": "PJSIP/a-1"}) == ("PJSIP/a-1-", "")


def test_spy_needs_a_live_call(env) -> None:
    body = {"mode": "listen", "supervisor_phone": "PJSIP/agent-9000"}
    assert env.post("/api/calls/nope/spy", body).json()["error_id"] == "no-live-call"
    response = env.post("/api/calls/live1/spy", {**body, "agent_id": "1002"})
    assert response.status_code == 409 and response.json()["error_id"] == "agent-not-on-call"
    assert env.sent == []


def test_callback_rings_the_agent_then_the_dialplan_dials_the_customer(env) -> None:
    response = env.post("/api/abandoned/ab1/callback", {"agent_id": "1002"})
    assert response.status_code == 200, response.text
    (action,) = env.sent
    action.pop("ChannelId")
    assert action == {
        "Action": "Originate",
        "Channel": "PJSIP/agent-1002",
        "Context": "hotline-callback",
        "Exten": "s",
        "Priority": "1",
        "CallerID": '"回拨" <13912345678>',
        "Variable": "HOTLINE_CALLBACK_NUMBER=13912345678,HOTLINE_CALLBACK_OF=ab1,"
        f"HOTLINE_AGENT=1002,HOTLINE_QUEUE={Q}",
        "Async": "true",
        "Timeout": "30000",
    }


def test_callback_refusals(env) -> None:
    withheld = env.post("/api/abandoned/ab2/callback", {"agent_id": "1002"})
    assert withheld.status_code == 422 and withheld.json()["error_id"] == "not-diallable"
    busy = env.post("/api/abandoned/ab1/callback", {"agent_id": "1001"})
    assert busy.status_code == 409 and busy.json()["error_id"] == "agent-busy"
    unknown = env.post("/api/abandoned/zz/callback", {"agent_id": "1002"})
    assert unknown.status_code == 404
    assert env.sent == []


def test_a_phone_that_fails_to_answer_is_409(env) -> None:
    env.service.bridge.replies["Originate"] = [
        {"Response": "Success"},
        {"Event": "OriginateResponse", "Response": "Failure", "Reason": "5"},
    ]
    response = env.post("/api/abandoned/ab1/callback", {"agent_id": "1002"})
    assert response.status_code == 409
    assert response.json()["details"] == {"status": "failed", "reason": "5"}


def test_a_slow_originate_is_202_and_the_outcome_follows_on_the_feed(env, monkeypatch) -> None:
    monkeypatch.setattr(actions, "ORIGINATE_ACCEPT_WAIT", 0.05)
    env.service.bridge.delay = 0.3
    response = env.post("/api/abandoned/ab1/callback", {"agent_id": "1002"})
    assert response.status_code == 202 and response.json()["status"] == "ringing"
    bus = env.client.app.state.bus

    async def outcome() -> dict[str, Any]:
        cursor = "0-0"
        while True:
            for message in await bus.read(SUPERVISOR_STREAM, cursor, block_ms=2000):
                cursor = message.id
                if message.data["type"] == "action":
                    return message.data

    frame = env.client.portal.call(outcome)
    assert frame["action"] == "callback" and frame["status"] == "answered"
    assert frame["channel_id"] == response.json()["channel_id"]


def test_actions_without_a_service_are_503(sqlite_url, monkeypatch) -> None:
    app, _, tokens = make_env(sqlite_url, monkeypatch, service=False)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {tokens['sup']}"}
        for path, body in WRITES:
            response = client.post(path, headers=headers, json=body)
            assert response.status_code == 503, path
            assert response.json()["error_id"] == "ami-unavailable"


def test_without_a_service_a_malformed_request_is_still_a_422(sqlite_url, monkeypatch) -> None:
    """The bridge is checked in the route, after the request itself."""
    app, _, tokens = make_env(sqlite_url, monkeypatch, service=False)
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {tokens['sup']}"}
        response = client.post("/api/agents/1002/pause", headers=headers, json={"reason": "a\nb"})
        assert response.status_code == 422


def test_shutdown_cancels_an_originate_still_ringing(sqlite_url, monkeypatch) -> None:
    """Background originates belong to the app and end with it, not to a module global."""
    monkeypatch.setattr(actions, "ORIGINATE_ACCEPT_WAIT", 0.05)
    app, fake, tokens = make_env(sqlite_url, monkeypatch)
    fake.bridge.delay = 60.0
    with TestClient(app) as client:
        e = Env(client, fake, tokens, LivePublisher(app.state.bus, LiveState()))
        e.feed(day(), SNAP_AT, snapshot=True)
        assert e.post("/api/abandoned/ab1/callback", {"agent_id": "1002"}).status_code == 202
        runner = app.state.actions
        assert runner.pending == 2  # the Originate and the task that reports its outcome
    assert runner.pending == 0


# -- the feed ---------------------------------------------------------------------------------


def test_feed_sends_the_snapshot_then_frames_and_resumes(env) -> None:
    token = env.tokens["sup"]
    with env.client.websocket_connect(f"/ws/supervisor?token={token}") as ws:
        first = ws.receive_json()
        assert first["type"] == "snapshot"
        assert first["snapshot"]["queues"][Q]["waiting"][0]["wait"] == pytest.approx(20)
        env.feed([join(95, "w2", "13500000000")], NOW)
        frame = ws.receive_json()
        assert frame["type"] == "caller.waiting" and frame["uniqueid"] == "w2"
        seen = frame["id"]
    env.feed([join(96, "w3", "13500000001")], NOW + 1)
    with env.client.websocket_connect(f"/ws/supervisor?token={token}&last_id={seen}") as ws:
        assert ws.receive_json()["type"] == "hello"
        missed = [ws.receive_json() for _ in range(5)]
    # the rest of w2's event (its throttle had passed: a snapshot too), then w3's
    assert [m["type"] for m in missed] == [
        "queue",
        "snapshot",
        "caller.waiting",
        "queue",
        "snapshot",
    ]
    assert missed[2]["uniqueid"] == "w3"
    assert missed[4]["snapshot"]["queues"][Q]["waiting_count"] == 3


def test_feed_starts_right_after_the_stored_snapshot(env) -> None:
    """Frames published after the snapshot was stored are not lost between the two."""
    env.publisher.min_interval = 60  # the next changes get no snapshot of their own
    env.feed([join(97, "w4", "13500000002")], NOW)
    with env.client.websocket_connect(f"/ws/supervisor?token={env.tokens['sup']}") as ws:
        snapshot = ws.receive_json()
        assert "w4" not in [c["uniqueid"] for c in snapshot["snapshot"]["queues"][Q]["waiting"]]
        assert ws.receive_json()["uniqueid"] == "w4"


@pytest.mark.parametrize("query", ["token={agent}", "", "token=nope", "token={sup}&last_id=x"])
def test_feed_refuses_agents_and_bad_requests(env, query) -> None:
    url = "/ws/supervisor?" + query.format(agent=env.tokens["agent"], sup=env.tokens["sup"])
    with pytest.raises(WebSocketDisconnect), env.client.websocket_connect(url) as ws:
        ws.receive_json()
