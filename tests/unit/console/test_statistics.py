"""The console's statistics, pure: every number below is worked out by hand from the calls given."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from helpline_pbx.console.statistics import (
    REMOVED_LISTENER,
    CallFacts,
    LineRules,
    Period,
    StateChange,
    Thresholds,
    aggregate,
    compute,
    daily_csv,
    heat_map_csv,
    hours_of,
    load_csv,
    on_duty_intervals,
    open_intervals,
    rest_after,
    summary_csv,
)
from helpline_pbx.hours import OpeningHours

PARIS = "Europe/Paris"
# Monday 2 March 2026, 10:00 in Paris (UTC+1).
MORNING = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def call(outcome: str, wait: float, talk: float = 0.0, **fields: object) -> CallFacts:
    values: dict[str, object] = {
        "line": "adultes",
        "queued_at": MORNING,
        "outcome": outcome,
        "wait_seconds": wait,
        "talk_seconds": talk,
    }
    values.update(fields)
    return CallFacts(**values)  # type: ignore[arg-type]


MIXED = [
    call("served", 10, 100, listener_id="l-1", rest_seconds=20),
    call("served", 40, 200, listener_id="l-2"),
    call("abandoned", 3),
    call("abandoned", 60),
    call("alternatives", 90),
    call("fallback", 5),
]
DAY = Period(date(2026, 3, 2), date(2026, 3, 2), PARIS)


def values(stats: object, *keys: str) -> list[object]:
    return [stats.figure(key).value for key in keys]  # type: ignore[attr-defined]


def test_no_calls_gives_no_rates_rather_than_a_division_error() -> None:
    stats = compute(DAY, [])
    assert values(stats, "offered", "answered", "short_abandons") == [0, 0, 0]
    assert (
        values(
            stats,
            "answer_rate",
            "service_level",
            "average_speed_of_answer",
            "p90_speed_of_answer",
            "average_talk_time",
            "average_handle_time",
        )
        == [None] * 6
    )


def test_only_short_abandons_leave_nothing_to_divide_by() -> None:
    stats = compute(DAY, [call("abandoned", 2), call("abandoned", 5)])
    assert values(stats, "offered", "abandoned", "short_abandons", "answer_rate", "service_level") == [
        2,
        2,
        2,
        None,
        None,
    ]


def test_the_figures_of_a_day_by_hand() -> None:
    stats = compute(DAY, MIXED)
    assert values(
        stats, "offered", "answered", "abandoned", "short_abandons", "alternatives", "fallback"
    ) == [
        6,
        2,
        2,
        1,
        1,
        1,
    ]
    # 2 answered ÷ (6 offered − 1 short abandon); only the 10 s wait is within 30 s.
    assert stats.figure("answer_rate").value == pytest.approx(0.4)
    assert stats.figure("service_level").value == pytest.approx(0.2)
    assert stats.figure("average_speed_of_answer").value == pytest.approx(25.0)
    # Nearest rank of 90 % of two waits is the second.
    assert stats.figure("p90_speed_of_answer").value == 40
    assert stats.figure("average_talk_time").value == pytest.approx(150.0)
    assert stats.figure("average_handle_time").value == pytest.approx(160.0)
    assert stats.figure("closed").value == 0
    assert "closed or inactive" in stats.figure("closed").definition
    assert stats.figure("answer_rate").definition.startswith("answered ÷ (offered − short abandons)")
    assert all(figure.definition for figure in (*stats.summary, *stats.coverage))


def test_thresholds_are_the_lines_own() -> None:
    strict = {"adultes": LineRules(PARIS, Thresholds(service_level=5, short_abandon=2))}
    stats = compute(DAY, MIXED, rules=strict)
    # The 3 s abandon is no longer short; no answer came within 5 s: 0 ÷ (6 − 0).
    assert values(stats, "short_abandons", "service_level") == [0, 0.0]
    assert stats.figure("answer_rate").value == pytest.approx(2 / 6)
    assert "5 s" in stats.figure("service_level").definition


def test_practice_calls_are_never_mixed_with_real_ones() -> None:
    calls = [
        call("served", 10, 60),
        call("served", 20, 60, practice=True),
        call("abandoned", 30, practice=True),
    ]
    real = compute(DAY, calls)
    practice = compute(DAY, calls, practice=True)
    assert values(real, "offered", "answered", "abandoned") == [1, 1, 0]
    assert values(practice, "offered", "answered", "abandoned") == [2, 1, 1]


def test_one_line_or_every_line() -> None:
    calls = [call("served", 10), call("served", 10, line="jeunes"), call("abandoned", 10, line="jeunes")]
    assert compute(DAY, calls).figure("offered").value == 3
    assert compute(DAY, calls, line="jeunes").figure("offered").value == 2


def test_period_bounds_are_local_days_even_on_the_dst_change_day() -> None:
    # Sunday 29 March 2026 in Paris lasts 23 hours: 28 March 23:00 UTC to 29 March 22:00 UTC.
    period = Period(date(2026, 3, 29), date(2026, 3, 29), PARIS)
    assert period.bounds() == (
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
    )
    at = [
        datetime(2026, 3, 28, 22, 59, tzinfo=UTC),  # Saturday 23:59 in Paris: before
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # Sunday 00:00
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 03:30, just after the clocks went forward
        datetime(2026, 3, 29, 21, 59, tzinfo=UTC),  # Sunday 23:59 (summer time)
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),  # Monday 00:00: after
    ]
    stats = compute(period, [call("served", 1, queued_at=moment) for moment in at])
    assert stats.figure("offered").value == 3
    assert [row.day for row in stats.daily] == [date(2026, 3, 29)]
    sunday = stats.heat_map[6]
    assert (sunday[0], sunday[3], sunday[23]) == (1, 1, 1)
    assert sum(map(sum, stats.heat_map)) == 3


def test_a_period_ends_on_or_after_its_start() -> None:
    with pytest.raises(ValueError, match="ends on or after"):
        Period(date(2026, 3, 2), date(2026, 3, 1))


def test_the_daily_series_has_every_day_of_the_period() -> None:
    period = Period(date(2026, 3, 1), date(2026, 3, 3), PARIS)
    stats = compute(
        period,
        [call("served", 1), call("abandoned", 9), call("served", 1, queued_at=MORNING + timedelta(days=1))],
    )
    assert [(r.day.day, r.offered, r.answered, r.abandoned) for r in stats.daily] == [
        (1, 0, 0, 0),
        (2, 2, 1, 1),
        (3, 1, 1, 0),
    ]
    # Monday 10:00 and Tuesday 10:00 in Paris.
    assert (stats.heat_map[0][10], stats.heat_map[1][10]) == (2, 1)


def test_aggregates_give_the_same_counts_as_the_records_they_replace() -> None:
    rules = {"adultes": LineRules(PARIS)}
    from_records = compute(DAY, MIXED, rules=rules)
    from_aggregates = compute(DAY, [], aggregate(MIXED, rules), rules=rules)
    keys = ["offered", "answered", "abandoned", "short_abandons", "alternatives", "fallback"]
    keys += ["answer_rate", "service_level", "average_speed_of_answer", "average_talk_time"]
    keys += ["average_handle_time"]
    assert values(from_aggregates, *keys) == values(from_records, *keys)
    assert from_aggregates.heat_map == from_records.heat_map
    assert from_aggregates.daily == from_records.daily
    # Waits of 10 and 40 s fall in the buckets up to 10 and up to 45 s: the p90 is read as 45 s.
    assert from_aggregates.figure("p90_speed_of_answer").value == 45.0
    assert "approximate" in from_aggregates.figure("p90_speed_of_answer").definition


def test_an_aggregate_counted_before_revision_0011_leaves_its_figures_unknown() -> None:
    (day,) = aggregate(MIXED, {"adultes": LineRules(PARIS)})
    from dataclasses import replace

    old = replace(day, short_abandons=None, answered_in_service_level=None, wait_histogram=None, hourly=None)
    stats = compute(DAY, [], [old])
    assert values(
        stats, "offered", "short_abandons", "answer_rate", "service_level", "p90_speed_of_answer"
    ) == [
        6,
        None,
        None,
        None,
        None,
    ]
    assert any("heat map" in note for note in stats.notes)


def test_the_rest_after_a_call_is_read_from_the_audit() -> None:
    end = MORNING
    changes = [
        StateChange("l-1", end - timedelta(minutes=10), "on_call"),
        StateChange("l-1", end, "resting"),
        StateChange("l-1", end + timedelta(seconds=60), "awaiting_debrief"),
        StateChange("l-1", end + timedelta(seconds=300), "available"),
    ]
    assert rest_after(changes, end, end + timedelta(hours=1)) == 300.0
    # A rest not over yet counts until then.
    assert rest_after(changes[:3], end, end + timedelta(seconds=90)) == 90.0
    # Straight back to available: no rest.
    assert rest_after([StateChange("l-1", end, "available")], end, end + timedelta(hours=1)) == 0.0


def test_open_hours_are_wall_clock_across_the_dst_change() -> None:
    start, end = Period(date(2026, 3, 29), date(2026, 3, 29), PARIS).bounds()
    assert hours_of(open_intervals(OpeningHours(timezone=PARIS), start, end)) == 23.0
    evening = OpeningHours.parse("mon-sun 20:00-02:00", timezone=PARIS)
    # Saturday's range runs into Sunday: 00:00 to 02:00 local, and 02:00 is when the clocks jump (01:00
    # UTC), so 2 real hours; then Sunday's 20:00 (summer time) to the period's end at midnight, 4 hours.
    assert hours_of(open_intervals(evening, start, end)) == 2.0 + 4.0


def test_coverage_and_load() -> None:
    start, end = DAY.bounds()
    hours = OpeningHours.parse("mon-fri 09:00-21:00", timezone=PARIS)
    changes = [
        # On duty from 08:00 to 12:00 Paris, paused 12:00-13:00, back until 15:00.
        StateChange("l-1", datetime(2026, 3, 2, 7, 0, tzinfo=UTC), "available"),
        StateChange("l-1", datetime(2026, 3, 2, 11, 0, tzinfo=UTC), "paused"),
        StateChange("l-1", datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "on_call"),
        StateChange("l-1", datetime(2026, 3, 2, 14, 0, tzinfo=UTC), "offline"),
        # On since before the period began (Sunday), off at 10:00 Paris.
        StateChange("l-2", datetime(2026, 3, 1, 20, 0, tzinfo=UTC), "available"),
        StateChange("l-2", datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "offline"),
    ]
    duty = on_duty_intervals(changes, start, end)
    stats = compute(
        DAY,
        MIXED,
        open_hours=[hours],
        duty=duty,
        duty_window=(start, end),
        pseudonyms={"l-1": "Camille"},
    )
    # Staffed: 00:00-12:00 and 13:00-15:00 Paris = 14 h; open 09:00-21:00 = 12 h, of which 09-12 and 13-15.
    assert values(stats, "open_hours", "staffed_hours", "staffed_open_hours") == [12.0, 14.0, 5.0]
    assert stats.figure("coverage").value == pytest.approx(5 / 12)
    assert [(r.pseudonym, r.answered, r.hours_on_duty) for r in stats.load] == [
        (REMOVED_LISTENER, 1, 10.0),
        ("Camille", 1, 6.0),
    ]


def test_without_the_audit_coverage_is_unknown() -> None:
    stats = compute(DAY, MIXED, open_hours=[OpeningHours(timezone=PARIS)])
    assert values(stats, "open_hours", "staffed_hours", "coverage") == [None, None, None]


def test_csv_tables() -> None:
    stats = compute(
        DAY, MIXED, pseudonyms={"l-1": "Camille", "l-2": "Dominique"}, duty={}, duty_window=DAY.bounds()
    )
    summary = summary_csv(stats).splitlines()
    assert summary[0] == "figure,label,value,unit,definition"
    assert "answer_rate,Answer rate,0.4,ratio,answered ÷ (offered − short abandons)" in summary[8]
    assert summary[7].startswith("closed,Closed (arrived outside hours),0,calls,")
    assert daily_csv(stats).splitlines() == ["day,offered,answered,abandoned", "2026-03-02,6,2,2"]
    heat = heat_map_csv(stats).splitlines()
    assert heat[0].split(",")[:3] == ["weekday", "00", "01"]
    assert heat[1].split(",")[11] == "6"  # Monday, 10:00
    assert load_csv(stats).splitlines() == ["listener,answered,hours_on_duty", "Camille,1,0", "Dominique,1,0"]
