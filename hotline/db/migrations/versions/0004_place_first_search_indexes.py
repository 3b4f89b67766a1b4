"""Place-first search indexes: the matcher's lookups bounded by the district before the
name or address text, so their cost follows the size of a district, not of the country.

* ``customers (district, name_pinyin)`` replaces ``(name_pinyin, district)``. Equality
  lookups (pinyin + district) are as fast either way, but the "one wrong last
  character" fallback is a *range* on the pinyin (``zhangwei`` ≤ key < ``zhangwei{``):
  with the pinyin first, the range walks every 张伟* in the country and checks the
  district entry by entry; with the district first it reads only that district's.
* PostgreSQL: one GIN over ``(district, normalised gin_trgm_ops)`` (``btree_gin`` gives
  GIN a plain equality operator class) replaces the trigram GIN on ``normalised`` and
  the ``(district, city)`` B-tree. With those two, the planner ANDed a bitmap of the
  whole district (14,795 rows for 深圳市福田区 at 1 M customers, for 2 trigram hits)
  with the trigram bitmap; in one GIN the district is one more key of the same scan.
  A GIN over several columns also serves a condition on the text alone, so an
  address without a district still uses it. Where ``btree_gin`` is not available (it
  ships in PostgreSQL's contrib, a trusted extension since 13), the old pair stays.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_customers_name_pinyin_district", table_name="customers")
    op.create_index("ix_customers_district_name_pinyin", "customers", ["district", "name_pinyin"])
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gin'")
    ).scalar()
    if not available:
        log.warning(
            "btree_gin is not available: address search keeps the trigram GIN and the "
            "(district, city) B-tree, which is slower at national scale"
        )
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # a GIN build over millions of addresses is several times faster with room to sort
    op.execute("SET LOCAL maintenance_work_mem = '1GB'")
    op.execute(
        "CREATE INDEX ix_addresses_district_normalised_trgm ON addresses "
        "USING gin (district, normalised gin_trgm_ops)"
    )
    op.drop_index("ix_addresses_normalised_trgm", table_name="addresses")
    op.drop_index("ix_addresses_district_city", table_name="addresses")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_addresses_district_normalised_trgm")
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_addresses_normalised_trgm ON addresses "
            "USING gin (normalised gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_addresses_district_city ON addresses (district, city)"
        )
    op.drop_index("ix_customers_district_name_pinyin", table_name="customers")
    op.create_index("ix_customers_name_pinyin_district", "customers", ["name_pinyin", "district"])
