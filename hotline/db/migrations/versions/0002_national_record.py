"""The national record: name keys, tiers and home area on customers, phone regions,
addresses and products, and the search indexes.

PostgreSQL: pg_trgm and a GIN trigram index on ``addresses.normalised``. pg_trgm only
sees Hanzi as letters in a database whose ``LC_CTYPE`` is UTF-8 aware (C.UTF-8,
zh_CN.UTF-8); under ``C`` ``show_trgm('张伟')`` is empty, so the upgrade warns when it
finds that. SQLite: an FTS5 table with the trigram tokenizer over the same column, kept
in sync by triggers so every writer (ORM, importer, raw SQL) is covered.

Existing customers get their pinyin keys computed here, in Python, because the keys do
not come from SQL. The key function is a frozen copy of the one this revision shipped
with (:func:`_frozen_name_keys`), not an import of :mod:`hotline.matching.keys`: a
migration replays history, and today's keys (which read traditional characters as
simplified, for one) are written by today's code, not by an old schema step.

Revision ID: 0002
Revises: 0001
Create Date: 2026-08-10
"""

from __future__ import annotations

import logging
import re
import unicodedata
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
    customers = sa.table(
        "customers",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("name_pinyin", sa.String),
        sa.column("name_initials", sa.String),
    )
    rows = bind.execute(sa.select(customers.c.id, customers.c.name)).all()
    for row in rows:
        pinyin, initials = _frozen_name_keys(row.name)
        bind.execute(
            customers.update()
            .where(customers.c.id == row.id)
            .values(name_pinyin=pinyin, name_initials=initials)
        )


# -- the name keys as this revision computed them (frozen; do not follow later changes) --

_SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "覃": "qin",
    "缪": "miao",
    "乐": "yue",
    "翟": "zhai",
    "纪": "ji",
    "种": "chong",
    "秘": "bi",
    "繁": "po",
    "过": "guo",
    "冼": "xian",
    "隗": "wei",
    "召": "shao",
    "员": "yun",
    "句": "gou",
    "尉": "yu",
    "宓": "fu",
    "应": "ying",
    "华": "hua",
    "任": "ren",
    "沈": "shen",
    "长": "chang",
    "折": "she",
    "黑": "he",
    "阚": "kan",
    "柏": "bai",
    "朝": "chao",
    "都": "du",
    "藏": "zang",
    "重": "chong",
    "万俟": "mo qi",
    "尉迟": "yu chi",
    "长孙": "zhang sun",
    "单于": "chan yu",
}
_COMPOUND_SURNAMES = frozenset(
    {
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "长孙",
        "万俟",
        "单于",
        "夏侯",
        "令狐",
        "公孙",
        "慕容",
        "司徒",
        "司空",
        "宇文",
        "轩辕",
        "呼延",
        "端木",
        "南宫",
        "西门",
        "独孤",
        "澹台",
        "公冶",
        "钟离",
        "闻人",
    }
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002a6df]")
_NOT_LETTERS = re.compile(r"[^a-z]")


def _frozen_name_keys(name: str) -> tuple[str, str]:
    """(pinyin, initials) of a name: the surname read as a surname, Hanzi through
    pypinyin, a name without Hanzi keyed on its lower-cased letters."""
    from pypinyin import lazy_pinyin

    text = unicodedata.normalize("NFKC", name).strip()
    hanzi = "".join(ch for ch in text if _HAN.fullmatch(ch))
    if not hanzi:
        letters = _NOT_LETTERS.sub("", text.lower())
        return letters, letters[:1]
    cut = 2 if len(hanzi) > 2 and hanzi[:2] in _COMPOUND_SURNAMES else 1
    surname, given = hanzi[:cut], hanzi[cut:]
    parts = _SURNAME_READINGS[surname].split() if surname in _SURNAME_READINGS else []
    for ch in given if parts else hanzi:
        reading = lazy_pinyin(ch, errors="ignore")
        if reading and reading[0]:
            parts.append(reading[0].lower())
    return "".join(parts), "".join(p[0] for p in parts)


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
