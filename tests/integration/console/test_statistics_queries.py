"""The console's statistics read from real roster databases, on SQLite and PostgreSQL, before and after the
retention purge folds a part of the period into daily aggregates. Every number is worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.console.statistics import LineRules, Statistics
from helpline_pbx.console.statistics_queries import StatisticsRequest, period_statistics
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.retention import purge
from helpline_pbx.roster.snapshots import CallRecordData
from helpline_pbx.roster.tables import DailyStats, ListenerEvent, TurnedAway

# Call records are kept 90 days: the purge at NOW folds the calls that ended before 17 March 12:00 UTC.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PERIOD = StatisticsRequest(date(2026, 3, 14), date(2026, 3, 20), line="adultes")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


async def _call(
    roster: Roster,
    call_id: str,
    queued: datetime,
    outcome: str,
    wait: float,
    talk: float = 0.0,
    *,
    listener_id: str | None = None,
    practice: bool = False,
    line: str = "adultes",
) -> None:
    answered = queued + timedelta(seconds=wait) if outcome == "served" else None
    await roster.record_call(
        CallRecordData(
            call_id=call_id,
            line=line,
            queued_at=queued,
            ended_at=queued + timedelta(seconds=wait + talk),
            outcome=outcome,  # type: ignore[arg-type]
            instance="helpline",
            answered_at=answered,
            listener_id=listener_id,
            wait_seconds=wait,
            talk_seconds=talk,
            practice=practice,
        )
    )


async def _events(engine: AsyncEngine, listener_id: str, changes: list[tuple[datetime, str]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(ListenerEvent),
            [{"listener_id": listener_id, "at": moment, "state": state} for moment, state in changes],
        )


@pytest.fixture
async def calls(engine: AsyncEngine, roster: Roster) -> str:
    """Two days of calls on a 24/7 line in Paris (service level 20 s, short abandon 4 s); the first day
    (15 March) is past retention at NOW, the second (19 March) is not."""
    await Lines(engine).add("adultes", label="Écoute Adultes", service_level=20, short_abandon=4)
    listener = await roster.add_listener("Camille", "camille", "volunteer", now=at(1, 8))
    l1 = listener.id
    # 15 March: answered after 10 s, 300 s of talk then a 60 s rest; a caller gone after 3 s (short).
    await _call(roster, "c-a", at(15, 9, 9, 50), "served", 10, 300, listener_id=l1)
    await _call(roster, "c-b", at(15, 10), "abandoned", 3)
    await _events(
        engine,
        l1,
        [
            (at(15, 9), "available"),
            (at(15, 9, 10), "on_call"),
            (at(15, 9, 15), "resting"),
            (at(15, 9, 16), "available"),
            (at(15, 9, 30), "offline"),
        ],
    )
    # 19 March: answered after 25 s, 600 s of talk then 120 s of rest (resting, then awaiting a debrief);
    # a caller gone after 50 s; one who chose the alternatives; a practice call; another line's call.
    await _call(roster, "c-c", at(19, 8, 30), "served", 25, 600, listener_id=l1)
    await _call(roster, "c-d", at(19, 11), "abandoned", 50)
    await _call(roster, "c-e", at(19, 12), "alternatives", 70)
    await _call(roster, "c-p", at(19, 13), "served", 5, 100, listener_id=l1, practice=True)
    await _call(roster, "c-o", at(19, 13), "served", 5, 100, line="jeunes")
    await _events(
        engine,
        l1,
        [
            (at(19, 8), "available"),
            (at(19, 8, 30, 25), "on_call"),
            (at(19, 8, 40, 25), "resting"),
            (at(19, 8, 41, 25), "awaiting_debrief"),
            (at(19, 8, 42, 25), "available"),
            (at(19, 10), "offline"),
        ],
    )
    # 21 March 00:30 in Paris: after the period.
    await _call(roster, "c-late", at(20, 23, 30), "served", 1, 1)
    # Callers who found the line closed: two on 15 March (purged into its day), one on 19 March, one of
    # another line, one after the period.
    async with engine.begin() as connection:
        for when, line in (
            (at(15, 6), "adultes"),
            (at(15, 22), "adultes"),
            (at(19, 5), "adultes"),
            (at(19, 5), "jeunes"),
            (at(20, 23, 30), "adultes"),
        ):
            await connection.execute(
                insert(TurnedAway).values(line=line, at=when, reason="closed", practice=False)
            )
    return l1


def _counts(stats: Statistics) -> list[object]:
    keys = ["offered", "answered", "abandoned", "short_abandons", "alternatives", "fallback", "closed"]
    keys += ["answer_rate", "service_level", "average_speed_of_answer", "average_talk_time"]
    keys += ["average_handle_time", "open_hours", "staffed_hours", "coverage"]
    return [stats.figure(key).value for key in keys]


EXPECTED = [
    5,
    2,
    2,
    1,
    1,
    0,
    3,  # turned away while closed: 2 on 15 March, 1 on 19 March
    2 / 4,  # answered ÷ (offered − short abandons)
    1 / 4,  # only the 10 s wait is within 20 s
    17.5,  # (10 + 25) ÷ 2
    450.0,  # (300 + 600) ÷ 2
    540.0,  # (300 + 600 + 60 + 120) ÷ 2
    # The audit is kept 90 days: coverage counts from 17 March 12:00 UTC to the period's end (21 March
    # 00:00 in Paris, 20 March 23:00 UTC), 83 hours, of which Camille was on duty 2 (08:00-10:00 UTC).
    83.0,
    2.0,
    2 / 83,
]


@pytest.mark.usefixtures("calls")
async def test_a_period_straddling_the_purge_gives_the_same_figures_before_and_after(
    engine: AsyncEngine,
) -> None:
    before = await period_statistics(engine, PERIOD, now=NOW)
    assert _counts(before) == pytest.approx(EXPECTED)
    assert before.figure("p90_speed_of_answer").value == 25.0
    days = [(r.day.day, r.offered, r.answered, r.abandoned) for r in before.daily]
    assert days == [
        (14, 0, 0, 0),
        (15, 2, 1, 1),
        (16, 0, 0, 0),
        (17, 0, 0, 0),
        (18, 0, 0, 0),
        (19, 3, 1, 1),
        (20, 0, 0, 0),
    ]
    # 15 March is a Sunday, 19 March a Thursday; the hours are Paris's (UTC+1).
    heat = {
        (weekday, hour): n for weekday, row in enumerate(before.heat_map) for hour, n in enumerate(row) if n
    }
    assert heat == {(6, 10): 1, (6, 11): 1, (3, 9): 1, (3, 12): 1, (3, 13): 1}
    assert [(r.pseudonym, r.answered, r.hours_on_duty) for r in before.load] == [("Camille", 2, 2.0)]

    lines = await Lines(engine).list()
    report = await purge(engine, NOW, rules={line.name: LineRules.of_line(line) for line in lines})
    assert report.call_records == 2

    after = await period_statistics(engine, PERIOD, now=NOW)
    assert _counts(after) == pytest.approx(EXPECTED)
    assert after.daily == before.daily
    assert after.heat_map == before.heat_map
    # The 10 s wait is now only a bucket (up to 10 s), the 25 s one still a record (its bucket: up to 30 s).
    assert after.figure("p90_speed_of_answer").value == 30.0
    # Who answered a purged call is forgotten with the record.
    assert [(r.pseudonym, r.answered, r.hours_on_duty) for r in after.load] == [("Camille", 1, 2.0)]
    assert after.notes


@pytest.mark.usefixtures("calls")
async def test_the_purge_keeps_what_the_figures_need(engine: AsyncEngine) -> None:
    lines = await Lines(engine).list()
    await purge(engine, NOW, rules={line.name: LineRules.of_line(line) for line in lines})
    async with engine.connect() as connection:
        row = (await connection.execute(select(DailyStats))).one()
    assert (row.day, row.line, row.practice, row.timezone) == ("2026-03-15", "adultes", False, "Europe/Paris")
    assert (row.calls, row.served, row.abandoned, row.short_abandons, row.answered_in_service_level) == (
        2,
        1,
        1,
        1,
        1,
    )
    assert (row.service_level_seconds, row.short_abandon_seconds) == (20, 4)
    assert (row.answered_wait_seconds_total, row.talk_seconds_total, row.rest_seconds_total) == (
        10.0,
        300.0,
        60.0,
    )
    assert row.wait_histogram == [0, 1] + [0] * 11
    assert row.hourly == [0] * 10 + [1, 1] + [0] * 12
    # 15 March 22:00 UTC is 23:00 in Paris: still the 15th there.
    assert row.closed == 2


@pytest.mark.usefixtures("calls")
async def test_practice_calls_and_other_lines_stay_apart(engine: AsyncEngine) -> None:
    practice = await period_statistics(
        engine, StatisticsRequest(PERIOD.start, PERIOD.end, line="adultes", practice=True), now=NOW
    )
    assert [practice.figure(k).value for k in ("offered", "answered", "average_talk_time")] == [1, 1, 100.0]
    every = await period_statistics(engine, StatisticsRequest(PERIOD.start, PERIOD.end), now=NOW)
    # The other line's call is counted too, judged by the service's defaults (no line named "jeunes").
    assert [every.figure(k).value for k in ("offered", "answered")] == [6, 3]


async def test_an_empty_period_has_no_rates(engine: AsyncEngine) -> None:
    stats = await period_statistics(engine, PERIOD, now=NOW, lines=[])
    assert [
        stats.figure(k).value for k in ("offered", "answer_rate", "service_level", "p90_speed_of_answer")
    ] == [
        0,
        None,
        None,
        None,
    ]
