"""Listeners' SIP passwords are no longer stored: each becomes its digest HA1, md5(endpoint:realm:password),
which is what Asterisk needs to check a phone, and the clear column goes.

Revision ID: 0008
Revises: 0007
"""

import hashlib
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pjsip.conf's default_realm when this revision was written (helpline_pbx.phones.SIP_REALM); a revision
# does not import the application, whose value may change later.
REALM = "helpline"


def _ha1(endpoint: str, password: str) -> str:
    return hashlib.md5(f"{endpoint}:{REALM}:{password}".encode(), usedforsecurity=False).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("listeners") as batch:
        batch.add_column(sa.Column("sip_ha1", sa.String(32), nullable=True))
    listeners = sa.table(
        "listeners",
        sa.column("id", sa.String),
        sa.column("endpoint", sa.String),
        sa.column("sip_secret", sa.String),
        sa.column("sip_ha1", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(listeners.c.id, listeners.c.endpoint, listeners.c.sip_secret)).all()
    for listener_id, endpoint, password in rows:
        connection.execute(
            listeners.update().where(listeners.c.id == listener_id).values(sip_ha1=_ha1(endpoint, password))
        )
    with op.batch_alter_table("listeners") as batch:
        batch.alter_column("sip_ha1", existing_type=sa.String(32), nullable=False)
        batch.drop_column("sip_secret")
    # On SQLite the old table's pages are zeroed as they are freed (the engine sets secure_delete), and
    # helpline_pbx.roster.database.upgrade() empties the WAL afterwards.


def downgrade() -> None:
    # A digest cannot be turned back into the password: every listener gets a new random one, which nobody
    # knows, so each needs `listeners edit --new-password` after the downgrade.
    with op.batch_alter_table("listeners") as batch:
        batch.add_column(sa.Column("sip_secret", sa.String(128), nullable=True))
    listeners = sa.table("listeners", sa.column("id", sa.String), sa.column("sip_secret", sa.String))
    connection = op.get_bind()
    for (listener_id,) in connection.execute(sa.select(listeners.c.id)).all():
        connection.execute(
            listeners.update()
            .where(listeners.c.id == listener_id)
            .values(sip_secret=secrets.token_urlsafe(24))
        )
    with op.batch_alter_table("listeners") as batch:
        batch.alter_column("sip_secret", existing_type=sa.String(128), nullable=False)
        batch.drop_column("sip_ha1")
