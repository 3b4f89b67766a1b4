"""Address text search over the detail (road, number, building…) instead of the whole
normalised address.

Every needle the search looks for (the road and number, the detail's first 12 or 6
characters) comes out of a query's *detail*, and the stored detail is the end of the
stored normalised text, so the province, city and district in front of it only added
trigrams: for every address about nine characters that thousands of neighbours share.
The place is matched by the ``district`` key of the same GIN (and ``city`` beside it).
At 1 M customers the GIN over ``(district, detail)`` builds in 12.5 s instead of 19.4 s
and takes 84 MB instead of 125 MB (measured on the benchmark data); the build is the
longest step after a bulk import's load. On SQLite the FTS5 trigram table is rebuilt
over the detail in the same way, so both backends keep finding the same rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fts(column: str) -> tuple[str, ...]:
    """The SQLite FTS5 trigram table over ``addresses.<column>`` and its triggers."""
    return (
        "CREATE VIRTUAL TABLE addresses_fts USING fts5("
        f"{column}, content='addresses', content_rowid='id', tokenize='trigram')",
        "CREATE TRIGGER addresses_fts_ai AFTER INSERT ON addresses BEGIN "
        f"INSERT INTO addresses_fts(rowid, {column}) VALUES (new.id, new.{column}); END",
        "CREATE TRIGGER addresses_fts_ad AFTER DELETE ON addresses BEGIN "
        f"INSERT INTO addresses_fts(addresses_fts, rowid, {column}) "
        f"VALUES ('delete', old.id, old.{column}); END",
        f"CREATE TRIGGER addresses_fts_au AFTER UPDATE OF {column} ON addresses BEGIN "
        f"INSERT INTO addresses_fts(addresses_fts, rowid, {column}) "
        f"VALUES ('delete', old.id, old.{column}); "
        f"INSERT INTO addresses_fts(rowid, {column}) VALUES (new.id, new.{column}); END",
        "INSERT INTO addresses_fts(addresses_fts) VALUES ('rebuild')",
    )


def _replace_fts(column: str) -> None:
    for name in ("addresses_fts_au", "addresses_fts_ad", "addresses_fts_ai"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS addresses_fts")
    for statement in _fts(column):
        op.execute(statement)


def _index_names() -> set[str]:
    return {
        row[0]
        for row in op.get_bind().execute(
            sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'addresses'")
        )
    }


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _replace_fts("detail")
        return
    op.execute("SET LOCAL maintenance_work_mem = '1GB'")
    names = _index_names()
    if "ix_addresses_district_normalised_trgm" in names:  # btree_gin (migration 0004)
        op.execute(
            "CREATE INDEX ix_addresses_district_detail_trgm ON addresses "
            "USING gin (district, detail gin_trgm_ops)"
        )
        op.execute("DROP INDEX ix_addresses_district_normalised_trgm")
    else:  # no btree_gin: a text-only GIN beside the (district, city) B-tree
        op.execute(
            "CREATE INDEX ix_addresses_detail_trgm ON addresses USING gin (detail gin_trgm_ops)"
        )
        op.execute("DROP INDEX IF EXISTS ix_addresses_normalised_trgm")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _replace_fts("normalised")
        return
    op.execute("SET LOCAL maintenance_work_mem = '1GB'")
    names = _index_names()
    if "ix_addresses_district_detail_trgm" in names:
        op.execute(
            "CREATE INDEX ix_addresses_district_normalised_trgm ON addresses "
            "USING gin (district, normalised gin_trgm_ops)"
        )
        op.execute("DROP INDEX ix_addresses_district_detail_trgm")
    else:
        op.execute(
            "CREATE INDEX ix_addresses_normalised_trgm ON addresses "
            "USING gin (normalised gin_trgm_ops)"
        )
        op.execute("DROP INDEX IF EXISTS ix_addresses_detail_trgm")
