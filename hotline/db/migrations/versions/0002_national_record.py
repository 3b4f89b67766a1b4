"""The national record: name keys, tiers and home area on customers, phone regions,
addresses and products, and the search indexes.

PostgreSQL: pg_trgm and a GIN trigram index on ``addresses.normalised``. pg_trgm only
sees Hanzi as letters in a database whose ``LC_CTYPE`` is UTF-8 aware (C.UTF-8,
zh_CN.UTF-8); under ``C`` ``show_trgm('张伟')`` is empty (research §4.2), so the upgrade
warns when it finds that. SQLite: an FTS5 table with the trigram tokenizer over the same
column, kept in sync by triggers so every writer (ORM, importer, raw SQL) is covered.

Existing customers get their pinyin keys computed here, in Python, because the keys
come from :func:`hotline.matching.keys.name_keys` and not from SQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-08-10
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

JSON_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

_CUSTOMER_INDEXES = {
    "ix_customers_name": ["name"],
    "ix_customers_name_pinyin_city": ["name_pinyin", "city"],
    "ix_customers_name_pinyin_district": ["name_pinyin", "district"],
    "ix_customers_name_initials_city": ["name_initials", "city"],
    "ix_customers_name_initials_district": ["name_initials", "district"],
}

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE addresses_fts USING fts5("
    "normalised, content='addresses', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER addresses_fts_ai AFTER INSERT ON addresses BEGIN "
    "INSERT INTO addresses_fts(rowid, normalised) VALUES (new.id, new.normalised); END",
    "CREATE TRIGGER addresses_fts_ad AFTER DELETE ON addresses BEGIN "
    "INSERT INTO addresses_fts(addresses_fts, rowid, normalised) "
    "VALUES ('delete', old.id, old.normalised); END",
    "CREATE TRIGGER addresses_fts_au AFTER UPDATE OF normalised ON addresses BEGIN "
    "INSERT INTO addresses_fts(addresses_fts, rowid, normalised) "
    "VALUES ('delete', old.id, old.normalised); "
    "INSERT INTO addresses_fts(rowid, normalised) VALUES (new.id, new.normalised); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.add_column(
        "customers", sa.Column("name_pinyin", sa.String(200), server_default="", nullable=False)
    )
    op.add_column(
        "customers", sa.Column("name_initials", sa.String(50), server_default="", nullable=False)
    )
    op.add_column("customers", sa.Column("account_manager", sa.String(80), nullable=True))
    op.add_column("customers", sa.Column("tags", JSON_LIST, server_default="[]", nullable=False))
    op.add_column("customers", sa.Column("site", sa.String(80), nullable=True))
    op.add_column("customers", sa.Column("city", sa.String(32), nullable=True))
    op.add_column("customers", sa.Column("district", sa.String(32), nullable=True))
    op.add_column("customer_phones", sa.Column("region", sa.String(64), nullable=True))
    _backfill_name_keys(bind)
    for name, columns in _CUSTOMER_INDEXES.items():
        op.create_index(name, "customers", columns)

    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(16), server_default="home", nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("province", sa.String(32), nullable=True),
        sa.Column("city", sa.String(32), nullable=True),
        sa.Column("district", sa.String(32), nullable=True),
        sa.Column("street", sa.String(120), nullable=True),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("normalised", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_addresses_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
    )
    op.create_index(op.f("ix_addresses_customer_id"), "addresses", ["customer_id"])
    op.create_index("ix_addresses_district_city", "addresses", ["district", "city"])
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(80), nullable=False),
        sa.Column("serial", sa.String(80), nullable=True),
        sa.Column("purchase_date", sa.Date(), nullable=True),
        sa.Column("install_date", sa.Date(), nullable=True),
        sa.Column("dealer", sa.String(120), nullable=True),
        sa.Column("service_provider", sa.String(120), nullable=True),
        sa.Column("warranty_end", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_products_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_customer_id"), "products", ["customer_id"])
    op.create_index(op.f("ix_products_serial"), "products", ["serial"])

    if dialect == "postgresql":
        ctype = bind.execute(sa.text("SELECT current_setting('lc_ctype')")).scalar()
        if str(ctype).upper() in ("C", "POSIX"):
            log.warning(
                "database LC_CTYPE is %s: pg_trgm cannot index Hanzi; address search will "
                "be slow. Create the database with LC_CTYPE 'C.UTF-8'.",
                ctype,
            )
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_addresses_normalised_trgm ON addresses "
            "USING gin (normalised gin_trgm_ops)"
        )
    elif dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)


def _backfill_name_keys(bind: sa.Connection) -> None:
    from hotline.matching.keys import name_keys

    customers = sa.table(
        "customers",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_pinyin", sa.String),
        sa.column("name_initials", sa.String),
    )
    rows = bind.execute(sa.select(customers.c.id, customers.c.name)).all()
    for row in rows:
        keys = name_keys(row.name)
        bind.execute(
            customers.update()
            .where(customers.c.id == row.id)
            .values(name_pinyin=keys.pinyin, name_initials=keys.initials)
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("addresses_fts_au", "addresses_fts_ad", "addresses_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS addresses_fts")
    op.drop_table("products")
    op.drop_table("addresses")
    for name in _CUSTOMER_INDEXES:
        op.drop_index(name, table_name="customers")
    with op.batch_alter_table("customer_phones") as batch:
        batch.drop_column("region")
    with op.batch_alter_table("customers") as batch:
        for column in (
            "district",
            "city",
            "site",
            "tags",
            "account_manager",
            "name_initials",
            "name_pinyin",
        ):
            batch.drop_column(column)
