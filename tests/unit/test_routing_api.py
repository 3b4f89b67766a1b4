"""``GET /api/routing/explain`` and ``hotline route explain``: one explanation, two doors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token, effective_routes, guards_of
from hotline.api.routes import routing
from hotline.db import Customer, CustomerPhone
from hotline.routing.cli import route_app
from hotline.settings import load_settings

PATH = "/api/routing/explain"


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    tokens: dict[str, str]

    def get(self, who: str | None = "agent", **params: object):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(PATH, headers=headers, params=params)


def make_api(db_url: str, **settings: object) -> Iterator[Api]:
    app = create_app(load_settings(database_url=db_url, **settings))
    if not any(getattr(r, "path", "") == PATH for r in effective_routes(app.routes)):
        app.include_router(routing.router)  # until app.py includes it
    with TestClient(app) as client:
        engine = app.state.engine
        tokens = {
            "agent": create_token(engine, role=Role.AGENT, name="Agent 1001", agent_id="1001"),
            "supervisor": create_token(engine, role=Role.SUPERVISOR, name="Sup"),
        }
        with Session(engine) as session, session.begin():
            wu_vip = Customer(name="王芳", tier="vip2", preferred_dialect="wu")
            shop_a, shop_b = Customer(name="店A"), Customer(name="店B", tier="vip3")
            session.add_all([wu_vip, shop_a, shop_b])
            session.flush()
            session.add_all(
                [
                    CustomerPhone(customer_id=wu_vip.id, e164="+862087654321"),
                    CustomerPhone(customer_id=shop_a.id, e164="+8675523456789"),
                    CustomerPhone(customer_id=shop_b.id, e164="+8675523456789"),
                ]
            )
        yield Api(client=client, app=app, tokens=tokens)


@pytest.fixture
def api(db_url) -> Iterator[Api]:
    yield from make_api(db_url)


def test_route_requires_a_token(api) -> None:
    response = api.get(who=None, caller="13800138000")
    assert response.status_code == 401
    assert response.json()["error_id"] == "not-authenticated"
    route = next(r for r in effective_routes(api.app.routes) if getattr(r, "path", "") == PATH)
    assert frozenset({Role.AGENT}) in guards_of(route)


def test_region_decision(api) -> None:
    body = api.get(caller="0592-5123456").json()
    assert (body["queue"], body["dialect"], body["source"]) == ("minnan", "minnan", "region")
    assert body["priority"] == 0 and body["customer"] is None
    assert body["location"]["method"] == "area-code"
    assert body["reasons"][0] == "no customer has this number"
    assert body["menu"]["2"] == "cantonese"


def test_known_customer_preference_and_tier(api) -> None:
    body = api.get(who="supervisor", caller="020 8765 4321", digits="2").json()
    assert (body["queue"], body["source"], body["priority"]) == ("wu", "customer", 20)
    assert body["customer"]["preferred_dialect"] == "wu"
    assert body["region"] == "广东省广州市"


def test_account_manager_from_the_record(api) -> None:
    if not hasattr(Customer, "account_manager"):
        pytest.skip("the customer model has no account_manager column yet")
    with Session(api.app.state.engine) as session, session.begin():
        customer = Customer(name="李雷", tier="vip1")
        customer.account_manager = "1002"
        session.add(customer)
        session.flush()
        session.add(CustomerPhone(customer_id=customer.id, e164="+8613912345678"))
    body = api.get(caller="13912345678").json()
    assert body["account_manager"] == {"agent_id": "1002", "seconds": 10}
    assert body["priority"] == 10


def test_shared_number_assumes_no_customer(api) -> None:
    body = api.get(caller="0755-23456789").json()
    assert body["customer"] is None and body["priority"] == 0
    assert "several customers" in body["reasons"][0]
    assert body["queue"] == "cantonese"


def test_digits_override_region(api) -> None:
    body = api.get(caller="13800138000", digits="4").json()
    assert (body["queue"], body["source"]) == ("wu", "ivr")


def test_garbage_caller_is_explained_not_refused(api) -> None:
    response = api.get(caller="anonymous", digits="x*#")
    assert response.status_code == 200
    body = response.json()
    assert (body["queue"], body["source"]) == ("mandarin", "default")
    assert body["caller_e164"] is None


@pytest.mark.parametrize("params", [{}, {"caller": ""}, {"caller": "1" * 65}])
def test_invalid_query_is_422(api, params) -> None:
    response = api.get(**params)
    assert response.status_code == 422
    assert response.json()["error_id"] == "invalid-request"


def test_configured_queues_come_from_the_settings(db_url) -> None:
    for api in make_api(db_url, queues="mandarin,hakka"):
        body = api.get(caller="0753-2123456").json()
        assert body["queue"] == "hakka" and body["queues"] == ["mandarin", "hakka"]


def test_hotline_queues_without_wu_falls_back(db_url, monkeypatch) -> None:
    """HOTLINE_QUEUES is the live routing's queue list: explain must use it too."""
    monkeypatch.setenv("HOTLINE_QUEUES", "mandarin,cantonese,minnan,sichuanese")
    for api in make_api(db_url):
        body = api.get(who="supervisor", caller="020 8765 4321").json()  # prefers wu
        assert (body["dialect"], body["queue"], body["source"]) == ("wu", "mandarin", "customer")
        assert body["queues"] == ["mandarin", "cantonese", "minnan", "sichuanese"]
        assert any("no wu queue is configured" in r for r in body["reasons"])
        assert body["menu"]["4"] == "sichuanese"


def test_region_setting_reads_the_number(db_url) -> None:
    for api in make_api(db_url, default_region="HK"):
        body = api.get(caller="21234567").json()
        assert body["caller_e164"] == "+85221234567"
        assert (body["queue"], body["source"]) == ("cantonese", "region")


# -- CLI -------------------------------------------------------------------------------------


def test_cli_explain_json_without_database(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    result = CliRunner().invoke(route_app, ["explain", "0754-88123456", "--json"])
    assert result.exit_code == 0, result.output
    assert '"queue": "minnan"' in result.output and '"dialect": "teochew"' in result.output
    assert "does not exist" in result.output
    assert not (tmp_path / "absent.sqlite3").exists()


def test_cli_explain_uses_the_customer_record(api, db_url, monkeypatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", db_url)
    result = CliRunner().invoke(route_app, ["explain", "02087654321", "--digits", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wu") and "priority=20" in result.output
    assert "source=customer" in result.output


def test_cli_uses_hotline_queues(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    monkeypatch.setenv("HOTLINE_QUEUES", "mandarin,cantonese")
    result = CliRunner().invoke(route_app, ["explain", "0754-88123456", "--json"])
    assert result.exit_code == 0, result.output
    assert '"queue": "mandarin"' in result.output and '"dialect": "teochew"' in result.output


def test_cli_refuses_invalid_settings(monkeypatch) -> None:
    monkeypatch.setenv("HOTLINE_DEFAULT_REGION", "XX")
    result = CliRunner().invoke(route_app, ["explain", "0754-88123456"])
    assert result.exit_code == 2
    assert "HOTLINE_DEFAULT_REGION" in result.output


def test_cli_queue_option(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    result = CliRunner().invoke(
        route_app, ["explain", "0754-88123456", "--queues", "mandarin,cantonese", "--no-customer"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mandarin") and "teochew" in result.output
