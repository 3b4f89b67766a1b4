"""Engines, sessions and schema upgrades: the only place that opens database connections.

SQLite is the embedded default, so a first ``hotline serve`` must just work: the app
calls :func:`upgrade` at start, which runs the packaged Alembic migrations to head.
On PostgreSQL several API workers may start together; the upgrade then holds an
advisory lock so exactly one of them migrates and the others find the schema current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["MIGRATIONS_DIR", "alembic_config", "make_engine", "session_factory", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5
# Any constant works; it only has to be the same in every Hotline process.
_PG_MIGRATION_LOCK = 0x686F746C696E65  # "hotline"


def normalise_url(url: str | URL) -> URL:
    """Return ``url`` with the driver Hotline uses for its backend.

    ``postgresql://`` would make SQLAlchemy pick psycopg2, which is not installed;
    Hotline ships psycopg 3, so a bare PostgreSQL URL is rewritten to use it.
    """
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: object) -> Engine:
    """Create an engine tuned for the backend.

    SQLite gets WAL (readers do not block the call-log writer), enforced foreign keys
    (off by default in SQLite) and a busy timeout so a concurrent write waits instead of
    failing with "database is locked". PostgreSQL gets ``pool_pre_ping`` so a database
    restart costs one reconnect rather than a failed request, and a connect timeout so
    health checks and the writer fail fast while the database is down.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(parsed, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: object) -> None:
            cursor = dbapi_conn.cursor()
            try:
                if parsed.database not in (None, "", ":memory:"):
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
            finally:
                cursor.close()

        return engine
    if backend == "postgresql":
        options: dict[str, object] = {"pool_pre_ping": True}
        if parsed.drivername == "postgresql+psycopg":
            options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        options.update(kwargs)
        return create_engine(parsed, **options)
    raise ValueError(f"unsupported database backend {backend!r} (use sqlite or postgresql)")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (API responses read them)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations packaged with Hotline.

    Built in code rather than read from a file so that an installed wheel works from
    any working directory.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(url_or_engine: str | URL | Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` in one transaction.

    Raises whatever the database raises; a half-applied schema is not possible on
    PostgreSQL (transactional DDL) and the initial migration only creates tables.
    """
    owned = not isinstance(url_or_engine, Engine)
    engine = url_or_engine if isinstance(url_or_engine, Engine) else make_engine(url_or_engine)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                conn.execute(lock, {"key": _PG_MIGRATION_LOCK})
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
        log.info("database schema at %s (%s)", revision, engine.dialect.name)
    finally:
        if owned:
            engine.dispose()
