"""Keep data only as long as needed: call records become daily aggregates after the retention period;
listener audit rows, the supervision audit, handled debrief requests, recent call codes and caller sightings
go too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.tables import (
    CallerBar,
    CallerSighting,
    CallRecord,
    DailyStats,
    Debrief,
    ListenerEvent,
    RecentCall,
    Supervision,
)


@dataclass(frozen=True, slots=True)
class Retention:
    call_records: timedelta = timedelta(days=90)
    listener_events: timedelta = timedelta(days=90)
    # Long enough to bar a caller after a hard call, short enough to forget codes quickly.
    recent_calls: timedelta = timedelta(days=7)
    # Sightings feed rate limits and the monthly hint; older ones serve nothing.
    caller_sightings: timedelta = timedelta(days=32)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    call_records: int
    listener_events: int
    recent_calls: int
    caller_sightings: int
    expired_bars: int
    supervisions: int = 0
    handled_debriefs: int = 0


async def purge(engine: AsyncEngine, now: datetime, retention: Retention = Retention()) -> PurgeReport:
    """Aggregate and delete what is past its retention, in one transaction (idempotent)."""
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        old_calls = list(
            await session.scalars(
                select(CallRecord).where(CallRecord.ended_at < now - retention.call_records)
            )
        )
        for record in old_calls:
            day = record.queued_at.date().isoformat()
            stats = await session.get(DailyStats, (day, record.line, record.practice))
            if stats is None:
                stats = DailyStats(
                    day=day,
                    line=record.line,
                    practice=record.practice,
                    calls=0,
                    served=0,
                    abandoned=0,
                    fallback=0,
                    alternatives=0,
                    wait_seconds_total=0.0,
                    talk_seconds_total=0.0,
                    wait_seconds_max=0.0,
                )
                session.add(stats)
            stats.calls += 1
            stats.served += record.outcome == "served"
            stats.abandoned += record.outcome == "abandoned"
            stats.fallback += record.outcome == "fallback"
            stats.alternatives += record.outcome == "alternatives"
            stats.wait_seconds_total += record.wait_seconds
            stats.talk_seconds_total += record.talk_seconds
            stats.wait_seconds_max = max(stats.wait_seconds_max, record.wait_seconds)
            await session.delete(record)
        counts = []
        for table, column, keep in (
            (ListenerEvent, ListenerEvent.at, retention.listener_events),
            (RecentCall, RecentCall.started_at, retention.recent_calls),
            (CallerSighting, CallerSighting.at, retention.caller_sightings),
            (CallerBar, CallerBar.until, timedelta(0)),
            # Audits of the listeners' work live as long as their state audit.
            (Supervision, Supervision.started_at, retention.listener_events),
            # An open request stays until a supervisor handles it, whatever its age.
            (Debrief, Debrief.handled_at, retention.listener_events),
        ):
            result = await session.execute(delete(table).where(column < now - keep))
            counts.append(int(getattr(result, "rowcount", 0) or 0))
    return PurgeReport(len(old_calls), *counts)
