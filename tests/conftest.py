"""Shared fixtures: real databases, and the rule that turns a missing service into a failure.

A test that needs PostgreSQL, Redis, the Asterisk lab or Chromium calls :func:`need`
when the thing is missing. Locally that is a skip with a loud reason; in CI
(``HOTLINE_TEST_STRICT=1``, set by ``.ci/run``) it is a failure, so a green CI run
really did exercise the real parts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

STRICT = os.environ.get("HOTLINE_TEST_STRICT") == "1"
PG_ADMIN_URL = os.environ.get(
    "HOTLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def need(reason: str) -> None:
    """Skip (locally) or fail (under HOTLINE_TEST_STRICT=1) because ``reason`` is missing."""
    message = f"MISSING REAL PART: {reason}"
    if STRICT:
        pytest.fail(message + " (HOTLINE_TEST_STRICT=1 turns this skip into a failure)")
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'hotline.sqlite3'}"


@pytest.fixture(scope="session")
def _pg_server() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} unreachable: {exc.__class__.__name__}: {exc}"[:300]
    return None


@pytest.fixture
def pg_url(_pg_server) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if _pg_server:
        need(_pg_server)
    from tests.support.postgres import drop_database, ensure_database

    name = f"hotline_test_{uuid.uuid4().hex[:12]}"
    try:
        yield ensure_database(PG_ADMIN_URL, name)
    finally:
        drop_database(PG_ADMIN_URL, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """Run the test once on SQLite (embedded default) and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.flushdb()
        client.close()
    except Exception as exc:
        need(f"Redis at {REDIS_URL} unreachable: {exc}")
    return REDIS_URL
