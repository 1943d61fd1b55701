"""The writes the service makes on every call, as plain functions of a (synchronous) session.

One body each, run two ways: by the repositories' async methods through `AsyncSession.run_sync` (one
transaction per call, as before), and by the scribe (switchboard/scribe.py), many in one transaction in
one hop to a database thread. The async driver's hop per statement cost the service more than the call
decision itself; a batch pays it once. SQLAlchemy Core on the session's connection, not the ORM: a state
change is three statements, and the unit of work around them cost more than the statements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from helpline_pbx.roster.errors import InvalidListener, ListenerNotFound
from helpline_pbx.roster.rows import call_record_values
from helpline_pbx.roster.snapshots import CallRecordData
from helpline_pbx.roster.states import ListenerState, Presence
from helpline_pbx.roster.tables import (
    CallerSighting,
    CallRecord,
    Listener,
    ListenerEvent,
    RecentCall,
    TurnedAway,
)
from helpline_pbx.roster.validators import aware, valid_call_id, valid_reason, valid_state

BUSY_STATES = (ListenerState.RINGING, ListenerState.ON_CALL)
CALL_STATES = frozenset(BUSY_STATES)


def is_free(now: ColumnElement[datetime] | datetime) -> ColumnElement[bool]:
    return or_(
        Listener.state == ListenerState.AVAILABLE.value,
        and_(
            Listener.state == ListenerState.RESTING.value,
            Listener.state_until.is_not(None),
            Listener.state_until <= now,
        ),
    )


# Built once, run with parameters: building a statement cost more than running it.
_CLAIM = (
    update(Listener)
    .where(
        Listener.id == bindparam("listener_id"),
        Listener.active.is_(True),
        is_free(bindparam("now", type_=Listener.state_until.type)),
    )
    .values(
        state=ListenerState.RINGING.value,
        state_call_id=bindparam("call_id"),
        state_until=None,
        state_reason=None,
        state_changed_at=bindparam("now"),
    )
)
_CURRENT = (
    select(
        Listener.state,
        Listener.state_reason,
        Listener.state_call_id,
        Listener.presence,
        Listener.presence_reason,
    )
    .where(Listener.id == bindparam("listener_id"))
    .with_for_update()
)
_AUDIT = insert(ListenerEvent)
_SIGHTING = insert(CallerSighting)


def claim(session: Session, listener_id: str, call_id: str, now: datetime) -> bool:
    """Atomically reserve a free listener for a call; False when someone else got there first.

    The WHERE clause is the whole decision: PostgreSQL re-checks it on the latest row version after
    waiting for a concurrent update, and SQLite runs writers one at a time, so two claims can never both
    change the row.
    """
    call_id = valid_call_id(call_id)
    now = aware(now)
    claimed = session.connection().execute(
        _CLAIM, {"listener_id": listener_id, "call_id": call_id, "now": now}
    )
    if claimed.rowcount != 1:
        return False
    _audit(session, listener_id, now, ListenerState.RINGING.value, "claimed", call_id)
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
) -> None:
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
    row = session.connection().execute(_CURRENT, {"listener_id": listener_id}).first()
    if row is None:
        raise ListenerNotFound(f"no listener {listener_id!r}")
    if owner is not None and held_by_another(row.state, row.state_call_id, owner, call_id):
        return
    values: dict[str, object] = {
        "state": new_state.value,
        "state_call_id": call_id,
        "state_until": None if until is None else aware(until),
        "state_reason": reason,
    }
    # "Available since" means since then: the same state and reason written again (the service
    # restarting, reconnecting) is no change.
    if (row.state, row.state_reason) != (new_state.value, reason):
        values["state_changed_at"] = now
    if idle_since is not None:
        values["idle_since"] = aware(idle_since)
    if presence is not None:
        values.update(presence_values(row.presence, row.presence_reason, presence, reason, now))
    session.connection().execute(
        update(Listener).where(Listener.id == bindparam("listener_id")),
        {"listener_id": listener_id, **values},
    )
    _audit(session, listener_id, now, new_state.value, reason, call_id)


def record_call(session: Session, record: CallRecordData) -> bool:
    """Store a call's statistics once; False when this call id was already recorded."""
    result = session.connection().execute(
        _insert(session, CallRecord).on_conflict_do_nothing(), call_record_values(record)
    )
    return bool(result.rowcount == 1)


_TURNED_AWAY = insert(TurnedAway)


def note_turned_away(session: Session, line: str, reason: str, practice: bool, now: datetime) -> None:
    """Count a caller who reached a closed or inactive line (its statistics say how many)."""
    session.connection().execute(
        _TURNED_AWAY, {"line": line, "at": aware(now), "reason": reason, "practice": practice}
    )


def remember_call(
    session: Session, call_id: str, code: str, line: str, token: str | None, now: datetime
) -> None:
    values = {"call_id": call_id, "code": code, "line": line, "token": token, "started_at": now}
    statement = _insert(session, RecentCall)
    statement = statement.on_conflict_do_update(
        index_elements=[RecentCall.call_id],
        set_={
            "code": statement.excluded.code,
            "line": statement.excluded.line,
            "token": statement.excluded.token,
            "started_at": statement.excluded.started_at,
        },
    )
    session.connection().execute(statement, values)


def note_arrival(session: Session, token: str, now: datetime, instance: str | None = None) -> None:
    session.connection().execute(_SIGHTING, {"token": token, "at": now, "instance": instance})


def _audit(
    session: Session, listener_id: str, at: datetime, state: str, reason: str | None, call_id: str | None
) -> None:
    session.connection().execute(
        _AUDIT, {"listener_id": listener_id, "at": at, "state": state, "reason": reason, "call_id": call_id}
    )


def _insert(session: Session, table: type[CallRecord] | type[RecentCall]) -> Any:
    # The upsert clauses are each dialect's own.
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def held_by_another(state: str, held: str | None, owner: str, call_id: str | None) -> bool:
    """Ringing or on a call that is not the writer's: another instance claimed them."""
    return (
        state in {busy.value for busy in BUSY_STATES}
        and held is not None
        and held != call_id
        and not held.startswith(owner)
    )


def presence_values(
    current: str, current_reason: str | None, presence: Presence, reason: str | None, now: datetime
) -> dict[str, object]:
    """The columns a presence change writes. A shift starts at log in, and again after a break (a pause
    for the shift limit)."""
    values: dict[str, object] = {
        "presence": presence.value,
        "presence_reason": None if presence is Presence.ON else reason,
    }
    returning = current == Presence.OFF.value or current_reason == "shift_limit"
    if presence is Presence.ON and current != Presence.ON.value and returning:
        values["shift_started_at"] = now
    if presence is Presence.OFF:
        values["shift_started_at"] = None
    return values
