"""Each caller sighting names the instance that saw it: the screen keeps the sightings in memory and
reads only the other instances' from the roster (its own it already holds).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("caller_sightings") as batch:
        batch.add_column(sa.Column("instance", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("caller_sightings") as batch:
        batch.drop_column("instance")
