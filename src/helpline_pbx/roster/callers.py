"""What the line knows of callers: pseudonymous tokens only.

Bars, arrival counts (for rate limits and the "has called N times" hint) and the short code of recent
calls (so a supervisor can bar the caller of "Écoute 4821" by the code they heard). No number or name is
ever given to or stored by anything here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster import writes
from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.errors import CallNotFound, InvalidListener
from helpline_pbx.roster.tables import REASON_LENGTH, CallerBar, CallerSighting, RecentCall


@dataclass(frozen=True, slots=True)
class BarSnapshot:
    id: int
    until: datetime
    reason: str
    created_by: str
    created_at: datetime
    lifted_at: datetime | None


def _bar(row: CallerBar) -> BarSnapshot:
    return BarSnapshot(row.id, row.until, row.reason, row.created_by, row.created_at, row.lifted_at)


@dataclass(frozen=True, slots=True)
class Sighting:
    id: int
    token: str
    at: datetime


class Callers:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)
        # Awaited after a bar is set or lifted here, so what screens from memory sees it before the next
        # call (other processes' bars are read on a timer).
        self.bars_changed: list[Callable[[], Awaitable[None]]] = []

    async def note_arrival(self, token: str, now: datetime, instance: str | None = None) -> None:
        async with transaction(self._sessions) as session:
            await session.run_sync(writes.note_arrival, token, now, instance)

    async def sightings_after(
        self, after_id: int, since: datetime, *, other_than: str | None = None
    ) -> list[Sighting]:
        """Sightings with an id above `after_id` at or after `since`, oldest first; `other_than` leaves
        out one instance's own."""
        query = (
            select(CallerSighting.id, CallerSighting.token, CallerSighting.at)
            .where(CallerSighting.id > after_id, CallerSighting.at >= since)
            .order_by(CallerSighting.id)
        )
        if other_than is not None:
            query = query.where(or_(CallerSighting.instance.is_(None), CallerSighting.instance != other_than))
        async with transaction(self._sessions) as session:
            return [Sighting(*row) for row in (await session.execute(query)).all()]

    async def last_sighting_id(self) -> int:
        async with transaction(self._sessions) as session:
            return int(await session.scalar(select(func.max(CallerSighting.id))) or 0)

    async def barred_tokens(self, now: datetime) -> dict[str, datetime]:
        """Each barred token with the end of its longest bar in force."""
        query = (
            select(CallerBar.token, func.max(CallerBar.until))
            .where(CallerBar.until > now, CallerBar.lifted_at.is_(None))
            .group_by(CallerBar.token)
        )
        async with transaction(self._sessions) as session:
            return {token: until for token, until in (await session.execute(query)).all()}

    async def _bars_changed(self) -> None:
        for hook in self.bars_changed:
            await hook()

    async def arrivals_since(self, tokens: Iterable[str], since: datetime) -> int:
        async with transaction(self._sessions) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(CallerSighting)
                .where(CallerSighting.token.in_(list(tokens)), CallerSighting.at >= since)
            )
            return int(count or 0)

    async def active_bar(self, tokens: Iterable[str], now: datetime) -> BarSnapshot | None:
        async with transaction(self._sessions) as session:
            row = await session.scalar(
                select(CallerBar)
                .where(
                    CallerBar.token.in_(list(tokens)),
                    CallerBar.until > now,
                    CallerBar.lifted_at.is_(None),
                )
                .order_by(CallerBar.until.desc())
                .limit(1)
            )
            return None if row is None else _bar(row)

    async def remember_call(
        self, call_id: str, code: str, line: str, token: str | None, now: datetime
    ) -> None:
        async with transaction(self._sessions) as session:
            await session.run_sync(writes.remember_call, call_id, code, line, token, now)

    async def bar_call(
        self, ref: str, *, until: datetime, reason: str, created_by: str, now: datetime
    ) -> BarSnapshot:
        """Bar the caller of a recent call, named by its call id or its spoken code (latest wins)."""
        reason = reason.strip()
        if not reason or len(reason) > REASON_LENGTH:
            raise InvalidListener(f"a bar needs a reason of 1 to {REASON_LENGTH} characters")
        if until <= now:
            raise InvalidListener("a bar must end in the future")
        async with transaction(self._sessions) as session:
            call = await session.scalar(
                select(RecentCall)
                .where((RecentCall.call_id == ref) | (RecentCall.code == ref))
                .order_by(RecentCall.started_at.desc())
                .limit(1)
            )
            if call is None:
                raise CallNotFound(f"no recent call {ref!r}")
            if call.token is None:
                # Withheld numbers get no token: there is nobody to bar, and no way to tell them apart.
                raise CallNotFound(f"call {ref!r} came from a withheld number and cannot be barred")
            row = CallerBar(
                token=call.token, until=until, reason=reason, created_by=created_by, created_at=now
            )
            session.add(row)
            await session.flush()
            bar = _bar(row)
        await self._bars_changed()
        return bar

    async def lift_bar(self, bar_id: int, now: datetime) -> bool:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(CallerBar)
                .where(CallerBar.id == bar_id, CallerBar.lifted_at.is_(None))
                .values(lifted_at=now)
            )
            lifted = bool(getattr(result, "rowcount", 0))
        await self._bars_changed()
        return lifted

    async def bars(self, now: datetime, *, include_past: bool = False) -> list[BarSnapshot]:
        async with transaction(self._sessions) as session:
            query = select(CallerBar).order_by(CallerBar.created_at)
            if not include_past:
                query = query.where(CallerBar.until > now, CallerBar.lifted_at.is_(None))
            return [_bar(row) for row in await session.scalars(query)]
