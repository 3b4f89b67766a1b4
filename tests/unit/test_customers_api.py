"""``/api/customers``: search, read, create, patch, access rules and hostile input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token, effective_routes, guards_of
from hotline.api.routes import customers
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.settings import load_settings


class Api:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    def call(self, method: str, path: str, who: str = "agent", **kwargs: object):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def api(db_url) -> Iterator[Api]:
    app = create_app(load_settings(database_url=db_url))
    app.include_router(customers.router)
    with TestClient(app) as client:
        engine = app.state.engine
        tokens = {
            "agent": create_token(engine, role=Role.AGENT, name="A", agent_id="1001"),
            "supervisor": create_token(engine, role=Role.SUPERVISOR, name="S"),
        }
        yield Api(client, tokens)


def _create(api: Api, who: str = "agent", **body: object):
    return api.call("POST", "/api/customers", who=who, json=body)


def test_every_customer_route_requires_a_token(api) -> None:
    paths = [r.path for r in effective_routes(api.client.app.routes) if "customers" in r.path]
    assert len(paths) >= 4
    for route in effective_routes(api.client.app.routes):
        if "customers" in getattr(route, "path", ""):
            assert guards_of(route)
    assert api.client.get("/api/customers/search", params={"q": "张伟"}).status_code == 401


def test_create_read_search_and_patch(api) -> None:
    made = _create(
        api,
        name="曾伟",
        phones=["+86 138-0013-8000", "010-6512 3456 转 801"],
        addresses=["北京朝阳建国路８８号ＳＯＨＯ现代城５号楼１５０２"],
        products=[{"model": "JSQ25", "serial": "SN1", "warranty_end": "2030-01-01"}],
    )
    assert made.status_code == 201, made.text
    record = made.json()
    assert record["name_pinyin"] == "zengwei"  # the surname override, not "cengwei"
    assert {p["e164"] for p in record["phones"]} == {"+8613800138000", "+861065123456"}
    assert record["phones"][0]["region"] == "北京市"
    assert record["addresses"][0]["district"] == "朝阳区"
    assert record["district"] == "朝阳区"
    cid = record["id"]

    for q, field in [
        ("13800138000", "phone"),
        ("曾伟 朝阳区", "name"),
        ("zengwei", "pinyin"),
        ("zw 朝阳", "initials"),
        ("增伟", "pinyin"),  # a homophone typed by the agent
        ("朝阳区建国路88号五号楼1502", "address"),
    ]:
        got = api.call("GET", "/api/customers/search", params={"q": q})
        assert got.status_code == 200, (q, got.text)
        items = got.json()["items"]
        assert items and items[0]["id"] == cid, (q, items)
        assert field in items[0]["matched"], (q, items[0])
        assert all(p.startswith("*") for p in items[0]["phones"])  # masked

    one = api.call("GET", f"/api/customers/{cid}").json()
    assert one["products"][0]["serial"] == "SN1"

    patched = api.call(
        "PATCH", f"/api/customers/{cid}", json={"add_phones": ["19912345678"], "tags": ["vip"]}
    )
    assert patched.status_code == 200, patched.text
    assert "+8619912345678" in {p["e164"] for p in patched.json()["phones"]}
    assert patched.json()["tags"] == ["vip"]


def test_shared_number_is_ambiguous_and_a_name_breaks_the_tie(api) -> None:
    a = _create(api, name="王芳", phones=["13912345678"]).json()["id"]
    b = _create(api, name="李强", phones=["13912345678"]).json()["id"]
    both = api.call("GET", "/api/customers/search", params={"q": "139 1234 5678"}).json()
    assert {i["id"] for i in both["items"]} == {a, b}
    assert both["ambiguous"] is True
    named = api.call("GET", "/api/customers/search", params={"q": "139 1234 5678 李"}).json()
    assert named["items"][0]["id"] == b
    assert named["ambiguous"] is False


def test_recent_calls_are_on_the_record(api) -> None:
    cid = _create(api, name="陈小明", phones=["13800138001"]).json()["id"]
    engine = api.client.app.state.engine
    CallLogWriter(engine).write(
        [
            CallRecord(
                linkedid="c1",
                arrived_at=1_767_225_600.0,
                outcome=Outcome.ANSWERED,
                agent="1001",
                caller_number="13800138001",
            )
        ]
    )
    with Session(engine):
        pass
    calls = api.call("GET", f"/api/customers/{cid}").json()["recent_calls"]
    assert [c["linkedid"] for c in calls] == ["c1"]


def test_agents_may_not_set_tier_but_supervisors_may(api) -> None:
    denied = _create(api, name="赵六", phones=["13700000001"], tier="vip2")
    assert denied.status_code == 403
    allowed = _create(api, "supervisor", name="赵六", phones=["13700000001"], tier="vip2")
    assert allowed.status_code == 201
    cid = allowed.json()["id"]
    assert api.call("PATCH", f"/api/customers/{cid}", json={"tier": "vip3"}).status_code == 403


@pytest.mark.parametrize(
    "q",
    [
        "",
        "   ",
        "x" * 10_000,
        "😀😀😀",
        "12345",
        "+86 123",
    ],
)
def test_hostile_search_input_is_a_clean_4xx(api, q) -> None:
    got = api.call("GET", "/api/customers/search", params={"q": q})
    assert got.status_code == 422, got.text
    assert got.json()["error_id"] in ("invalid-query", "invalid-request")


def test_a_nul_in_the_search_is_the_one_text_rule(api) -> None:
    got = api.call("GET", "/api/customers/search", params={"q": "\x00"})
    assert got.status_code == 400, got.text
    assert got.json()["error_id"] == "invalid-text"  # docs/access.md


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "张伟'; DROP TABLE customers; --",
        "%_%",
        '"朝阳区"',
        "张伟😀",
        "Zhang伟 朝阳",
        "路路路路路路路路路",
    ],
)
def test_odd_but_searchable_input_gives_results_or_empty(api, q) -> None:
    _create(api, name="张伟", phones=["13800138002"], addresses=["北京市朝阳区建国路1号"])
    got = api.call("GET", "/api/customers/search", params={"q": q})
    assert got.status_code in (200, 422), got.text
    if got.status_code == 200:
        assert isinstance(got.json()["items"], list)
    # the table is still there and still answers
    assert api.call("GET", "/api/customers/search", params={"q": "张伟"}).json()["count"] == 1


def test_bad_bodies_and_ids(api) -> None:
    assert _create(api, name="", phones=["13800138000"]).status_code == 422
    assert _create(api, name="王五", phones=["12345"]).status_code == 422
    assert _create(api, name="王五", phones=[]).status_code == 422
    assert _create(api, name="王" * 300, phones=["13800138000"]).status_code == 422
    assert _create(api, name="王五", phones=["13800138000"], bogus=1).status_code == 422
    assert api.call("GET", "/api/customers/999999").status_code == 404
    assert api.call("GET", "/api/customers/0").status_code == 422
    assert api.call("GET", "/api/customers/abc").status_code == 422
