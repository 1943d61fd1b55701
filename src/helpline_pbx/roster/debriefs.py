"""Debrief requests: a listener marked a call difficult; a supervisor talks it over with them.

A request stays listed until a supervisor handles it (from their phone, *41 + the listener's code, or the
CLI). Nothing here says anything of the caller: a call id is the service's own, never a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.errors import InvalidListener, ListenerNotFound
from helpline_pbx.roster.tables import CALL_ID_LENGTH, Debrief, Listener
from helpline_pbx.timestamps import utc

HANDLER_LENGTH = 64


@dataclass(frozen=True, slots=True)
class DebriefSnapshot:
    id: int
    listener_id: str
    call_id: str | None
    requested_at: datetime
    handled_at: datetime | None
    handled_by: str | None


def _snapshot(row: Debrief) -> DebriefSnapshot:
    return DebriefSnapshot(
        row.id, row.listener_id, row.call_id, row.requested_at, row.handled_at, row.handled_by
    )


class Debriefs:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def request(self, listener_id: str, call_id: str | None, now: datetime) -> DebriefSnapshot:
        """List a debrief request for that listener's call; the same call asked twice stays one request."""
        if call_id is not None and not 0 < len(call_id) <= CALL_ID_LENGTH:
            raise InvalidListener(f"a call id needs 1 to {CALL_ID_LENGTH} characters")
        now = _aware(now)
        async with transaction(self._sessions) as session:
            if await session.get(Listener, listener_id) is None:
                raise ListenerNotFound(f"no listener {listener_id!r}")
            same = await session.scalar(
                select(Debrief)
                .where(
                    Debrief.listener_id == listener_id,
                    Debrief.handled_at.is_(None),
                    # NULL never equals NULL in SQL: compare "no call" explicitly.
                    Debrief.call_id.is_(None) if call_id is None else Debrief.call_id == call_id,
                )
                .limit(1)
            )
            if same is not None:
                return _snapshot(same)
            row = Debrief(listener_id=listener_id, call_id=call_id, requested_at=now)
            session.add(row)
            await session.flush()
            return _snapshot(row)

    async def open(self) -> list[DebriefSnapshot]:
        """Requests not handled yet, oldest first."""
        async with transaction(self._sessions) as session:
            rows = await session.scalars(
                select(Debrief).where(Debrief.handled_at.is_(None)).order_by(Debrief.requested_at, Debrief.id)
            )
            return [_snapshot(row) for row in rows]

    async def handle(self, listener_ref: str, by: str, now: datetime) -> int:
        """Mark every open request of that listener handled by `by`; returns how many were open."""
        return (await self.handle_for(listener_ref, by, now))[1]

    async def handle_for(self, listener_ref: str, by: str, now: datetime) -> tuple[str, int]:
        """Mark every open request of that listener handled by `by`; returns the listener's id and how many
        were open.

        The listener is named by id, endpoint, pseudonym or short code; the id of a listener removed since
        their request still closes it.
        """
        if not by or len(by) > HANDLER_LENGTH:
            raise InvalidListener(f"who handled a debrief needs 1 to {HANDLER_LENGTH} characters")
        now = _aware(now)
        async with transaction(self._sessions) as session:
            listener_id = await _listener_id(session, listener_ref)
            result = await session.execute(
                update(Debrief)
                .where(Debrief.listener_id == listener_id, Debrief.handled_at.is_(None))
                .values(handled_at=now, handled_by=by)
                .execution_options(synchronize_session=False)
            )
            return listener_id, int(getattr(result, "rowcount", 0))


async def _listener_id(session: AsyncSession, ref: str) -> str:
    rows = list(
        await session.execute(
            select(Listener.id, Listener.endpoint, Listener.pseudonym, Listener.code).where(
                or_(
                    Listener.id == ref,
                    Listener.endpoint == ref,
                    Listener.pseudonym == ref,
                    Listener.code == ref,
                )
            )
        )
    )
    # The roster's own order of precedence: ids, then endpoints, then pseudonyms, then short codes.
    for position in range(4):
        for row in rows:
            if row[position] == ref:
                return str(row[0])
    orphan = await session.scalar(select(Debrief.listener_id).where(Debrief.listener_id == ref).limit(1))
    if orphan is not None:
        return orphan
    raise ListenerNotFound(f"no listener with id, endpoint, pseudonym or code {ref!r}")


def _aware(value: datetime) -> datetime:
    return utc(value, "debriefs")
