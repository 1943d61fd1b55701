"""The writes the service makes on every call, as plain functions of a (synchronous) session.

One body each, run two ways: by the repositories' async methods through `AsyncSession.run_sync` (one
transaction per call, as before), and by the scribe (switchboard/scribe.py), many in one transaction in
one hop to a database thread. The async driver's hop per statement cost the service more than the call
decision itself; a batch pays it once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from helpline_pbx.roster.errors import InvalidListener, ListenerNotFound
from helpline_pbx.roster.rows import call_record_values, listener_snapshot
from helpline_pbx.roster.snapshots import CallRecordData, ListenerSnapshot
from helpline_pbx.roster.states import ListenerState, Presence
from helpline_pbx.roster.tables import (
    CallerSighting,
    CallRecord,
    Listener,
    ListenerEvent,
    RecentCall,
)
from helpline_pbx.roster.validators import aware, valid_call_id, valid_reason, valid_state

BUSY_STATES = (ListenerState.RINGING, ListenerState.ON_CALL)
CALL_STATES = frozenset(BUSY_STATES)


def claim(session: Session, listener_id: str, call_id: str, now: datetime) -> bool:
    """Atomically reserve a free listener for a call; False when someone else got there first.

    The WHERE clause is the whole decision: PostgreSQL re-checks it on the latest row version after
    waiting for a concurrent update, and SQLite runs writers one at a time, so two claims can never both
    change the row.
    """
    call_id = valid_call_id(call_id)
    now = aware(now)
    statement = (
        update(Listener)
        .where(Listener.id == listener_id, Listener.active.is_(True), is_free(now))
        .values(
            state=ListenerState.RINGING.value,
            state_call_id=call_id,
            state_until=None,
            state_reason=None,
            state_changed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        ListenerEvent(
            listener_id=listener_id,
            at=now,
            state=ListenerState.RINGING.value,
            reason="claimed",
            call_id=call_id,
        )
    )
    session.flush()
    return True


def set_state(
    session: Session,
    listener_id: str,
    state: ListenerState | str,
    *,
    call_id: str | None = None,
    until: datetime | None = None,
    reason: str | None = None,
    now: datetime,
    idle_since: datetime | None = None,
    presence: Presence | None = None,
    owner: str | None = None,
) -> ListenerSnapshot:
    """Move a listener to `state` and append the transition to the audit (see Availability.set_state)."""
    new_state = valid_state(state)
    if new_state in CALL_STATES and not call_id:
        raise InvalidListener(f"state {new_state.value} needs a call id")
    if new_state is ListenerState.RESTING and until is None:
        raise InvalidListener("state resting needs an end time (until)")
    if call_id is not None:
        call_id = valid_call_id(call_id)
    reason = valid_reason(reason)
    now = aware(now)
    listener = session.get(Listener, listener_id, with_for_update=True)
    if listener is None:
        raise ListenerNotFound(f"no listener {listener_id!r}")
    if owner is not None and held_by_another(listener, owner, call_id):
        return listener_snapshot(listener)
    # "Available since" means since then: the same state and reason written again (the service
    # restarting, reconnecting) is no change.
    if (listener.state, listener.state_reason) != (new_state.value, reason):
        listener.state_changed_at = now
    listener.state = new_state.value
    listener.state_call_id = call_id
    listener.state_until = None if until is None else aware(until)
    listener.state_reason = reason
    if idle_since is not None:
        listener.idle_since = aware(idle_since)
    if presence is not None:
        apply_presence(listener, presence, reason, now)
    session.add(
        ListenerEvent(listener_id=listener_id, at=now, state=new_state.value, reason=reason, call_id=call_id)
    )
    session.flush()
    return listener_snapshot(listener)


def record_call(session: Session, record: CallRecordData) -> bool:
    """Store a call's statistics once; False when this call id was already recorded."""
    values = call_record_values(record)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(insert(CallRecord).values(values).on_conflict_do_nothing())
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def remember_call(
    session: Session, call_id: str, code: str, line: str, token: str | None, now: datetime
) -> None:
    session.merge(RecentCall(call_id=call_id, code=code, line=line, token=token, started_at=now))
    session.flush()


def note_arrival(session: Session, token: str, now: datetime, instance: str | None = None) -> None:
    session.add(CallerSighting(token=token, at=now, instance=instance))
    session.flush()


def held_by_another(listener: Listener, owner: str, call_id: str | None) -> bool:
    """Ringing or on a call that is not the writer's: another instance claimed them."""
    held = listener.state_call_id
    return (
        listener.state in {state.value for state in BUSY_STATES}
        and held is not None
        and held != call_id
        and not held.startswith(owner)
    )


def is_free(now: datetime) -> ColumnElement[bool]:
    return or_(
        Listener.state == ListenerState.AVAILABLE.value,
        and_(
            Listener.state == ListenerState.RESTING.value,
            Listener.state_until.is_not(None),
            Listener.state_until <= now,
        ),
    )


def apply_presence(listener: Listener, presence: Presence, reason: str | None, now: datetime) -> None:
    # A shift starts at log in, and again after a break (a pause for the shift limit).
    returning = listener.presence == Presence.OFF.value or listener.presence_reason == "shift_limit"
    if presence is Presence.ON and listener.presence != Presence.ON.value and returning:
        listener.shift_started_at = now
    if presence is Presence.OFF:
        listener.shift_started_at = None
    listener.presence = presence.value
    listener.presence_reason = None if presence is Presence.ON else reason
