"""Initial schema: customers, their phones, the call log and API tokens.

Written for SQLite and PostgreSQL alike: no backend-only types except JSONB chosen
through a variant, and every constraint named by the models' naming convention.

Revision ID: 0001
Revises:
Create Date: 2026-08-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
JSON_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(16), server_default="standard", nullable=False),
        sa.Column("preferred_dialect", sa.String(32), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "customer_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), server_default="mobile", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_phones")),
        sa.UniqueConstraint(
            "customer_id", "e164", name=op.f("uq_customer_phones_customer_id_e164")
        ),
    )
    op.create_index(op.f("ix_customer_phones_e164"), "customer_phones", ["e164"])
    op.create_table(
        "call_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(150), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("caller_uniqueid", sa.String(150), server_default="", nullable=False),
        sa.Column("caller_channel", sa.String(255), server_default="", nullable=False),
        sa.Column("caller_number", sa.String(80), server_default="", nullable=False),
        sa.Column("caller_e164", sa.String(32), nullable=True),
        sa.Column("caller_name", sa.String(255), server_default="", nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("arrived_at", TZ, nullable=True),
        sa.Column("queued_at", TZ, nullable=True),
        sa.Column("answered_at", TZ, nullable=True),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("queue", sa.String(80), nullable=True),
        sa.Column("queues", JSON_LIST, nullable=False),
        sa.Column("agent", sa.String(80), nullable=True),
        sa.Column("agent_interface", sa.String(255), nullable=True),
        sa.Column("queue_status", sa.String(32), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("ivr_path", JSON_LIST, nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_call_logs_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_logs")),
        sa.UniqueConstraint("linkedid", name=op.f("uq_call_logs_linkedid")),
    )
    op.create_index(op.f("ix_call_logs_caller_e164"), "call_logs", ["caller_e164"])
    op.create_index(op.f("ix_call_logs_customer_id"), "call_logs", ["customer_id"])
    op.create_index(op.f("ix_call_logs_arrived_at"), "call_logs", ["arrived_at"])
    op.create_index("ix_call_logs_agent_arrived_at", "call_logs", ["agent", "arrived_at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(80), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_call_logs_agent_arrived_at", table_name="call_logs")
    op.drop_index(op.f("ix_call_logs_arrived_at"), table_name="call_logs")
    op.drop_index(op.f("ix_call_logs_customer_id"), table_name="call_logs")
    op.drop_index(op.f("ix_call_logs_caller_e164"), table_name="call_logs")
    op.drop_table("call_logs")
    op.drop_index(op.f("ix_customer_phones_e164"), table_name="customer_phones")
    op.drop_table("customer_phones")
    op.drop_table("customers")
