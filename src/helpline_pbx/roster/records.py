"""The audit of listeners' states and the anonymous call records: written once, read, purged."""

from datetime import datetime

from sqlalchemy import delete, select

from helpline_pbx.roster import writes
from helpline_pbx.roster.database import Repository, rowcount
from helpline_pbx.roster.rows import call_record_data, event_snapshot
from helpline_pbx.roster.snapshots import CallRecordData, ListenerEventSnapshot
from helpline_pbx.roster.tables import CallRecord, ListenerEvent
from helpline_pbx.roster.validators import aware


class Records(Repository):
    async def listener_events(
        self, listener_id: str | None = None, *, limit: int = 100
    ) -> list[ListenerEventSnapshot]:
        """The newest audit rows, oldest first."""
        query = select(ListenerEvent).order_by(ListenerEvent.id.desc()).limit(limit)
        if listener_id is not None:
            query = query.where(ListenerEvent.listener_id == listener_id)
        async with self._transaction() as session:
            rows = list(await session.scalars(query))
        return [event_snapshot(row) for row in reversed(rows)]

    async def purge_listener_events(self, older_than: datetime) -> int:
        statement = delete(ListenerEvent).where(ListenerEvent.at < aware(older_than))
        async with self._transaction() as session:
            result = await session.execute(statement.execution_options(synchronize_session=False))
            return rowcount(result)

    async def record_call(self, record: CallRecordData) -> bool:
        """Store a call's statistics once; False when this call id was already recorded."""
        async with self._transaction() as session:
            return await session.run_sync(writes.record_call, record)

    async def call_record(self, call_id: str) -> CallRecordData | None:
        async with self._transaction() as session:
            row = await session.get(CallRecord, call_id)
            return None if row is None else call_record_data(row)

    async def call_records(self, since: datetime | None = None) -> list[CallRecordData]:
        """Call records in order of arrival (those queued at or after `since`, if given)."""
        query = select(CallRecord).order_by(CallRecord.queued_at)
        if since is not None:
            query = query.where(CallRecord.queued_at >= aware(since))
        async with self._transaction() as session:
            return [call_record_data(row) for row in await session.scalars(query)]

    async def purge_call_records(self, older_than: datetime) -> int:
        """Delete the records of calls that ended before `older_than`; returns how many."""
        statement = delete(CallRecord).where(CallRecord.ended_at < aware(older_than))
        async with self._transaction() as session:
            result = await session.execute(statement.execution_options(synchronize_session=False))
            return rowcount(result)
