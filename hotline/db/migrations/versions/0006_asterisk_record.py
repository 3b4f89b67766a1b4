"""Asterisk's own record (CEL, queue_log) and who settled each call-log row.

``cel`` and ``queue_log`` carry Asterisk's column names: on PostgreSQL Asterisk writes
them itself (cel_pgsql, realtime queue_log); on SQLite the ingester copies Asterisk's
files into them (docs/asterisk-record.md). ``record_cursors`` keeps how far each
reader has got. ``call_logs`` gains ``settled_by`` / ``settled_at`` / ``end_reason``
and an index for the reconciler's open rows (docs/reliability.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _text(name: str, length: int | None = 255) -> sa.Column[str]:
    kind: sa.types.TypeEngine[str] = sa.Text() if length is None else sa.String(length)
    return sa.Column(name, kind, nullable=False, server_default="")


def upgrade() -> None:
    op.create_table(
        "cel",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("eventtype", sa.String(30), nullable=False),
        sa.Column("eventtime", sa.DateTime(timezone=False), nullable=False),
        _text("userdeftype"),
        _text("cid_name"),
        _text("cid_num"),
        _text("cid_ani"),
        _text("cid_rdnis"),
        _text("cid_dnid"),
        _text("exten"),
        _text("context"),
        _text("channame"),
        _text("appname"),
        _text("appdata", None),
        sa.Column("amaflags", sa.Integer(), nullable=False, server_default="0"),
        _text("accountcode", 80),
        _text("peeraccount", 80),
        _text("uniqueid", 150),
        _text("linkedid", 150),
        _text("userfield"),
        _text("peer"),
        _text("extra", None),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cel")),
    )
    op.create_index("ix_cel_linkedid", "cel", ["linkedid"])
    op.create_index("ix_cel_uniqueid", "cel", ["uniqueid"])
    op.create_index("ix_cel_eventtype_id", "cel", ["eventtype", "id"])
    op.create_table(
        "queue_log",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(timezone=False), nullable=False),
        _text("callid", 80),
        _text("queuename", 80),
        _text("agent", 80),
        _text("event", 32),
        *(_text(f"data{i}", 100) for i in range(1, 6)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_log")),
    )
    op.create_index("ix_queue_log_callid", "queue_log", ["callid"])
    op.create_table(
        "record_cursors",
        sa.Column("source", sa.String(80), nullable=False),
        _text("identity", 80),
        sa.Column("position", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_record_cursors")),
    )
    with op.batch_alter_table("call_logs") as batch:
        batch.add_column(sa.Column("settled_by", sa.String(16), nullable=True))
        batch.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("end_reason", sa.String(32), nullable=True))
    op.create_index("ix_call_logs_outcome", "call_logs", ["outcome"])
    # Rows finished before this revision were all settled by the live tracker.
    op.execute("UPDATE call_logs SET settled_by = 'live' WHERE outcome <> 'in_progress'")


def downgrade() -> None:
    op.drop_index("ix_call_logs_outcome", table_name="call_logs")
    with op.batch_alter_table("call_logs") as batch:
        batch.drop_column("end_reason")
        batch.drop_column("settled_at")
        batch.drop_column("settled_by")
    op.drop_table("record_cursors")
    op.drop_index("ix_queue_log_callid", table_name="queue_log")
    op.drop_table("queue_log")
    for name in ("ix_cel_eventtype_id", "ix_cel_uniqueid", "ix_cel_linkedid"):
        op.drop_index(name, table_name="cel")
    op.drop_table("cel")
