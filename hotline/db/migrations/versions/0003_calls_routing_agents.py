"""Call log: routing decision, survey score, wrap-up time and who linked the customer;
the audit of agents switching a call's customer; and the agents table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# What the models' UTCDateTime stores as (its ``impl``): a migration only emits DDL, and the
# DDL of that type is its impl's, so it needs no copy of the Python-side conversion.
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("call_logs") as batch:
        batch.add_column(sa.Column("wrapped_up_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("dialect", sa.String(32), nullable=True))
        batch.add_column(sa.Column("route_source", sa.String(16), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("route_reasons", JSON_LIST, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("candidates", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("survey_score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("customer_link_source", sa.String(16), nullable=True))
    op.create_table(
        "call_customer_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "call_id",
            sa.Integer(),
            sa.ForeignKey(
                "call_logs.id", ondelete="CASCADE", name="fk_call_customer_links_call_id_call_logs"
            ),
            nullable=False,
        ),
        sa.Column("from_customer_id", sa.Integer(), nullable=True),
        sa.Column("to_customer_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.String(80), nullable=True),
        sa.Column("at", UTC_DATETIME, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_call_customer_links"),
    )
    op.create_index("ix_call_customer_links_call_id", "call_customer_links", ["call_id"])
    op.create_table(
        "agents",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("interface", sa.String(255), nullable=False),
        sa.Column("skills", JSON_LIST, nullable=False, server_default="[]"),
        sa.Column("created_at", UTC_DATETIME, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("interface", name="uq_agents_interface"),
    )


def downgrade() -> None:
    op.drop_table("agents")
    op.drop_index("ix_call_customer_links_call_id", table_name="call_customer_links")
    op.drop_table("call_customer_links")
    with op.batch_alter_table("call_logs") as batch:
        for column in (
            "customer_link_source",
            "survey_score",
            "candidates",
            "route_reasons",
            "priority",
            "route_source",
            "dialect",
            "wrapped_up_at",
        ):
            batch.drop_column(column)
