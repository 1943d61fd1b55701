"""Who may take a call: claims, states written with their audit row, presence, shifts, repair."""

import functools
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from helpline_pbx.roster import writes
from helpline_pbx.roster.database import Repository
from helpline_pbx.roster.errors import InvalidListener
from helpline_pbx.roster.listeners import find_listener
from helpline_pbx.roster.rows import listener_snapshot
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import ListenerState, Presence
from helpline_pbx.roster.tables import CallRecord, Listener, ListenerEvent
from helpline_pbx.roster.validators import (
    aware,
    valid_presence,
    valid_reason,
)
from helpline_pbx.roster.writes import BUSY_STATES


class Availability(Repository):
    async def claim(self, listener_id: str, call_id: str, now: datetime) -> bool:
        """Atomically reserve a free listener for a call; False when someone else got there first."""
        async with self._transaction() as session:
            return await session.run_sync(writes.claim, listener_id, call_id, now)

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
        async with self._transaction() as session:
            await session.run_sync(
                functools.partial(
                    writes.set_state,
                    listener_id=listener_id,
                    state=state,
                    call_id=call_id,
                    until=until,
                    reason=reason,
                    now=now,
                    idle_since=idle_since,
                    presence=presence,
                    owner=owner,
                )
            )
            listener = await session.get(Listener, listener_id, populate_existing=True)
            assert listener is not None  # set_state raised ListenerNotFound otherwise
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
        if wanted is Presence.PAUSED and not (reason or "").strip():
            raise InvalidListener("a pause needs a reason of a few words")
        async with self._transaction() as session:
            listener = await find_listener(session, ref, for_update=True)
            changes = writes.presence_values(
                listener.presence, listener.presence_reason, wanted, reason, aware(now)
            )
            for column, value in changes.items():
                setattr(listener, column, value)
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
            .where(Listener.active.is_(True), writes.is_free(now))
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
