"""The console's statistics survive the retention purge: each day's aggregate says in which time zone its
day and hours are, and keeps what the figures need (short abandons, answered within the service level and
the thresholds they were judged by, the waits of answered calls as a histogram, the calls by hour, the
rest after calls).

Rows aggregated before this revision keep None in the new columns: what was not counted is unknown, not
zero. Their day is a UTC day, as the purge wrote it then.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COLUMNS = (
    "short_abandons",
    "answered_in_service_level",
    "service_level_seconds",
    "short_abandon_seconds",
    "answered_wait_seconds_total",
    "rest_seconds_total",
    "wait_histogram",
    "hourly",
)


def upgrade() -> None:
    with op.batch_alter_table("daily_stats") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        batch.add_column(sa.Column("short_abandons", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("answered_in_service_level", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("service_level_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("short_abandon_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("answered_wait_seconds_total", sa.Float(), nullable=True))
        batch.add_column(sa.Column("rest_seconds_total", sa.Float(), nullable=True))
        batch.add_column(sa.Column("wait_histogram", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("hourly", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_stats") as batch:
        for column in reversed(NEW_COLUMNS):
            batch.drop_column(column)
        batch.drop_column("timezone")
