"""Listeners' skills and languages, matched against what a line needs.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("listeners") as batch:
        batch.add_column(sa.Column("skills", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("languages", sa.JSON(), nullable=False, server_default='["fr"]'))


def downgrade() -> None:
    with op.batch_alter_table("listeners") as batch:
        batch.drop_column("languages")
        batch.drop_column("skills")
