"""Listening lines and the numbers (DIDs) that reach them.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lines",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=500), nullable=False),
        sa.Column("support", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekly_hours", sa.JSON(), nullable=False),
        sa.Column("hour_exceptions", sa.JSON(), nullable=False),
        sa.Column("closed_message", sa.String(length=128), nullable=False),
        sa.Column("overloaded_message", sa.String(length=128), nullable=False),
        sa.Column("alternatives_message", sa.String(length=128), nullable=False),
        sa.Column("ring_timeout", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lines")),
        sa.UniqueConstraint("name", name=op.f("uq_lines_name")),
    )
    op.create_table(
        "line_numbers",
        sa.Column("number", sa.String(length=15), nullable=False),
        sa.Column("line_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_line_numbers_line_id_lines"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_line_numbers")),
    )
    op.create_index(op.f("ix_line_numbers_line_id"), "line_numbers", ["line_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_line_numbers_line_id"), table_name="line_numbers")
    op.drop_table("line_numbers")
    op.drop_table("lines")
