"""Callers turned away while a line was closed or inactive, counted (line, time, reason) so the statistics
can say how many called outside the hours; the daily aggregates keep the count past the retention period.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "turned_away",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.CheckConstraint("reason IN ('closed', 'inactive')", name=op.f("ck_turned_away_reason")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turned_away")),
    )
    op.create_index(op.f("ix_turned_away_at"), "turned_away", ["at"])
    with op.batch_alter_table("daily_stats") as batch:
        batch.add_column(sa.Column("closed", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_stats") as batch:
        batch.drop_column("closed")
    op.drop_index(op.f("ix_turned_away_at"), table_name="turned_away")
    op.drop_table("turned_away")
