"""Each waiting caller's own phase in the keep-alive's round: spread, once a round, busy never forgotten."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpline_pbx.switchboard.phases import Round, fraction_of, phase_of

CALLS = [f"helpline-{n:012x}" for n in range(1000)]


def test_a_thousand_callers_spread_over_the_round() -> None:
    """30 slots (a 15 s round of half-second ticks): no tick carries much more than its share of 1000."""
    per_slot = Counter(phase_of(call, 30) for call in CALLS)
    assert set(per_slot) == set(range(30))
    assert max(per_slot.values()) <= 2 * 1000 / 30


def test_the_phase_depends_on_the_call_alone() -> None:
    assert [phase_of(c, 30) for c in CALLS[:50]] == [phase_of(c, 30) for c in CALLS[:50]]
    assert all(0 <= fraction_of(c) < 1 for c in CALLS)
    with pytest.raises(ValueError, match="at least one slot"):
        phase_of("x", 0)


def test_every_caller_is_due_exactly_once_a_round() -> None:
    round_ = Round(30)
    seen: Counter[str] = Counter()
    for _ in range(30 * 3):
        seen.update(round_.due(CALLS))
    assert seen == Counter({call: 3 for call in CALLS})


def test_a_busy_caller_is_served_as_soon_as_free_and_never_more_than_a_round_late() -> None:
    round_ = Round(10)
    key = "c-busy"
    busy_until = phase_of(key, 10) + 3
    turns = []
    for _ in range(20):
        tick = round_.tick
        if round_.due([key], busy=lambda _k, now=tick: now < busy_until):
            turns.append(tick)
    # Missed its turn, served three ticks later when free, then at its turn in the next round.
    assert turns == [busy_until, phase_of(key, 10) + 10]

    stuck = Round(10)
    stuck_turns = [t for t in range(40) if stuck.due([key], busy=lambda _k: True)]
    # Busy for ever (a prompt whose end was never seen): still served, a round after each missed turn (that
    # tick is its next turn too): every other round, well within the grace of four.
    assert stuck_turns == [phase_of(key, 10) + 10, phase_of(key, 10) + 30]


@given(st.lists(st.sampled_from(CALLS[:40]), min_size=1, max_size=40, unique=True), st.integers(1, 40))
def test_callers_who_leave_are_forgotten_and_others_still_served(present: list[str], slots: int) -> None:
    round_ = Round(slots)
    for _ in range(slots):
        round_.due(CALLS[:40], busy=lambda _k: True)
    served: Counter[str] = Counter()
    for _ in range(2 * slots):
        served.update(round_.due(present))
    assert set(served) == set(present)
    assert all(count <= 3 for count in served.values())
