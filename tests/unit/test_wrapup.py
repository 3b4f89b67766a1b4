"""The agent's part of a call: wrap-up and switching the linked customer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.db.models import CallLog, Customer, CustomerLink, CustomerPhone
from hotline.db.session import make_engine, session_factory, upgrade
from hotline.settings import load_settings

T0 = 1_795_000_000.0


@pytest.fixture
def setup(db_url: str) -> Iterator[tuple[TestClient, dict[str, str], object, dict[str, int]]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        a, b = Customer(name="张伟"), Customer(name="章伟")
        s.add_all([a, b])
        s.flush()
        s.add(CustomerPhone(customer_id=a.id, e164="+8613800138000"))
        s.commit()
        ids = {"zhang": a.id, "zhang2": b.id}
    tokens = {
        "a": create_token(engine, role=Role.AGENT, name="a", agent_id="1001"),
        "b": create_token(engine, role=Role.AGENT, name="b", agent_id="1002"),
        "sup": create_token(engine, role=Role.SUPERVISOR, name="s"),
    }
    writer = CallLogWriter(engine)
    writer.write([_record(Outcome.IN_PROGRESS)])
    with TestClient(create_app(load_settings(database_url=db_url))) as client:
        yield client, tokens, writer, ids
    engine.dispose()


def _record(outcome: Outcome, customer_id: int | None = None) -> CallRecord:
    return CallRecord(
        linkedid="1795000000.1", outcome=outcome, caller_number="13800138000",
        caller_name="张先生", arrived_at=T0, answered_at=T0 + 5, agent="1001",
        ended_at=T0 + 60 if outcome != Outcome.IN_PROGRESS else None,
        customer_id=customer_id, survey_score=None if outcome == Outcome.IN_PROGRESS else 1,
    )  # fmt: skip


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_wrapup_is_stored_and_survives_the_final_write(setup) -> None:
    client, tokens, writer, _ = setup
    r = client.post(
        "/api/calls/1795000000.1/wrapup",
        headers=auth(tokens["a"]),
        json={"notes": "<b>热水器</b> 漏水", "disposition": "repair_booked"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["notes"] == "<b>热水器</b> 漏水"
    writer.write([_record(Outcome.ANSWERED)])  # the tracker's final row arrives afterwards
    row = client.get("/api/calls", headers=auth(tokens["sup"])).json()["items"][0]
    assert (row["notes"], row["disposition"], row["outcome"]) == (
        "<b>热水器</b> 漏水",
        "repair_booked",
        "answered",
    )
    assert row["wrapped_up_at"] is not None
    assert row["survey_score"] == 1


def test_only_the_agent_on_the_call_or_a_supervisor(setup) -> None:
    client, tokens, _, _ = setup
    body = {"notes": "", "disposition": "resolved"}
    assert (
        client.post(
            "/api/calls/1795000000.1/wrapup", headers=auth(tokens["b"]), json=body
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/calls/1795000000.1/wrapup", headers=auth(tokens["sup"]), json=body
        ).status_code
        == 200
    )
    assert (
        client.post("/api/calls/nope/wrapup", headers=auth(tokens["sup"]), json=body).status_code
        == 404
    )
    assert client.post("/api/calls/1795000000.1/wrapup", json=body).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"disposition": ""},
        {"disposition": "DROP TABLE"},
        {"disposition": "ok", "notes": "x" * 5000},
        {"disposition": "ok", "extra": 1},
        [],
        "text",
    ],
)
def test_malformed_wrapups_are_4xx(setup, body) -> None:
    client, tokens, _, _ = setup
    r = client.post("/api/calls/1795000000.1/wrapup", headers=auth(tokens["a"]), json=body)
    assert r.status_code == 422


def test_agent_switches_the_customer_and_the_tracker_keeps_it(setup, db_url) -> None:
    client, tokens, writer, ids = setup
    writer.write([_record(Outcome.IN_PROGRESS)])  # the number's sole holder got linked
    row = client.get("/api/calls", headers=auth(tokens["sup"])).json()["items"][0]
    assert (row["customer_id"], row["customer_link_source"]) == (ids["zhang"], "number")
    r = client.post(
        "/api/calls/1795000000.1/customer",
        headers=auth(tokens["a"]),
        json={"customer_id": ids["zhang2"]},
    )
    assert r.status_code == 200, r.text
    writer.write([_record(Outcome.ANSWERED, customer_id=ids["zhang"])])  # IVR's id, later
    row = client.get("/api/calls", headers=auth(tokens["sup"])).json()["items"][0]
    assert (row["customer_id"], row["customer_link_source"]) == (ids["zhang2"], "agent")
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        link = s.scalars(select(CustomerLink)).one()
        assert (link.from_customer_id, link.to_customer_id, link.agent_id) == (
            ids["zhang"],
            ids["zhang2"],
            "1001",
        )
        assert s.scalars(select(CallLog)).one().customer_id == ids["zhang2"]
    engine.dispose()
    missing = client.post(
        "/api/calls/1795000000.1/customer", headers=auth(tokens["a"]), json={"customer_id": 999999}
    )
    assert missing.status_code == 404
