"""The audit of supervision: every time a supervisor listened to, coached or joined a listener's call.

Who (the supervisor's listener id), whom (the listener's), which call, which mode, from when to when.
Nothing here names a caller: the call id is the service's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.errors import InvalidListener
from helpline_pbx.roster.states import SupervisionMode
from helpline_pbx.roster.tables import CALL_ID_LENGTH, LISTENER_ID_LENGTH, Supervision


@dataclass(frozen=True, slots=True)
class SupervisionSnapshot:
    id: int
    supervisor_id: str
    listener_id: str
    call_id: str | None
    mode: SupervisionMode
    started_at: datetime
    ended_at: datetime | None


def _snapshot(row: Supervision) -> SupervisionSnapshot:
    return SupervisionSnapshot(
        id=row.id,
        supervisor_id=row.supervisor_id,
        listener_id=row.listener_id,
        call_id=row.call_id,
        mode=SupervisionMode(row.mode),
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


def _valid_id(value: str, what: str) -> str:
    if not value or len(value) > LISTENER_ID_LENGTH:
        raise InvalidListener(f"a {what} id has 1 to {LISTENER_ID_LENGTH} characters")
    return value


class Supervisions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def start(
        self,
        supervisor_id: str,
        listener_id: str,
        call_id: str | None,
        mode: SupervisionMode | str,
        now: datetime,
    ) -> int:
        """Record that a supervision began; returns its id, for `end`."""
        try:
            valid_mode = SupervisionMode(mode)
        except ValueError:
            raise InvalidListener(f"unknown supervision mode {mode!r}") from None
        if call_id is not None and len(call_id) > CALL_ID_LENGTH:
            raise InvalidListener(f"a call id has at most {CALL_ID_LENGTH} characters")
        row = Supervision(
            supervisor_id=_valid_id(supervisor_id, "supervisor"),
            listener_id=_valid_id(listener_id, "listener"),
            call_id=call_id,
            mode=valid_mode.value,
            started_at=now,
        )
        async with transaction(self._sessions) as session:
            session.add(row)
            await session.flush()
            return row.id

    async def end(self, supervision_id: int, now: datetime) -> bool:
        """Record that it ended; False when it was unknown or had already ended (the first end stands)."""
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(Supervision)
                .where(Supervision.id == supervision_id, Supervision.ended_at.is_(None))
                .values(ended_at=now)
            )
            return bool(getattr(result, "rowcount", 0))

    async def end_open(self, call_id_prefix: str, now: datetime, *, keep: Iterable[int] = ()) -> int:
        """End the supervisions still open on this instance's calls but those in `keep` (the ones still
        running): a previous run of the service stopped without ending them."""
        escaped = call_id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = update(Supervision).where(
            Supervision.ended_at.is_(None), Supervision.call_id.like(f"{escaped}%", escape="\\")
        )
        if kept := list(keep):
            query = query.where(Supervision.id.not_in(kept))
        async with transaction(self._sessions) as session:
            result = await session.execute(query.values(ended_at=now))
            return int(getattr(result, "rowcount", 0) or 0)

    async def list(self, since: datetime | None = None) -> list[SupervisionSnapshot]:
        """Supervisions that started at or after `since` (all when None), oldest first."""
        query = select(Supervision).order_by(Supervision.started_at, Supervision.id)
        if since is not None:
            query = query.where(Supervision.started_at >= since)
        async with transaction(self._sessions) as session:
            return [_snapshot(row) for row in await session.scalars(query)]
