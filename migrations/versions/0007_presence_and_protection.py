"""Presence, protection and training: listener presence and short codes, paused and awaiting-debrief states,
trainees and monitoring consent, per-line waiting and practice settings, debrief requests and the
supervision audit; practice calls and callers who chose alternatives in the call records.

Revision ID: 0007
Revises: 0006
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATES = "state IN ('offline', 'available', 'ringing', 'on_call', 'resting')"
NEW_STATES = (
    "state IN ('offline', 'available', 'ringing', 'on_call', 'resting', 'paused', 'awaiting_debrief')"
)
OLD_OUTCOMES = "outcome IN ('served', 'abandoned', 'fallback')"
NEW_OUTCOMES = "outcome IN ('served', 'abandoned', 'fallback', 'alternatives')"
PRESENCES = "presence IN ('off', 'on', 'paused')"


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("listeners") as batch:
        batch.drop_constraint(op.f("ck_listeners_state"), type_="check")
        batch.create_check_constraint(op.f("ck_listeners_state"), NEW_STATES)
        batch.add_column(sa.Column("presence", sa.String(8), nullable=False, server_default="off"))
        batch.add_column(sa.Column("presence_reason", sa.String(200), nullable=True))
        batch.add_column(sa.Column("code", sa.String(6), nullable=True))
        batch.add_column(sa.Column("trainee", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("monitoring_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("shift_started_at", _utc(), nullable=True))
        batch.create_check_constraint(op.f("ck_listeners_presence"), PRESENCES)
        batch.create_unique_constraint(op.f("uq_listeners_code"), ["code"])
    # Listeners created before short codes existed get one now: supervisors dial it.
    listeners = sa.table("listeners", sa.column("id", sa.String), sa.column("code", sa.String))
    connection = op.get_bind()
    taken: set[str] = set()
    for (listener_id,) in connection.execute(sa.select(listeners.c.id)).all():
        code = _free_code(taken)
        taken.add(code)
        connection.execute(listeners.update().where(listeners.c.id == listener_id).values(code=code))

    with op.batch_alter_table("listener_events") as batch:
        batch.drop_constraint(op.f("ck_listener_events_state"), type_="check")
        batch.create_check_constraint(op.f("ck_listener_events_state"), NEW_STATES)

    with op.batch_alter_table("call_records") as batch:
        batch.drop_constraint(op.f("ck_call_records_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_call_records_outcome"), NEW_OUTCOMES)
        batch.add_column(sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false()))

    # Practice calls stay apart in the statistics kept after the retention period, as do callers who chose
    # the alternatives.
    with op.batch_alter_table("daily_stats") as batch:
        batch.add_column(sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("alternatives", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint(op.f("pk_daily_stats"), type_="primary")
        batch.create_primary_key(op.f("pk_daily_stats"), ["day", "line", "practice"])

    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("rest_after_call", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("announce_every", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("choice_after", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_wait", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("practice", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("trainees_allowed", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    op.create_table(
        "debriefs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("listener_id", sa.String(16), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("requested_at", _utc(), nullable=False),
        sa.Column("handled_at", _utc(), nullable=True),
        sa.Column("handled_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debriefs")),
    )
    op.create_index(op.f("ix_debriefs_listener_id"), "debriefs", ["listener_id"])
    op.create_index(op.f("ix_debriefs_requested_at"), "debriefs", ["requested_at"])
    op.create_table(
        "supervisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("supervisor_id", sa.String(16), nullable=False),
        sa.Column("listener_id", sa.String(16), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.CheckConstraint("mode IN ('listen', 'coach', 'join')", name=op.f("ck_supervisions_mode")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervisions")),
    )
    op.create_index(op.f("ix_supervisions_started_at"), "supervisions", ["started_at"])


def _free_code(taken: set[str]) -> str:
    while True:
        code = str(secrets.randbelow(900) + 100)
        if code not in taken:
            return code


def downgrade() -> None:
    op.drop_index(op.f("ix_supervisions_started_at"), table_name="supervisions")
    op.drop_table("supervisions")
    op.drop_index(op.f("ix_debriefs_requested_at"), table_name="debriefs")
    op.drop_index(op.f("ix_debriefs_listener_id"), table_name="debriefs")
    op.drop_table("debriefs")
    with op.batch_alter_table("lines") as batch:
        for column in ("trainees_allowed", "practice", "max_wait", "choice_after", "announce_every"):
            batch.drop_column(column)
        batch.drop_column("rest_after_call")
    with op.batch_alter_table("daily_stats") as batch:
        batch.drop_constraint(op.f("pk_daily_stats"), type_="primary")
        batch.create_primary_key(op.f("pk_daily_stats"), ["day", "line"])
        batch.drop_column("alternatives")
        batch.drop_column("practice")
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("practice")
        batch.drop_constraint(op.f("ck_call_records_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_call_records_outcome"), OLD_OUTCOMES)
    with op.batch_alter_table("listener_events") as batch:
        batch.drop_constraint(op.f("ck_listener_events_state"), type_="check")
        batch.create_check_constraint(op.f("ck_listener_events_state"), OLD_STATES)
    with op.batch_alter_table("listeners") as batch:
        batch.drop_constraint(op.f("uq_listeners_code"), type_="unique")
        batch.drop_constraint(op.f("ck_listeners_presence"), type_="check")
        for column in ("shift_started_at", "monitoring_consent", "trainee", "code", "presence_reason"):
            batch.drop_column(column)
        batch.drop_column("presence")
        batch.drop_constraint(op.f("ck_listeners_state"), type_="check")
        batch.create_check_constraint(op.f("ck_listeners_state"), OLD_STATES)
