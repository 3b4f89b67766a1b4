"""``/api/agents/directory`` and ``/api/agents/sync``: roles, validation, and a real sync.

The directory runs on both databases. The sync test runs the whole app in the test's own
event loop (lifespan + ASGI transport) so the service's AMI bridge can reach the in-process
fake Asterisk, which lives in that loop too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hotline.ami.bridge import AMIBridge
from hotline.api.app import create_app
from hotline.api.auth import Role, create_token, effective_routes, guards_of
from hotline.api.routes import agents_admin
from hotline.settings import load_settings
from tests.unit.test_agents import FakeAsterisk
from tests.unit.test_ami_bridge import SECRET, USER

DIRECTORY = "/api/agents/directory"
SYNC = "/api/agents/sync"
ROLES = ("agent", "supervisor", "admin")


def build_app(db_url: str, service: object | None = None) -> FastAPI:
    app = create_app(load_settings(database_url=db_url, queues="mandarin,cantonese"), service)
    if not any(getattr(r, "path", "") == SYNC for r in effective_routes(app.routes)):
        app.include_router(agents_admin.router)  # until app.py includes it
    return app


def make_tokens(app: FastAPI) -> dict[str, str]:
    engine = app.state.engine
    return {
        "agent": create_token(engine, role=Role.AGENT, name="A", agent_id="1001"),
        "supervisor": create_token(engine, role=Role.SUPERVISOR, name="S"),
        "admin": create_token(engine, role=Role.ADMIN, name="Root"),
    }


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def call(self, method: str, path: str, who: str | None = "admin", **kwargs: Any):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.request(method, path, headers=headers, **kwargs)

    def put(self, agent_id: str, who: str = "admin", **body: Any):
        return self.call("PUT", f"{DIRECTORY}/{agent_id}", who=who, json=body)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    app = build_app(db_url)
    with TestClient(app) as client:
        yield Api(client, make_tokens(app))


def test_routes_carry_the_right_guards() -> None:
    app = build_app("sqlite://")
    guards = {
        (next(iter(r.methods)), r.path): guards_of(r)
        for r in effective_routes(app.routes)
        if getattr(r, "path", "").startswith(("/api/agents/directory", "/api/agents/sync"))
    }
    assert guards == {
        ("GET", DIRECTORY): [frozenset({Role.SUPERVISOR})],
        ("PUT", DIRECTORY + "/{agent_id}"): [frozenset({Role.ADMIN})],
        ("DELETE", DIRECTORY + "/{agent_id}"): [frozenset({Role.ADMIN})],
        ("POST", SYNC): [frozenset({Role.SUPERVISOR})],
    }


def test_roles(api: Api) -> None:
    body = {"interface": "PJSIP/agent-1001", "skills": ["cantonese:native"]}
    assert api.call("GET", DIRECTORY, who=None).status_code == 401
    assert api.call("GET", DIRECTORY, who="agent").status_code == 403
    assert api.put("1001", who="supervisor", **body).status_code == 403
    assert api.put("1001", who="agent", **body).status_code == 403
    assert api.put("1001", **body).status_code == 201
    assert api.call("DELETE", f"{DIRECTORY}/1001", who="supervisor").status_code == 403
    listed = api.call("GET", DIRECTORY, who="supervisor")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert api.call("POST", SYNC, who="agent").status_code == 403


def test_upsert_list_and_delete(api: Api) -> None:
    made = api.put(
        "1001",
        name="陈美玲",
        interface="PJSIP/agent-1001",
        skills=["Cantonese:Native", "mandarin:good"],
    )
    assert made.status_code == 201, made.text
    assert made.json()["skills"] == ["cantonese:native", "mandarin:good"]
    replaced = api.put("1001", interface="PJSIP/agent-1001", skills=["mandarin:fallback"])
    assert replaced.status_code == 200
    assert replaced.json()["name"] == ""  # PUT replaces the whole agent
    assert api.put("1002", interface="PJSIP/agent-1002").status_code == 201
    items = api.call("GET", DIRECTORY, who="supervisor").json()["items"]
    assert [(i["id"], i["interface"], i["skills"]) for i in items] == [
        ("1001", "PJSIP/agent-1001", ["mandarin:fallback"]),
        ("1002", "PJSIP/agent-1002", []),
    ]
    assert api.call("DELETE", f"{DIRECTORY}/1002").status_code == 204
    gone = api.call("DELETE", f"{DIRECTORY}/1002")
    assert (gone.status_code, gone.json()["error_id"]) == (404, "no-such-agent")
    assert api.call("GET", DIRECTORY, who="supervisor").json()["count"] == 1


@pytest.mark.parametrize(
    ("agent_id", "body", "needle"),
    [
        ("1001", {"interface": "PJSIP/a", "skills": ["cantonese:fluent"]}, "unknown level"),
        ("1001", {"interface": "PJSIP/a", "skills": ["cantonese"]}, "<dialect>:"),
        ("1001", {"interface": "PJSIP/a", "skills": ["wu:good", "wu:native"]}, "more than once"),
        ("1001", {"interface": "agent 1001"}, "Tech/resource"),
        ("1001", {"interface": "PJSIP/a\r\nAction: Logoff"}, "Tech/resource"),
        ("1001", {"interface": "PJSIP/a", "name": "x\ny"}, "control"),
        ("1001", {"interface": "PJSIP/a", "extra": 1}, "Extra inputs"),
        ("1001", {"skills": ["wu:good"]}, "required"),
        ("bad id!", {"interface": "PJSIP/a"}, "pattern"),
    ],
)
def test_invalid_input_is_a_422_that_says_why(
    api: Api, agent_id: str, body: dict[str, Any], needle: str
) -> None:
    response = api.put(agent_id, **body)
    assert response.status_code == 422, response.text
    assert response.json()["error_id"] == "invalid-request"
    messages = " ".join(e["msg"] for e in response.json()["details"]["errors"])
    assert needle in messages
    assert api.call("GET", DIRECTORY, who="supervisor").json()["count"] == 0


def test_interface_owned_by_another_agent_is_a_409(api: Api) -> None:
    assert api.put("1001", interface="PJSIP/agent-1001").status_code == 201
    clash = api.put("1002", interface="PJSIP/agent-1001")
    assert clash.status_code == 409
    assert clash.json()["error_id"] == "interface-in-use"
    assert clash.json()["details"] == {"interface": "PJSIP/agent-1001", "agent_id": "1001"}


def test_sync_without_a_service_is_a_503(api: Api) -> None:
    response = api.call("POST", SYNC, who="supervisor")
    assert response.status_code == 503
    assert response.json()["error_id"] == "service-not-running"


class BridgeService:
    """The part of CallService the sync route uses: ``bridge``, with start/stop."""

    def __init__(self, bridge: AMIBridge | None) -> None:
        self.bridge = bridge

    async def start(self) -> None:
        if self.bridge is not None:
            await self.bridge.start()
            assert await self.bridge.wait_connected(2)

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()

    def ami_status(self) -> dict[str, object]:
        return {}


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    server = FakeAsterisk(queues=("mandarin", "cantonese"))
    await server.start()
    yield server
    await server.close()


async def test_sync_applies_the_directory_through_the_services_bridge(
    asterisk: FakeAsterisk, sqlite_url: str
) -> None:
    bridge = AMIBridge("127.0.0.1", asterisk.port, USER, SECRET, ping_interval=30.0)
    app = build_app(sqlite_url, BridgeService(bridge))
    async with app.router.lifespan_context(app):
        tokens = make_tokens(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def call(method: str, path: str, who: str, **kw: Any) -> httpx.Response:
                headers = {"Authorization": f"Bearer {tokens[who]}"}
                return await client.request(method, path, headers=headers, **kw)

            for agent_id, skills in [("1001", ["cantonese:native", "wu:native"]), ("1002", [])]:
                body = {"interface": f"PJSIP/agent-{agent_id}", "skills": skills}
                put = await call("PUT", f"{DIRECTORY}/{agent_id}", "admin", json=body)
                assert put.status_code == 201
            response = await call("POST", SYNC, "supervisor")
            assert response.status_code == 200, response.text
            report = response.json()
            assert report["ok"] is True
            assert (report["planned"], report["applied"], report["failed"]) == (1, 1, 0)
            assert report["queues"] == ["cantonese", "mandarin"]
            assert asterisk.dynamic() == {("cantonese", "PJSIP/agent-1001"): ("1001", 0)}

            asterisk.refuse_status = True
            refused = await call("POST", SYNC, "supervisor")
            assert refused.status_code == 503
            assert "Permission denied" in refused.json()["message"]


async def test_sync_with_a_service_whose_link_is_down_is_a_503(sqlite_url: str) -> None:
    app = build_app(sqlite_url, BridgeService(None))
    async with app.router.lifespan_context(app):
        app.state.service.bridge = AMIBridge("127.0.0.1", 9, USER, SECRET)  # never started
        tokens = make_tokens(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"Authorization": f"Bearer {tokens['supervisor']}"}
            response = await client.post(SYNC, headers=headers)
    assert response.status_code == 503
    assert response.json()["error_id"] == "ami-not-connected"
