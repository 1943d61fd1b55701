"""Opening hours: parsing, evaluation in the line's zone across midnight and DST, next opening, words."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from helpline_pbx.hours import (
    MINUTES_PER_DAY,
    DayRanges,
    HoursError,
    OpeningHours,
    TimeRange,
)

PARIS = ZoneInfo("Europe/Paris")
# Paris in 2026: clocks go forward on 29 March at 02:00 (01:00Z), back on 25 October at 03:00 (01:00Z).
SPRING_FORWARD = date(2026, 3, 29)
FALL_BACK = date(2026, 10, 25)
# Zones with unusual transitions: half an hour (Lord Howe), at midnight (São Paulo until 2019).
ZONES = ["Europe/Paris", "UTC", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo"]
WEEKLY = "mon-fri 09:00-21:00; sat 10:00-18:00; sun closed"


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Parsing


def test_compact_text_gives_weekly_ranges_and_exceptions() -> None:
    hours = OpeningHours.parse(WEEKLY, "2026-12-25 closed; 2026-12-24 09:00-14:00")
    assert hours.weekly[0] == (TimeRange(9 * 60, 21 * 60),)
    assert hours.weekly[4] == hours.weekly[0]
    assert hours.weekly[5] == (TimeRange(10 * 60, 18 * 60),)
    assert hours.weekly[6] == ()
    assert hours.ranges_on(date(2026, 12, 25)) == ()
    assert hours.ranges_on(date(2026, 12, 24)) == (TimeRange(9 * 60, 14 * 60),)
    assert hours.timezone == "Europe/Paris"


def test_days_not_named_are_closed_and_day_lists_wrap() -> None:
    hours = OpeningHours.parse("fri-mon 10:00-12:00,14:00-16:00; wed 24h")
    assert [bool(day) for day in hours.weekly] == [True, False, True, False, True, True, True]
    assert hours.weekly[6] == (TimeRange(600, 720), TimeRange(840, 960))
    assert hours.weekly[2] == (TimeRange(0, MINUTES_PER_DAY),)


def test_french_day_names_and_24_7() -> None:
    assert OpeningHours.parse("lun-ven 09:00-17:00") == OpeningHours.parse("mon-fri 09:00-17:00")
    always = OpeningHours.parse("24/7")
    assert always.is_always_open_weekly()
    assert always.weekly_text() == "24/7"


def test_until_midnight_is_not_a_range_crossing_it() -> None:
    (until_midnight,) = OpeningHours.parse("mon 22:00-00:00").weekly[0]
    assert until_midnight == TimeRange(22 * 60, MINUTES_PER_DAY)
    assert not until_midnight.crosses_midnight
    assert TimeRange.parse("20:00-02:00").crosses_midnight


@pytest.mark.parametrize(
    ("weekly", "exceptions", "part"),
    [
        ("mon-fri 9-21", "", "mon-fri 9-21"),
        ("mon-fri 09:00-21:00; xyz 10:00-11:00", "", "xyz 10:00-11:00"),
        ("mon 25:00-26:00", "", "mon 25:00-26:00"),
        ("mon 09:60-10:00", "", "mon 09:60-10:00"),
        ("mon 24:00-02:00", "", "mon 24:00-02:00"),
        ("mon 09:00-09:00", "", "mon 09:00-09:00"),
        ("mon 09:00-12:00,11:00-13:00", "", "mon 09:00-12:00,11:00-13:00"),
        ("mon 20:00-02:00,21:00-22:00", "", "mon 20:00-02:00,21:00-22:00"),
        ("mon-fri 09:00-12:00; fri 14:00-16:00", "", "fri 14:00-16:00"),
        ("mon", "", "mon"),
        ("", "", ""),
        ("24/7", "2026-02-30 closed", "2026-02-30 closed"),
        ("24/7", "25/12/2026 closed", "25/12/2026 closed"),
        ("24/7", "2026-12-24 9h-14h", "2026-12-24 9h-14h"),
        ("24/7", "2026-12-25 closed; 2026-12-25 10:00-12:00", "2026-12-25"),
    ],
)
def test_malformed_hours_name_the_offending_part(weekly: str, exceptions: str, part: str) -> None:
    with pytest.raises(HoursError) as caught:
        OpeningHours.parse(weekly, exceptions)
    assert isinstance(caught.value, ValueError)
    assert caught.value.part == part
    assert repr(part) in str(caught.value)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(HoursError) as caught:
        OpeningHours.parse("24/7", timezone="Mars/Olympus_Mons")
    assert caught.value.part == "Mars/Olympus_Mons"


def test_naive_datetimes_are_refused() -> None:
    hours = OpeningHours.parse("24/7")
    with pytest.raises(ValueError, match="timezone-aware"):
        hours.is_open(datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        hours.next_opening(datetime(2026, 1, 1, 12, 0))


# Evaluation


def test_open_inside_closed_outside_in_the_line_zone() -> None:
    hours = OpeningHours.parse(WEEKLY)
    monday = date(2026, 1, 5)
    assert hours.is_open(paris(2026, 1, 5, 9, 0))
    assert hours.is_open(paris(2026, 1, 5, 20, 59, 59))
    assert not hours.is_open(paris(2026, 1, 5, 8, 59, 59))
    assert not hours.is_open(paris(2026, 1, 5, 21, 0))
    assert not hours.is_open(paris(2026, 1, 11, 12, 0))  # Sunday
    # 08:30 UTC is 09:30 in Paris in winter: the line's zone decides, not the caller's.
    assert hours.is_open(datetime.combine(monday, time(8, 30), UTC))
    assert not OpeningHours.parse(WEEKLY, timezone="America/New_York").is_open(
        datetime.combine(monday, time(8, 30), UTC)
    )


def test_range_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    night = OpeningHours.parse("fri 20:00-02:00")
    assert not night.is_open(paris(2026, 1, 9, 19, 59))
    assert night.is_open(paris(2026, 1, 9, 23, 0))
    assert night.is_open(paris(2026, 1, 10, 1, 59))  # Saturday morning, Friday's range
    assert not night.is_open(paris(2026, 1, 10, 2, 0))
    assert not night.is_open(paris(2026, 1, 10, 20, 30))

    saturday_closed = night.with_exception(date(2026, 1, 10))
    assert saturday_closed.is_open(paris(2026, 1, 10, 1, 30))
    friday_closed = night.with_exception(date(2026, 1, 9))
    assert not friday_closed.is_open(paris(2026, 1, 10, 1, 30))


def test_exceptions_close_days_or_change_their_hours() -> None:
    hours = OpeningHours.parse(WEEKLY, ["2026-12-25 closed", "2026-12-24 09:00-14:00"])
    assert not hours.is_open(paris(2026, 12, 25, 12, 0))  # a Friday
    assert hours.is_open(paris(2026, 12, 24, 13, 59))
    assert not hours.is_open(paris(2026, 12, 24, 14, 0))
    assert hours.is_open(paris(2026, 12, 23, 20, 0))
    assert hours.without_exception(date(2026, 12, 25)).is_open(paris(2026, 12, 25, 12, 0))


def test_hours_follow_the_wall_clock_across_spring_forward() -> None:
    hours = OpeningHours.parse("daily 09:00-17:00")
    # Saturday 09:00 is 08:00Z (CET); Sunday 09:00 is 07:00Z (CEST).
    assert hours.is_open(utc(2026, 3, 28, 8, 0))
    assert not hours.is_open(utc(2026, 3, 28, 7, 59))
    assert hours.is_open(utc(2026, 3, 29, 7, 0))
    assert not hours.is_open(utc(2026, 3, 29, 6, 59))
    assert hours.next_opening(paris(2026, 3, 28, 22, 0)) == paris(2026, 3, 29, 9, 0)
    assert hours.next_opening(paris(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 7, 0)


def test_next_opening_is_in_utc() -> None:
    opening = OpeningHours.parse(WEEKLY).next_opening(paris(2026, 1, 5, 22, 0))
    assert opening is not None
    assert opening.tzinfo is UTC
    assert opening == paris(2026, 1, 6, 9, 0)


def test_a_range_starting_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    hours = OpeningHours.parse("sun 02:30-04:00")
    assert hours.next_opening(paris(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert not hours.is_open(utc(2026, 3, 29, 0, 59))
    night = OpeningHours.parse("sun 01:00-03:00")
    # Only one real hour on that night: 02:00 CET is 03:00 CEST.
    assert night.is_open(utc(2026, 3, 29, 0, 59))
    assert not night.is_open(utc(2026, 3, 29, 1, 0))


def test_the_repeated_hour_at_fall_back_is_open_twice() -> None:
    hours = OpeningHours.parse("sun 02:00-02:30")
    assert hours.is_open(utc(2026, 10, 25, 0, 10))  # 02:10 CEST
    assert not hours.is_open(utc(2026, 10, 25, 0, 40))  # 02:40 CEST
    reopening = hours.next_opening(utc(2026, 10, 25, 0, 40))
    assert reopening == utc(2026, 10, 25, 1, 0)  # 02:00 CET, the second time round
    assert reopening is not None
    assert reopening.astimezone(PARIS).utcoffset() == timedelta(hours=1)
    assert hours.is_open(utc(2026, 10, 25, 1, 29))
    assert not hours.is_open(utc(2026, 10, 25, 1, 30))


def test_night_range_over_fall_back_ends_at_the_first_two_o_clock() -> None:
    night = OpeningHours.parse("sat 20:00-02:00")
    assert night.is_open(utc(2026, 10, 24, 23, 59))  # 01:59 CEST
    assert not night.is_open(utc(2026, 10, 25, 0, 0))  # 02:00 CEST
    assert not night.is_open(utc(2026, 10, 25, 1, 0))  # 02:00 CET


def test_next_opening_is_now_when_open_and_none_when_never() -> None:
    hours = OpeningHours.parse(WEEKLY)
    now = paris(2026, 1, 5, 10, 0)
    assert hours.next_opening(now) == now
    assert hours.next_opening(paris(2026, 1, 10, 18, 0)) == paris(2026, 1, 12, 9, 0)
    assert OpeningHours.parse("mon closed").next_opening(now) is None
    special_only = OpeningHours.parse("mon closed", "2027-06-01 10:00-11:00")
    assert special_only.next_opening(now) == paris(2027, 6, 1, 10, 0)


def test_next_opening_skips_closed_holidays() -> None:
    hours = OpeningHours.parse(WEEKLY, "2026-12-25 closed; 2026-12-26 closed")
    assert hours.next_opening(paris(2026, 12, 24, 22, 0)) == paris(2026, 12, 28, 9, 0)


# Words


def test_describe_in_french() -> None:
    hours = OpeningHours.parse(WEEKLY, "2026-12-25 closed; 2026-12-24 09:00-14:30")
    assert hours.describe(with_exceptions=False) == (
        "du lundi au vendredi : 9 h–21 h ; samedi : 10 h–18 h ; dimanche : fermé"
    )
    assert hours.describe().endswith("sauf : le 24/12/2026 : 9 h–14 h 30, fermé le 25/12/2026")
    assert OpeningHours.parse("24/7").describe() == "ouvert 24 h/24, 7 j/7"
    assert OpeningHours.parse("daily 08:00-20:00").describe() == "tous les jours : 8 h–20 h"
    assert OpeningHours.parse("sat-sun 20:00-02:00; mon-fri closed").describe() == (
        "du lundi au vendredi : fermé ; samedi et dimanche : 20 h–2 h le lendemain"
    )
    assert OpeningHours.parse("mon closed").describe() == "toujours fermé"


# Properties


@st.composite
def day_ranges(draw: st.DrawFn) -> DayRanges:
    count = draw(st.integers(0, 3))
    bounds = sorted(draw(st.sets(st.integers(0, MINUTES_PER_DAY), min_size=2 * count, max_size=2 * count)))
    ranges = [TimeRange(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    if ranges and ranges[-1].start > 1 and draw(st.booleans()):
        # Make the last range run past midnight, to a time before its own start.
        ranges[-1] = TimeRange(ranges[-1].start, draw(st.integers(1, ranges[-1].start - 1)))
    return tuple(ranges)


@st.composite
def opening_hours(draw: st.DrawFn) -> OpeningHours:
    weekly = tuple(draw(day_ranges()) for _ in range(7))
    days = draw(st.sets(st.dates(date(2018, 10, 1), date(2027, 12, 31)), max_size=4))
    exceptions = tuple((day, draw(day_ranges())) for day in sorted(days))
    return OpeningHours(weekly, exceptions, draw(st.sampled_from(ZONES)))


instants = st.datetimes(datetime(2018, 10, 1), datetime(2027, 12, 31)).map(lambda d: d.replace(tzinfo=UTC))
# Instants near the Paris transitions, where mistakes hide.
near_transitions = st.sampled_from([SPRING_FORWARD, FALL_BACK]).flatmap(
    lambda day: st.integers(-36 * 3600, 36 * 3600).map(
        lambda seconds: datetime.combine(day, time(1, 0), UTC) + timedelta(seconds=seconds)
    )
)


def wall_clock_oracle(hours: OpeningHours, at: datetime) -> bool:
    """Open when the line's wall clock is inside a range that started today or yesterday."""
    wall = at.astimezone(hours.zone).replace(tzinfo=None)
    for day in (wall.date() - timedelta(days=1), wall.date()):
        midnight = datetime.combine(day, time())
        for r in hours.ranges_on(day):
            end = r.end + (MINUTES_PER_DAY if r.crosses_midnight else 0)
            if midnight + timedelta(minutes=r.start) <= wall < midnight + timedelta(minutes=end):
                return True
    return False


@settings(max_examples=300, deadline=None)
@given(opening_hours(), st.one_of(instants, near_transitions))
def test_open_exactly_when_the_wall_clock_is_inside_a_range(hours: OpeningHours, at: datetime) -> None:
    assert hours.is_open(at) == wall_clock_oracle(hours, at)


@settings(deadline=None)
@given(opening_hours(), st.data())
def test_a_time_inside_a_range_is_open(hours: OpeningHours, data: st.DataObject) -> None:
    day = data.draw(st.dates(date(2018, 10, 1), date(2027, 12, 31)))
    ranges = hours.ranges_on(day)
    assume(ranges)
    r = data.draw(st.sampled_from(ranges))
    offset = data.draw(st.integers(0, r.length - 1))
    wall = datetime.combine(day, time()) + timedelta(minutes=r.start + offset)
    local = wall.replace(tzinfo=hours.zone, fold=data.draw(st.sampled_from([0, 1])))
    # A wall time skipped by a DST change never happens.
    assume(local.astimezone(UTC).astimezone(hours.zone).replace(tzinfo=None) == wall)
    assert hours.is_open(local)


@settings(max_examples=300, deadline=None)
@given(opening_hours(), st.one_of(instants, near_transitions), st.floats(0, 1, exclude_max=True))
def test_next_opening_is_the_first_open_instant(hours: OpeningHours, at: datetime, fraction: float) -> None:
    opening = hours.next_opening(at)
    if opening is None:
        assert not any(hours.weekly)
        assert not hours.is_open(at)
        return
    assert hours.is_open(opening)
    if hours.is_open(at):
        assert opening == at
        return
    assert opening > at
    # Closed all the way until then: just before it, and at a random point in between.
    just_before = opening - timedelta(microseconds=1)
    assert not hours.is_open(just_before)
    # Timedelta products round to the microsecond: keep the point strictly before the opening.
    assert not hours.is_open(min(at + (opening - at) * fraction, just_before))


@given(opening_hours())
def test_text_and_json_forms_round_trip(hours: OpeningHours) -> None:
    again = OpeningHours.parse(hours.weekly_text(), hours.exceptions_text(), timezone=hours.timezone)
    assert again == hours
    assert OpeningHours.from_json(hours.weekly_json(), hours.exceptions_json(), hours.timezone) == hours
