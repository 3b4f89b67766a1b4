"""PostgreSQL databases for tests and benches: made on the server of an admin URL."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["database_url", "drop_database", "ensure_database"]


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointed at database ``name`` (password kept: it is a URL to use)."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def ensure_database(admin_url: str, name: str, *, fresh: bool = False) -> str:
    """Create ``name`` unless it exists (``fresh``: drop it first); its URL."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if fresh:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
