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


def _move_text_index(old: str, new: str) -> None:
    """Rebuild the address text index over column ``new`` instead of ``old``.

    Upgrade and downgrade are the same move in opposite directions. On PostgreSQL the
    index is the one migration 0004 left: (district, text) where btree_gin is
    available, the text alone (beside a (district, city) B-tree) where it is not.
    """
    if op.get_bind().dialect.name != "postgresql":
        _replace_fts(new)
        return
    op.execute("SET LOCAL maintenance_work_mem = '1GB'")
    if f"ix_addresses_district_{old}_trgm" in _index_names():
        op.execute(
            f"CREATE INDEX ix_addresses_district_{new}_trgm ON addresses "
            f"USING gin (district, {new} gin_trgm_ops)"
        )
        op.execute(f"DROP INDEX ix_addresses_district_{old}_trgm")
    else:
        op.execute(
            f"CREATE INDEX ix_addresses_{new}_trgm ON addresses USING gin ({new} gin_trgm_ops)"
        )
        op.execute(f"DROP INDEX IF EXISTS ix_addresses_{old}_trgm")


def upgrade() -> None:
    _move_text_index("normalised", "detail")


def downgrade() -> None:
    _move_text_index("detail", "normalised")
