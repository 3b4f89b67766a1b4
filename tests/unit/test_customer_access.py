"""Which customers an agent token opens (docs/access.md, "What an agent token reads").

Agent 1001 took a call from 陈小明 (linked) and is on a live call from a number 王芳
owns; 李四 is a stranger to them (agent 1002's caller). Supervisors open anyone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.db.models import Customer, CustomerPhone
from hotline.settings import load_settings

T0 = 1_795_000_000.0


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    tokens: dict[str, str]
    ids: dict[str, int]

    def call(self, method: str, path: str, who: str = "agent", **kwargs: object):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def open(self, name: str, who: str = "agent") -> int:
        return self.call("GET", f"/api/customers/{self.ids[name]}", who=who).status_code


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    app = create_app(load_settings(database_url=db_url))
    with TestClient(app) as client:
        engine = app.state.engine
        ids: dict[str, int] = {}
        with Session(engine) as session, session.begin():
            for name, phone in [
                ("陈小明", "+8613800138000"),
                ("王芳", "+8613922223333"),
                ("李四", "+8613711112222"),
            ]:
                customer = Customer(name=name)
                session.add(customer)
                session.flush()
                session.add(CustomerPhone(customer_id=customer.id, e164=phone))
                ids[name] = customer.id
        CallLogWriter(engine).write(
            [
                CallRecord(
                    linkedid="c1", outcome=Outcome.ANSWERED, caller_number="13800138000",
                    arrived_at=T0, answered_at=T0 + 5, ended_at=T0 + 60, agent="1001",
                    customer_id=ids["陈小明"],
                ),
                CallRecord(
                    linkedid="c2", outcome=Outcome.IN_PROGRESS, caller_number="13922223333",
                    caller_e164="+8613922223333", arrived_at=T0 + 100, answered_at=T0 + 105,
                    agent="1001",
                ),
                CallRecord(
                    linkedid="c3", outcome=Outcome.ANSWERED, caller_number="13711112222",
                    arrived_at=T0, answered_at=T0 + 5, ended_at=T0 + 60, agent="1002",
                    customer_id=ids["李四"],
                ),
            ]
        )  # fmt: skip
        tokens = {
            "agent": create_token(engine, role=Role.AGENT, name="A", agent_id="1001"),
            "agent2": create_token(engine, role=Role.AGENT, name="B", agent_id="1002"),
            "supervisor": create_token(engine, role=Role.SUPERVISOR, name="S"),
            "admin": create_token(engine, role=Role.ADMIN, name="R"),
        }
        yield Api(client, app, tokens, ids)


def test_agent_opens_their_calls_customer_and_not_a_strangers(api: Api) -> None:
    assert api.open("陈小明") == 200  # linked to their call
    assert api.open("王芳") == 200  # owns the number of their live call
    refused = api.call("GET", f"/api/customers/{api.ids['李四']}")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error_id"] == "customer-not-allowed"
    assert "李四" not in refused.text
    # and the other agent the other way round
    assert api.open("李四", who="agent2") == 200
    assert api.open("陈小明", who="agent2") == 403


def test_agent_may_not_patch_a_strangers_customer(api: Api) -> None:
    got = api.call("PATCH", f"/api/customers/{api.ids['李四']}", json={"name": "改名"})
    assert got.status_code == 403
    assert (
        api.call("GET", f"/api/customers/{api.ids['李四']}", who="supervisor").json()["name"]
        == "李四"
    )


@pytest.mark.parametrize("who", ["supervisor", "admin"])
def test_supervisors_open_any_customer(api: Api, who: str) -> None:
    for name in api.ids:
        assert api.open(name, who=who) == 200


def test_a_customer_that_does_not_exist_is_404_before_403(api: Api) -> None:
    got = api.call("GET", "/api/customers/999999")
    assert got.status_code == 404
    assert got.json()["error_id"] == "no-such-customer"


def test_a_search_result_opens_for_the_agent_who_searched(api: Api) -> None:
    assert api.open("李四") == 403
    found = api.call("GET", "/api/customers/search", params={"q": "13711112222"})
    assert found.status_code == 200, found.text
    assert api.ids["李四"] in [item["id"] for item in found.json()["items"]]
    assert api.open("李四") == 200
    assert api.open("陈小明", who="agent2") == 403  # the grant is the searcher's only


def test_a_customer_the_agent_created_opens_for_them(api: Api) -> None:
    made = api.call("POST", "/api/customers", json={"name": "新客户", "phones": ["13655556666"]})
    assert made.status_code == 201, made.text
    assert api.call("GET", f"/api/customers/{made.json()['id']}").status_code == 200
    assert api.call("GET", f"/api/customers/{made.json()['id']}", who="agent2").status_code == 403


def test_linking_on_a_live_call_then_the_customer_is_theirs(api: Api) -> None:
    assert api.open("李四") == 403
    linked = api.call("POST", "/api/calls/c2/customer", json={"customer_id": api.ids["李四"]})
    assert linked.status_code == 200, linked.text
    assert api.open("李四") == 200  # rule 1: linked to their call


def test_linking_a_stranger_to_an_ended_call_is_refused(api: Api) -> None:
    got = api.call("POST", "/api/calls/c1/customer", json={"customer_id": api.ids["李四"]})
    assert got.status_code == 403
    assert got.json()["error_id"] == "customer-not-allowed"
