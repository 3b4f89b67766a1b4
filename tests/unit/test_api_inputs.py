"""What text the API accepts (docs/access.md): one rule for NUL and non-UTF-8 everywhere,
date-times that are ISO 8601 only, and an OpenAPI that documents the errors it answers.

Each NUL case runs on SQLite and PostgreSQL (``db_url``): PostgreSQL is where a NUL used
to reach the database and come back as a 500, with the agent's wrap-up notes lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.db.models import CallLog, Customer
from hotline.settings import load_settings

T0 = 1_795_000_000.0
LINKEDID = "1795000000.1"
PHONES = ["13800138000"]


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str = "agent", **kwargs: object):
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    app = create_app(load_settings(database_url=db_url))
    with TestClient(app) as client:
        engine = app.state.engine
        tokens = {
            "agent": create_token(engine, role=Role.AGENT, name="A", agent_id="1001"),
            "supervisor": create_token(engine, role=Role.SUPERVISOR, name="S"),
        }
        CallLogWriter(engine).write(
            [
                CallRecord(
                    linkedid=LINKEDID,
                    outcome=Outcome.IN_PROGRESS,
                    caller_number="13800138000",
                    arrived_at=T0,
                    answered_at=T0 + 5,
                    agent="1001",
                )
            ]
        )
        yield Api(client, app, tokens)


def assert_invalid_text(response, where: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_id"] == "invalid-text", body
    assert body["details"]["where"] == where, body
    assert "\x00" not in response.text  # the refusal never echoes the bad byte itself


# -- one rule: NUL or not UTF-8 is a 400 invalid-text, wherever it is ---------------------


BAD_QUERIES = [
    "number=%00",
    "number=138%0000",
    "number=%FF",  # not UTF-8 once decoded
    "number=%ED%A0%80",  # an encoded lone surrogate
    "%00=1",  # in a key
    "since=2026-01-01T00:00:00%00",
]


def test_bad_text_in_the_query_is_400(api: Api) -> None:
    for raw_query in BAD_QUERIES:  # one app per database for all of them (CI time)
        assert_invalid_text(api.call("GET", f"/api/calls?{raw_query}", who="supervisor"), "query")


def test_bad_text_in_the_path_is_400(api: Api) -> None:
    assert_invalid_text(api.call("GET", "/api/calls/17%0095"), "path")


@pytest.mark.parametrize("notes", ["call back\x00tomorrow", "\x00", "bad \ud800 surrogate"])
def test_wrapup_notes_with_bad_text_are_refused_and_nothing_is_half_stored(
    api: Api, notes: str
) -> None:
    import json

    # A lone surrogate cannot be encoded by the client's JSON encoder; send the escape.
    body = json.dumps({"disposition": "resolved", "notes": notes}, ensure_ascii=True)
    got = api.call(
        "POST",
        f"/api/calls/{LINKEDID}/wrapup",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_invalid_text(got, "body")
    assert got.json()["details"]["field"] == "notes"
    with Session(api.app.state.engine) as session:
        row = session.scalars(select(CallLog).where(CallLog.linkedid == LINKEDID)).one()
        assert row.notes in (None, "")  # not stored cut or stripped
    # The page keeps the text; the same notes without the bad character go through.
    clean = notes.replace("\x00", " ").replace("\ud800", "?")
    ok = api.call(
        "POST", f"/api/calls/{LINKEDID}/wrapup", json={"disposition": "resolved", "notes": clean}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["notes"] == clean


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/customers", {"name": "张\x00伟", "phones": PHONES}, "name"),
        (
            "POST",
            "/api/customers",
            {"name": "张伟", "phones": PHONES, "tags": ["ok", "b\x00d"]},
            "tags.1",
        ),
        (
            "POST",
            "/api/customers",
            {"name": "张伟", "phones": PHONES, "addresses": ["北京\x00"]},
            "addresses.0",
        ),
        ("POST", "/api/customers", {"name": "张伟", "phones": PHONES, "n\x00me": "x"}, "n\\x00me"),
    ],
)
def test_customer_with_bad_text_is_400_and_not_created(
    api: Api, method: str, path: str, body: dict[str, object], field: str
) -> None:
    got = api.call(method, path, json=body)
    assert_invalid_text(got, "body")
    assert got.json()["details"]["field"] == field
    with Session(api.app.state.engine) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_patching_a_customer_name_with_a_nul_is_400(api: Api) -> None:
    made = api.call("POST", "/api/customers", json={"name": "张伟", "phones": PHONES})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    got = api.call("PATCH", f"/api/customers/{cid}", json={"name": "张\x00伟"})
    assert_invalid_text(got, "body")
    assert api.call("GET", f"/api/customers/{cid}").json()["name"] == "张伟"


def test_a_search_with_a_nul_is_400(api: Api) -> None:
    got = api.call("GET", "/api/customers/search", params={"q": "张\x00伟"})
    assert_invalid_text(got, "query")


def test_a_websocket_url_with_a_nul_is_refused(api: Api) -> None:
    from starlette.websockets import WebSocketDisconnect

    url = f"/ws/agent?token={api.tokens['agent']}&x=%00"
    with pytest.raises(WebSocketDisconnect) as refused, api.client.websocket_connect(url):
        pass
    assert refused.value.code == 1008


def test_unicode_that_is_valid_passes_untouched(api: Api) -> None:
    notes = "客户说：明天再打 🙂 — ok"
    got = api.call(
        "POST", f"/api/calls/{LINKEDID}/wrapup", json={"disposition": "resolved", "notes": notes}
    )
    assert got.status_code == 200, got.text
    assert got.json()["notes"] == notes


def test_an_oversized_body_is_413(db_url: str) -> None:
    app = create_app(load_settings(database_url=db_url, api_max_body_bytes=2048))
    with TestClient(app) as client:
        token = create_token(app.state.engine, role=Role.AGENT, name="A", agent_id="1001")
        got = client.post(
            "/api/customers",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "x" * 4000, "phones": PHONES},
        )
        assert got.status_code == 413
        assert got.json()["error_id"] == "body-too-large"


# -- date-times: ISO 8601 only ----------------------------------------------------------


def test_since_that_is_not_an_iso_date_time_is_422(api: Api) -> None:
    for since in ["0.5", "1795000000", "yesterday", "2026-13-01", "9999-12-31T23:59:59-23:59"]:
        got = api.call("GET", "/api/calls", who="supervisor", params={"since": since})
        assert got.status_code == 422, (since, got.text)
        assert got.json()["error_id"] == "invalid-request"


def test_since_in_iso_8601_filters(api: Api) -> None:
    # T0 is 2026-11-18T11:06:40Z
    for since, count in [
        ("2026-01-01", 1),
        ("2026-11-18T11:06:40Z", 1),
        ("2026-11-18T19:06:40+08:00", 1),
        ("2026-11-18T11:06:41+00:00", 0),
    ]:
        got = api.call("GET", "/api/calls", who="supervisor", params={"since": since})
        assert got.status_code == 200, (since, got.text)
        assert got.json()["count"] == count, since


# -- the OpenAPI documents the errors ---------------------------------------------------


def _operations(schema: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_openapi_documents_the_errors_each_route_answers(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    ops = {(p, m): op for p, m, op in _operations(schema) if p.startswith("/api")}
    assert len(ops) >= 15
    for (path, method), op in ops.items():
        codes = set(op["responses"])
        # Every /api route: bad text (400), no token (401), bad input (422) and the
        # database out while the token is checked (503).
        assert {"400", "401", "422", "503"} <= codes, (method, path, sorted(codes))
        for code in (c for c in codes if not c.startswith("2")):
            content = op["responses"][code].get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref", "")
            assert ref.endswith("/ErrorOut"), (method, path, code)  # what the handlers send
            assert "error_id" in op["responses"][code]["description"], (method, path, code)
    expected = {
        ("/api/customers/{customer_id}", "get"): {"403", "404"},
        ("/api/customers/{customer_id}", "patch"): {"403", "404"},
        ("/api/calls/{call_id}/wrapup", "post"): {"403", "404"},
        ("/api/calls/{call_id}/customer", "post"): {"403", "404"},
        ("/api/agents", "get"): {"403"},
    }
    for key, codes in expected.items():
        assert key in ops, key
        assert codes <= set(ops[key]["responses"]), (key, sorted(ops[key]["responses"]))
    all_codes = {code for op in ops.values() for code in op["responses"]}
    assert {"400", "401", "403", "404", "409", "503"} <= all_codes
    since = next(p for p in ops[("/api/calls", "get")]["parameters"] if p["name"] == "since")
    formats = [s.get("format") for s in since["schema"].get("anyOf", [since["schema"]])]
    assert "date-time" in formats


def test_every_documented_error_id_is_one_the_api_has(api: Api) -> None:
    import re

    from hotline.api import errors

    known = {
        cls.error_id
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.HotlineError)
    }
    schema = api.client.get("/openapi.json").json()
    for path, method, op in _operations(schema):
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                ids = set(re.findall(r"`([a-z-]+)`", response["description"]))
                assert ids and ids <= known, (method, path, code, ids - known)
