"""Keep data only as long as needed: call records become daily aggregates after the retention period;
listener audit rows, the supervision audit, handled debrief requests, recent call codes and caller sightings
go too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from helpline_pbx.console.statistics import (
    REST_SLACK,
    WAIT_BUCKETS,
    CallFacts,
    DayAggregate,
    LineRules,
    StateChange,
    aggregate,
    facts_of,
)
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
    TurnedAway,
)

# A line the purge has no rules for is counted in UTC days, with the service's default thresholds.
UNKNOWN_LINE = LineRules("UTC")


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


async def purge(
    engine: AsyncEngine,
    now: datetime,
    retention: Retention = Retention(),
    rules: Mapping[str, LineRules] | None = None,
    default_rules: LineRules = UNKNOWN_LINE,
) -> PurgeReport:
    """Aggregate and delete what is past its retention, in one transaction (idempotent).

    rules are each line's zone and thresholds as they are now (by line name): the aggregates keep what the
    console's statistics need, judged by them. A line without rules (removed, or none given) is counted
    in default_rules: UTC days and the service's default thresholds.
    """
    sessions = session_factory(engine)
    async with transaction(sessions) as session:
        old_calls = list(
            await session.scalars(
                select(CallRecord).where(CallRecord.ended_at < now - retention.call_records)
            )
        )
        facts = await _call_facts(session, old_calls, now)
        for day in aggregate(facts, rules or {}, default_rules):
            key = (day.day.isoformat(), day.line, day.practice)
            stats = await session.get(DailyStats, key)
            if stats is None:
                session.add(_new_row(day))
            else:
                _add_to(stats, day)
        for record in old_calls:
            await session.delete(record)
        await _fold_turned_away(session, now - retention.call_records, rules or {}, default_rules)
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


async def _call_facts(session: AsyncSession, records: list[CallRecord], now: datetime) -> list[CallFacts]:
    """The records as the statistics read them, with the rest each answering listener took after the call
    (from their audit, still there: it is purged after this, and never sooner than the records by
    default)."""
    answered = [r for r in records if r.outcome == "served" and r.listener_id is not None]
    changes: dict[str, list[StateChange]] = {}
    if answered:
        since = min(r.ended_at for r in answered) - REST_SLACK
        rows = await session.execute(
            select(ListenerEvent.listener_id, ListenerEvent.at, ListenerEvent.state)
            .where(
                ListenerEvent.listener_id.in_({r.listener_id for r in answered}),
                ListenerEvent.at >= since,
            )
            .order_by(ListenerEvent.at, ListenerEvent.id)
        )
        for listener_id, at, state in rows:
            changes.setdefault(listener_id, []).append(StateChange(listener_id, at, state))
    return [facts_of(r, changes, now) for r in records]


async def _fold_turned_away(
    session: AsyncSession, before: datetime, rules: Mapping[str, LineRules], default: LineRules
) -> None:
    """Callers turned away before `before` become their day's `closed` count, then go."""
    old = list(await session.scalars(select(TurnedAway).where(TurnedAway.at < before)))
    counts: dict[tuple[str, str, bool], tuple[int, LineRules]] = {}
    for away in old:
        rule = rules.get(away.line, default)
        day = away.at.astimezone(ZoneInfo(rule.timezone)).date().isoformat()
        key = (day, away.line, away.practice)
        counts[key] = (counts.get(key, (0, rule))[0] + 1, rule)
    for (day, line, practice), (count, rule) in counts.items():
        stats = await session.get(DailyStats, (day, line, practice))
        if stats is None:
            empty = DayAggregate(
                day=date.fromisoformat(day),
                line=line,
                practice=practice,
                timezone=rule.timezone,
                calls=0,
                served=0,
                abandoned=0,
                fallback=0,
                alternatives=0,
                talk_seconds_total=0.0,
                short_abandons=0,
                answered_in_service_level=0,
                service_level_seconds=rule.thresholds.service_level,
                short_abandon_seconds=rule.thresholds.short_abandon,
                answered_wait_seconds_total=0.0,
                rest_seconds_total=0.0,
                wait_histogram=(0,) * (len(WAIT_BUCKETS) + 1),
                hourly=(0,) * 24,
                closed=0,
            )
            stats = _new_row(empty)
            session.add(stats)
        # A day aggregated before turned-away callers were counted stays unknown.
        stats.closed = None if stats.closed is None else stats.closed + count
    for away in old:
        await session.delete(away)


def _new_row(day: DayAggregate) -> DailyStats:
    return DailyStats(
        day=day.day.isoformat(),
        line=day.line,
        practice=day.practice,
        timezone=day.timezone,
        calls=day.calls,
        served=day.served,
        abandoned=day.abandoned,
        fallback=day.fallback,
        alternatives=day.alternatives,
        wait_seconds_total=day.wait_seconds_total,
        talk_seconds_total=day.talk_seconds_total,
        wait_seconds_max=day.wait_seconds_max,
        short_abandons=day.short_abandons,
        answered_in_service_level=day.answered_in_service_level,
        service_level_seconds=day.service_level_seconds,
        short_abandon_seconds=day.short_abandon_seconds,
        answered_wait_seconds_total=day.answered_wait_seconds_total,
        rest_seconds_total=day.rest_seconds_total,
        wait_histogram=None if day.wait_histogram is None else list(day.wait_histogram),
        hourly=None if day.hourly is None else list(day.hourly),
        closed=0 if day.closed is None else day.closed,
    )


def _add_to(stats: DailyStats, day: DayAggregate) -> None:
    """A later purge's calls of a day already aggregated (calls that ended after the earlier cut-off).

    The row keeps its zone: a line's zone changed in between leaves these calls on that zone's day. A
    column the row lacks (aggregated before revision 0011) stays unknown.
    """
    stats.calls += day.calls
    stats.served += day.served
    stats.abandoned += day.abandoned
    stats.fallback += day.fallback
    stats.alternatives += day.alternatives
    stats.wait_seconds_total += day.wait_seconds_total
    stats.talk_seconds_total += day.talk_seconds_total
    stats.wait_seconds_max = max(stats.wait_seconds_max, day.wait_seconds_max)
    stats.short_abandons = _sum(stats.short_abandons, day.short_abandons)
    stats.answered_in_service_level = _sum(stats.answered_in_service_level, day.answered_in_service_level)
    stats.answered_wait_seconds_total = _sum(
        stats.answered_wait_seconds_total, day.answered_wait_seconds_total
    )
    stats.rest_seconds_total = _sum(stats.rest_seconds_total, day.rest_seconds_total)
    # New lists, not the same ones changed in place: the ORM notices a JSON column's change by assignment.
    stats.wait_histogram = _sum_lists(stats.wait_histogram, day.wait_histogram)
    stats.hourly = _sum_lists(stats.hourly, day.hourly)


_N = TypeVar("_N", int, float)


def _sum(total: _N | None, more: _N | None) -> _N | None:
    return None if total is None or more is None else total + more


def _sum_lists(total: list[int] | None, more: tuple[int, ...] | None) -> list[int] | None:
    if total is None or more is None or len(total) != len(more):
        return None
    return [a + b for a, b in zip(total, more, strict=True)]
