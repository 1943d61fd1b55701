"""The estimated wait and what a waiting caller is told: honest figures, or none."""

import math

from hypothesis import given
from hypothesis import strategies as st

from helpline_pbx.core.estimate import (
    LONGEST_ANNOUNCED,
    Announcement,
    announcement,
    estimated_wait,
    heard,
    minutes_of,
    overloaded,
)

positions = st.integers(min_value=1, max_value=200)
listeners = st.integers(min_value=1, max_value=50)
talks = st.lists(st.floats(min_value=0, max_value=4 * 3600, allow_nan=False), min_size=3, max_size=30)
estimates = st.none() | st.floats(min_value=0, max_value=10 * 3600, allow_nan=False)


def test_the_estimate_is_position_times_handling_time_over_listeners() -> None:
    """Third in line, two listeners, calls of 10 min and a 2 min rest: 3 x 12 min / 2 = 18 min."""
    assert estimated_wait(3, 2, [500.0, 600.0, 700.0], rest_seconds=120) == 3 * 720 / 2


def test_no_estimate_without_a_listener_on_duty() -> None:
    """Nobody on duty: any figure would be invented."""
    assert estimated_wait(1, 0, [600.0] * 10) is None


def test_no_estimate_from_too_few_calls() -> None:
    """Two recent calls are not enough to say anything; three are."""
    assert estimated_wait(1, 1, [600.0, 600.0]) is None
    assert estimated_wait(1, 1, [600.0, 600.0, 600.0]) == 600.0


def test_broken_samples_are_left_out() -> None:
    """Negative or non-finite talk times never count as calls (and never poison the mean)."""
    assert estimated_wait(1, 1, [600.0, 600.0, math.nan, -5.0, math.inf]) is None
    assert estimated_wait(1, 1, [600.0, 600.0, 600.0, math.nan]) == 600.0


@given(positions, listeners, talks, st.floats(min_value=0, max_value=3600))
def test_the_estimate_grows_with_the_position_and_shrinks_with_listeners(
    position: int, on_duty: int, samples: list[float], rest: float
) -> None:
    """One place further back never waits less; one more listener on duty never makes the wait longer."""
    here = estimated_wait(position, on_duty, samples, rest_seconds=rest)
    assert here is not None
    assert here >= 0
    behind = estimated_wait(position + 1, on_duty, samples, rest_seconds=rest)
    more_help = estimated_wait(position, on_duty + 1, samples, rest_seconds=rest)
    assert behind is not None
    assert more_help is not None
    assert more_help <= here <= behind


def test_minutes_are_rounded_and_small_waits_are_less_than_a_minute() -> None:
    """59 s is "less than a minute"; 89 s about one minute; 90 s about two."""
    assert [minutes_of(s) for s in (0, 59, 60, 89, 90, 149, 150)] == [0, 0, 1, 1, 2, 2, 3]


def test_nothing_is_said_to_a_caller_being_offered() -> None:
    """A phone rings for them: their place means nothing any more."""
    assert announcement(1, 30.0, offered=True) is None


def test_nothing_is_said_without_a_place() -> None:
    """A call that is not queued (connected or gone) has no place to announce."""
    assert announcement(None, 30.0) is None
    assert announcement(0, 30.0) is None


def test_the_place_alone_when_there_is_no_estimate() -> None:
    """No estimate: the caller still hears their place, without a figure."""
    assert announcement(4, None) == Announcement(4, None)


def test_a_very_long_estimate_is_not_given_as_a_figure() -> None:
    """Beyond an hour the figure would be a guess: the place only."""
    assert announcement(30, LONGEST_ANNOUNCED + 1) == Announcement(30, None)
    assert announcement(30, LONGEST_ANNOUNCED) == Announcement(30, 60)


def test_a_rise_with_the_same_place_is_not_announced() -> None:
    """Heard "3rd, about 4 min"; now "3rd, about 6 min" is noise: the place is said, not the figure."""
    last = Announcement(3, 4)
    assert announcement(3, 6 * 60, last=last) == Announcement(3, None)
    assert announcement(2, 3 * 60, last=last) == Announcement(2, 3)


def test_a_rise_after_losing_places_is_announced() -> None:
    """An urgent caller went ahead: the longer wait is news, and it is said."""
    assert announcement(4, 6 * 60, last=Announcement(3, 4)) == Announcement(4, 6)


def test_what_was_heard_keeps_the_last_figure_when_none_was_said() -> None:
    """A left-out figure does not erase the one the caller has in mind."""
    assert heard(Announcement(3, 4), Announcement(2, None)) == Announcement(2, 4)
    assert heard(Announcement(3, 4), Announcement(2, 3)) == Announcement(2, 3)
    assert heard(None, Announcement(2, None)) == Announcement(2, None)


@given(
    st.lists(st.tuples(st.integers(min_value=1, max_value=20), estimates), min_size=1, max_size=30),
)
def test_a_caller_whose_place_never_worsens_never_hears_a_longer_wait(
    history: list[tuple[int, float | None]],
) -> None:
    """Whatever the estimates do, while the place only improves the figures heard never go up."""
    history = sorted(history, key=lambda step: -step[0])  # places only improve
    last: Announcement | None = None
    figures: list[int] = []
    for position, estimate in history:
        said = announcement(position, estimate, last=last)
        assert said is not None
        assert said.position == position
        if said.minutes is not None:
            figures.append(said.minutes)
        last = heard(last, said)
    assert figures == sorted(figures, reverse=True)


@given(positions, estimates, st.booleans())
def test_an_announcement_is_a_place_and_a_sane_figure(
    position: int, estimate: float | None, offered: bool
) -> None:
    """Whatever comes in: nothing while offered, else the place as given and a figure of 0 to 60 minutes."""
    said = announcement(position, estimate, offered=offered)
    if offered:
        assert said is None
        return
    assert said is not None
    assert said.position == position
    assert said.minutes is None or 0 <= said.minutes <= 60
    assert (said.minutes is None) == (estimate is None or estimate > LONGEST_ANNOUNCED)


def test_no_limit_is_never_overloaded() -> None:
    """A line without max_wait never plays the overloaded message."""
    assert not overloaded(None, 10 * 3600, 1)
    assert not overloaded(None, None, 0)


def test_nobody_on_duty_is_overloaded_whatever_the_limit() -> None:
    """With nobody to answer, any limit is exceeded."""
    assert overloaded(7200, None, 0)


def test_without_an_estimate_only_a_zero_limit_is_exceeded() -> None:
    """A waiting caller waits more than 0 s; any other limit cannot be judged without an estimate."""
    assert overloaded(0, None, 2)
    assert not overloaded(60, None, 2)


@given(st.integers(min_value=0, max_value=7200), st.floats(min_value=0, max_value=7200), listeners)
def test_overloaded_means_the_estimate_exceeds_the_limit(limit: int, estimate: float, on_duty: int) -> None:
    """With listeners on duty and an estimate, the line is overloaded exactly when the estimate is over."""
    assert overloaded(limit, estimate, on_duty) == (estimate > limit)
