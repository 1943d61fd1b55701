"""Caller bars, sightings and recent call codes (by pseudonymous token only); daily aggregates.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caller_bars",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_bars")),
    )
    op.create_index(op.f("ix_caller_bars_token"), "caller_bars", ["token"])
    op.create_index(op.f("ix_caller_bars_until"), "caller_bars", ["until"])
    op.create_table(
        "caller_sightings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_sightings")),
    )
    op.create_index(op.f("ix_caller_sightings_token"), "caller_sightings", ["token"])
    op.create_index(op.f("ix_caller_sightings_at"), "caller_sightings", ["at"])
    op.create_table(
        "recent_calls",
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_recent_calls")),
    )
    op.create_index(op.f("ix_recent_calls_code"), "recent_calls", ["code"])
    op.create_index(op.f("ix_recent_calls_started_at"), "recent_calls", ["started_at"])
    op.create_table(
        "daily_stats",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("served", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.Column("fallback", sa.Integer(), nullable=False),
        sa.Column("wait_seconds_total", sa.Float(), nullable=False),
        sa.Column("talk_seconds_total", sa.Float(), nullable=False),
        sa.Column("wait_seconds_max", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "line", name=op.f("pk_daily_stats")),
    )


def downgrade() -> None:
    op.drop_table("daily_stats")
    op.drop_index(op.f("ix_recent_calls_started_at"), table_name="recent_calls")
    op.drop_index(op.f("ix_recent_calls_code"), table_name="recent_calls")
    op.drop_table("recent_calls")
    op.drop_index(op.f("ix_caller_sightings_at"), table_name="caller_sightings")
    op.drop_index(op.f("ix_caller_sightings_token"), table_name="caller_sightings")
    op.drop_table("caller_sightings")
    op.drop_index(op.f("ix_caller_bars_until"), table_name="caller_bars")
    op.drop_index(op.f("ix_caller_bars_token"), table_name="caller_bars")
    op.drop_table("caller_bars")
