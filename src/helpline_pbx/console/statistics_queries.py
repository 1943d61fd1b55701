"""What the console's statistics read from the roster: call records of recent days, daily aggregates of
purged ones, the listener audit, pseudonyms. One short read transaction; the figures are statistics.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from helpline_pbx.console.statistics import (
    REST_SLACK,
    DayAggregate,
    Interval,
    LineRules,
    Period,
    StateChange,
    Statistics,
    Thresholds,
    TurnedAwayFacts,
    compute,
    facts_of,
    on_duty_intervals,
)
from helpline_pbx.hours import DEFAULT_TIMEZONE
from helpline_pbx.lines.repository import Lines
from helpline_pbx.lines.snapshots import LineSnapshot
from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.retention import Retention
from helpline_pbx.roster.tables import CallRecord, DailyStats, Listener, ListenerEvent, TurnedAway
from helpline_pbx.timestamps import require_aware

DEFAULT_THRESHOLDS = Thresholds()
DEFAULT_RETENTION = Retention()


@dataclass(frozen=True, slots=True)
class StatisticsRequest:
    """A period (both days included) and a line (its name; None: every line), real or practice calls.

    timezone None: the line's zone; for every line, their common zone, else the service's default.
    """

    start: date
    end: date
    line: str | None = None
    timezone: str | None = None
    practice: bool = False


async def period_statistics(
    engine: AsyncEngine,
    request: StatisticsRequest,
    *,
    now: datetime,
    lines: Sequence[LineSnapshot] | None = None,
    defaults: Thresholds = DEFAULT_THRESHOLDS,
    retention: Retention = DEFAULT_RETENTION,
) -> Statistics:
    """The statistics of a period. lines: the lines as the caller knows them (read here when None);
    defaults: the thresholds of lines that have none; retention: how long the listener audit is kept, so
    coverage counts only the part of the period it still covers."""
    now = require_aware(now, "statistics")
    known = list(await Lines(engine).list()) if lines is None else list(lines)
    chosen = [line for line in known if request.line is None or line.name == request.line]
    period = Period(request.start, request.end, _zone(request, chosen))
    rules = {line.name: LineRules.of_line(line, defaults) for line in known}
    begin, end = period.bounds()
    window: Interval = (max(begin, now - retention.listener_events), min(end, now))
    async with transaction(session_factory(engine)) as session:
        records = await _records(session, request, begin, end)
        aggregates = await _aggregates(session, request)
        turned_away = [
            TurnedAwayFacts(line, at, practice)
            for line, at, practice in (
                await session.execute(
                    select(TurnedAway.line, TurnedAway.at, TurnedAway.practice).where(
                        TurnedAway.at >= begin, TurnedAway.at < end, TurnedAway.practice.is_(request.practice)
                    )
                )
            ).tuples()
        ]
        answered_ends = [r.ended_at for r in records if r.outcome == "served" and r.listener_id]
        since = min([window[0], *(at - REST_SLACK for at in answered_ends)])
        changes = await _changes(session, since, window[0])
        pseudonyms = dict((await session.execute(select(Listener.id, Listener.pseudonym))).tuples().all())
    by_listener: dict[str, list[StateChange]] = {}
    for change in changes:
        by_listener.setdefault(change.listener_id, []).append(change)
    calls = [facts_of(r, by_listener, now) for r in records]
    covered = window[0] < window[1]
    duty = on_duty_intervals(changes, *window) if covered else None
    return compute(
        period,
        calls,
        aggregates,
        line=request.line,
        practice=request.practice,
        rules=rules,
        default_rules=LineRules(period.timezone, defaults),
        open_hours=[line.hours for line in chosen],
        duty=duty,
        duty_window=window if covered else None,
        pseudonyms=pseudonyms,
        turned_away=turned_away,
    )


def _zone(request: StatisticsRequest, chosen: Sequence[LineSnapshot]) -> str:
    if request.timezone is not None:
        return request.timezone
    zones = {line.timezone for line in chosen}
    return zones.pop() if len(zones) == 1 else DEFAULT_TIMEZONE


@dataclass(frozen=True, slots=True)
class _Record:
    line: str
    queued_at: datetime
    ended_at: datetime
    outcome: str
    wait_seconds: float
    talk_seconds: float
    listener_id: str | None
    practice: bool


async def _records(
    session: AsyncSession, request: StatisticsRequest, begin: datetime, end: datetime
) -> list[_Record]:
    query = select(
        CallRecord.line,
        CallRecord.queued_at,
        CallRecord.ended_at,
        CallRecord.outcome,
        CallRecord.wait_seconds,
        CallRecord.talk_seconds,
        CallRecord.listener_id,
        CallRecord.practice,
    ).where(
        CallRecord.queued_at >= begin,
        CallRecord.queued_at < end,
        CallRecord.practice.is_(request.practice),
    )
    if request.line is not None:
        query = query.where(CallRecord.line == request.line)
    return [_Record(*row) for row in (await session.execute(query)).tuples()]


async def _aggregates(session: AsyncSession, request: StatisticsRequest) -> list[DayAggregate]:
    # ISO dates sort as text, so the day column compares as the dates do.
    query = select(DailyStats).where(
        DailyStats.day >= request.start.isoformat(),
        DailyStats.day <= request.end.isoformat(),
        DailyStats.practice.is_(request.practice),
    )
    if request.line is not None:
        query = query.where(DailyStats.line == request.line)
    return [
        DayAggregate(
            day=date.fromisoformat(row.day),
            line=row.line,
            practice=row.practice,
            timezone=row.timezone,
            calls=row.calls,
            served=row.served,
            abandoned=row.abandoned,
            fallback=row.fallback,
            alternatives=row.alternatives,
            talk_seconds_total=row.talk_seconds_total,
            wait_seconds_total=row.wait_seconds_total,
            wait_seconds_max=row.wait_seconds_max,
            short_abandons=row.short_abandons,
            answered_in_service_level=row.answered_in_service_level,
            service_level_seconds=row.service_level_seconds,
            short_abandon_seconds=row.short_abandon_seconds,
            answered_wait_seconds_total=row.answered_wait_seconds_total,
            rest_seconds_total=row.rest_seconds_total,
            wait_histogram=None if row.wait_histogram is None else tuple(row.wait_histogram),
            hourly=None if row.hourly is None else tuple(row.hourly),
            closed=row.closed,
        )
        for row in await session.scalars(query)
    ]


async def _changes(session: AsyncSession, since: datetime, window_start: datetime) -> list[StateChange]:
    """The audit from `since` on, and each listener's last change before the window (their state then)."""
    last = (
        select(ListenerEvent.listener_id, func.max(ListenerEvent.at).label("at"))
        .where(ListenerEvent.at < window_start)
        .group_by(ListenerEvent.listener_id)
        .subquery()
    )
    before = select(ListenerEvent.listener_id, ListenerEvent.at, ListenerEvent.state).join(
        last, and_(ListenerEvent.listener_id == last.c.listener_id, ListenerEvent.at == last.c.at)
    )
    after = select(ListenerEvent.listener_id, ListenerEvent.at, ListenerEvent.state).where(
        ListenerEvent.at >= min(since, window_start)
    )
    seen: set[tuple[str, datetime, str]] = set()
    found: list[StateChange] = []
    for query in (before, after.order_by(ListenerEvent.at, ListenerEvent.id)):
        for listener_id, at, state in (await session.execute(query)).tuples():
            if (listener_id, at, state) not in seen:
                seen.add((listener_id, at, state))
                found.append(StateChange(listener_id, at, state))
    found.sort(key=lambda c: c.at)
    return found
