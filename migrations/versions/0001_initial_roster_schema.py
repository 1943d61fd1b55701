"""Initial roster schema: listeners, anonymous call records, listener state audit.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "state IN ('offline', 'available', 'ringing', 'on_call', 'resting')"


def upgrade() -> None:
    op.create_table(
        "listeners",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("sip_secret", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_call_id", sa.String(length=128), nullable=True),
        sa.Column("state_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_reason", sa.String(length=200), nullable=True),
        sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('volunteer', 'professional', 'supervisor')", name=op.f("ck_listeners_role")
        ),
        sa.CheckConstraint(STATES, name=op.f("ck_listeners_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listeners")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_listeners_endpoint")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_listeners_pseudonym")),
    )

    op.create_table(
        "call_records",
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("listener_id", sa.String(length=16), nullable=True),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("wait_seconds", sa.Float(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("instance", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('served', 'abandoned', 'fallback')", name=op.f("ck_call_records_outcome")
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_records")),
    )
    op.create_index(op.f("ix_call_records_ended_at"), "call_records", ["ended_at"])
    op.create_index(op.f("ix_call_records_listener_id"), "call_records", ["listener_id"])

    op.create_table(
        "listener_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("listener_id", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint(STATES, name=op.f("ck_listener_events_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listener_events")),
    )
    op.create_index(op.f("ix_listener_events_at"), "listener_events", ["at"])
    op.create_index(op.f("ix_listener_events_listener_id"), "listener_events", ["listener_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_listener_events_listener_id"), table_name="listener_events")
    op.drop_index(op.f("ix_listener_events_at"), table_name="listener_events")
    op.drop_table("listener_events")
    op.drop_index(op.f("ix_call_records_listener_id"), table_name="call_records")
    op.drop_index(op.f("ix_call_records_ended_at"), table_name="call_records")
    op.drop_table("call_records")
    op.drop_table("listeners")
