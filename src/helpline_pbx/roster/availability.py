"""Who may take a call: claims, states written with their audit row, presence, shifts, repair."""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from helpline_pbx.roster.database import Repository, rowcount
from helpline_pbx.roster.errors import InvalidListener, ListenerNotFound
from helpline_pbx.roster.listeners import find_listener
from helpline_pbx.roster.rows import listener_snapshot
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import ListenerState, Presence
from helpline_pbx.roster.tables import CallRecord, Listener, ListenerEvent
from helpline_pbx.roster.validators import (
    aware,
    valid_call_id,
    valid_presence,
    valid_reason,
    valid_state,
)

BUSY_STATES = (ListenerState.RINGING, ListenerState.ON_CALL)
CALL_STATES = frozenset(BUSY_STATES)


class Availability(Repository):
    async def claim(self, listener_id: str, call_id: str, now: datetime) -> bool:
        """Atomically reserve a free listener for a call; False when someone else got there first.

        The WHERE clause is the whole decision: PostgreSQL re-checks it on the latest row
        version after waiting for a concurrent update, and SQLite runs writers one at a time,
        so two claims can never both change the row.
        """
        call_id = valid_call_id(call_id)
        now = aware(now)
        statement = (
            update(Listener)
            .where(Listener.id == listener_id, Listener.active.is_(True), _is_free(now))
            .values(
                state=ListenerState.RINGING.value,
                state_call_id=call_id,
                state_until=None,
                state_reason=None,
                state_changed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._transaction() as session:
            result = await session.execute(statement)
            if rowcount(result) != 1:
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
            return True

    async def set_state(
        self,
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
        """Move a listener to `state` and append the transition to the audit, atomically.

        idle_since=None keeps the stored value; so does presence=None. A presence going on starts a shift.
        owner is the call-id prefix of the instance writing: a listener ringing or on a call of another
        instance sharing the roster is left as they are (that instance's claim stands; it frees them).
        """
        new_state = valid_state(state)
        if new_state in CALL_STATES and not call_id:
            raise InvalidListener(f"state {new_state.value} needs a call id")
        if new_state is ListenerState.RESTING and until is None:
            raise InvalidListener("state resting needs an end time (until)")
        if call_id is not None:
            call_id = valid_call_id(call_id)
        reason = valid_reason(reason)
        now = aware(now)
        async with self._transaction() as session:
            listener = await session.get(Listener, listener_id, with_for_update=True)
            if listener is None:
                raise ListenerNotFound(f"no listener {listener_id!r}")
            if owner is not None and _held_by_another(listener, owner, call_id):
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
                _apply_presence(listener, presence, reason, now)
            session.add(
                ListenerEvent(
                    listener_id=listener_id,
                    at=now,
                    state=new_state.value,
                    reason=reason,
                    call_id=call_id,
                )
            )
            await session.flush()
            return listener_snapshot(listener)

    async def set_presence(
        self, ref: str, presence: Presence | str, *, reason: str | None = None, now: datetime
    ) -> ListenerSnapshot:
        """What the listener chose (log in, log out, pause, resume), as the CLI or a phone says it.

        The service sees the change at its next roster poll and moves the listener's state; the state
        itself is the service's to write.
        """
        wanted = valid_presence(presence)
        reason = valid_reason(reason)
        async with self._transaction() as session:
            listener = await find_listener(session, ref, for_update=True)
            _apply_presence(listener, wanted, reason, aware(now))
            await session.flush()
            return listener_snapshot(listener)

    async def calls_since(self, listener_id: str, since: datetime) -> int:
        """How many calls (practice included) the listener answered since `since`: a shift's count."""
        query = select(func.count()).where(
            CallRecord.listener_id == listener_id,
            CallRecord.answered_at.is_not(None),
            CallRecord.answered_at >= aware(since),
        )
        async with self._transaction() as session:
            return int(await session.scalar(query) or 0)

    async def available_listeners(self, now: datetime) -> list[ListenerSnapshot]:
        """Active listeners a claim could take now, longest idle first."""
        now = aware(now)
        query = (
            select(Listener)
            .where(Listener.active.is_(True), _is_free(now))
            .order_by(Listener.idle_since.asc().nulls_first(), Listener.id)
        )
        async with self._transaction() as session:
            return [listener_snapshot(row) for row in await session.scalars(query)]

    async def repair(
        self,
        instance_live_call_ids: Iterable[str] | None = None,
        *,
        now: datetime,
        call_id_prefix: str | None = None,
    ) -> int:
        """Free listeners left ringing or on a call that no longer exists, after a restart.

        None means no call is live. With several instances sharing one roster, each instance repairs
        only its own calls: pass the prefix its call ids start with, and its live call ids.
        """
        live = frozenset(instance_live_call_ids or ())
        now = aware(now)
        query = (
            select(Listener)
            .where(Listener.state.in_([state.value for state in BUSY_STATES]))
            .with_for_update()
        )
        if call_id_prefix is not None:
            query = query.where(Listener.state_call_id.startswith(call_id_prefix, autoescape=True))
        async with self._transaction() as session:
            repaired = 0
            for listener in await session.scalars(query):
                if listener.state_call_id in live:
                    continue
                session.add(
                    ListenerEvent(
                        listener_id=listener.id,
                        at=now,
                        state=ListenerState.AVAILABLE.value,
                        reason="repair",
                        call_id=listener.state_call_id,
                    )
                )
                listener.state = ListenerState.AVAILABLE.value
                listener.state_call_id = None
                listener.state_until = None
                listener.state_reason = "repair"
                listener.state_changed_at = now
                listener.idle_since = now
                repaired += 1
            return repaired


def _held_by_another(listener: Listener, owner: str, call_id: str | None) -> bool:
    """Ringing or on a call that is not the writer's: another instance claimed them."""
    held = listener.state_call_id
    return (
        listener.state in {state.value for state in BUSY_STATES}
        and held is not None
        and held != call_id
        and not held.startswith(owner)
    )


def _is_free(now: datetime) -> ColumnElement[bool]:
    return or_(
        Listener.state == ListenerState.AVAILABLE.value,
        and_(
            Listener.state == ListenerState.RESTING.value,
            Listener.state_until.is_not(None),
            Listener.state_until <= now,
        ),
    )


def _apply_presence(listener: Listener, presence: Presence, reason: str | None, now: datetime) -> None:
    # A shift starts at log in, and again after a break (a pause for the shift limit).
    returning = listener.presence == Presence.OFF.value or listener.presence_reason == "shift_limit"
    if presence is Presence.ON and listener.presence != Presence.ON.value and returning:
        listener.shift_started_at = now
    if presence is Presence.OFF:
        listener.shift_started_at = None
    listener.presence = presence.value
    listener.presence_reason = None if presence is Presence.ON else reason
