"""schemathesis against the live OpenAPI (docs/access.md): no 500, no schema violation.

The app is the real one, on SQLite and on PostgreSQL, its lifespan running; the schema
is the one it serves at ``/openapi.json``; every request carries an admin token, so the
routes' bodies are reached instead of a 401. Each operation gets a bounded number of
generated cases, valid ones and invalid ones, and every response is checked by
schemathesis: not a 5xx (a 503 only where documented: no AMI service runs here), a
status the operation documents, a content type and a body that match the documented
schema, invalid input refused. The whole run is held under ``TIME_BUDGET_S``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from hotline.api.app import create_app
from hotline.api.auth import Role, create_token
from hotline.calls.records import CallRecord, Outcome
from hotline.calls.writer import CallLogWriter
from hotline.settings import load_settings

# Per operation and generation mode; raise it for a deeper run by hand (CI keeps 25).
MAX_EXAMPLES = int(os.environ.get("HOTLINE_SCHEMATHESIS_EXAMPLES", "25"))
TIME_BUDGET_S = max(120.0, MAX_EXAMPLES * 5.0)  # per database
# A 503 is a documented answer when the service the route needs is not running here.
UNAVAILABLE = 503


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(load_settings(database_url=db_url))
    with TestClient(app):  # the lifespan: database migrated, state set
        engine = app.state.engine
        token = create_token(engine, role=Role.ADMIN, name="schemathesis")
        CallLogWriter(engine).write(
            [
                CallRecord(
                    linkedid="1795000000.1",
                    outcome=Outcome.ANSWERED,
                    caller_number="13800138000",
                    arrived_at=1_795_000_000.0,
                    answered_at=1_795_000_005.0,
                    ended_at=1_795_000_060.0,
                    agent="1001",
                )
            ]
        )
        yield app, token


def _server_error_unless_documented(ctx, response, case):  # type: ignore[no-untyped-def]
    """not_a_server_error, except a 503 the operation documents (no AMI, no live store)."""
    if response.status_code == UNAVAILABLE and str(
        UNAVAILABLE
    ) in case.operation.definition.raw.get("responses", {}):
        return True
    return not_a_server_error(ctx, response, case)


# FastAPI, like most HTTP servers, ignores query parameters it does not know, and the
# token is not a generated parameter (it is sent on every case): schemathesis is told so,
# so "invalid data accepted" is about the parameters the API does declare.
CONFIG = schemathesis.Config.from_dict(
    {"generation": {"allow-extra-parameters": False, "with-security-parameters": False}}
)

CHECKS = [
    _server_error_unless_documented,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _cases(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> int:
    """Run one operation's generated cases in one mode; how many ran. Raises on a failure."""
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    ran = 0

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: a CI failure reproduces
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(headers=headers, checks=checks)

    run()
    return ran


def fuzz(app: FastAPI, headers: dict[str, str], prefix: str = "/api/") -> tuple[int, list[str]]:
    """Every operation under ``prefix``, in both generation modes: (cases, failures)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    started = time.monotonic()
    failures: list[str] = []
    cases = 0
    for operation in (op for op in operations if op.path.startswith(prefix)):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                cases += _cases(operation, mode, headers)
            except hypothesis.errors.Unsatisfiable:
                pass  # no invalid input exists for this operation (e.g. no parameters)
            except (AssertionError, FailureGroup) as exc:
                failures.append(f"{mode.value} {operation.label}: {exc}"[:1500])
            except Exception as exc:  # the app raised: a 500 in production
                failures.append(f"{mode.value} {operation.label}: 500 {exc!r}"[:1500])
        assert time.monotonic() - started < TIME_BUDGET_S, f"over budget after {operation.label}"
    return cases, failures


def test_schemathesis_finds_no_500_and_no_schema_violation(served) -> None:
    app, token = served
    started = time.monotonic()
    cases, failures = fuzz(app, {"Authorization": f"Bearer {token}"})
    took = time.monotonic() - started
    print(f"schemathesis: {cases} cases in {took:.1f} s")
    assert cases >= 15 * MAX_EXAMPLES  # every /api operation was reached
    assert not failures, "\n\n".join(failures)


def test_the_harness_catches_a_500_and_a_schema_violation() -> None:
    """The same harness on a two-route app that is wrong on purpose must report both."""
    from pydantic import BaseModel

    class Out(BaseModel):
        n: int

    broken = FastAPI()

    @broken.get("/api/crash")
    def crash(q: int = 0) -> dict[str, int]:
        if q > 5:
            raise RuntimeError("boom")
        return {"q": q}

    @broken.get("/api/lies", response_model=None, responses={200: {"model": Out}})
    def lies() -> dict[str, str]:
        return {"n": "not a number"}

    with TestClient(broken, raise_server_exceptions=False):
        cases, failures = fuzz(broken, {})
    assert cases > 0
    assert any("/api/crash" in f and "500" in f for f in failures), failures
    assert any("/api/lies" in f for f in failures), failures
