"""What a call on a line needs, from the line and the caller's menu choice (pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from helpline_pbx.core.routing import PROFESSIONAL, VOLUNTEER, Profile, rank
from helpline_pbx.hours import OpeningHours
from helpline_pbx.roster.lines import LineMessages, LineSnapshot
from helpline_pbx.switchboard.arrivals import line_verdict, requirements_of

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday, noon
LINE = LineSnapshot(
    id="ln-abcdefgh",
    name="adultes",
    label="Écoute",
    numbers=("0800123456",),
    audience="",
    support=("ecoute", "juridique"),
    language="fr",
    skills=("violences",),
    hours=OpeningHours.parse("mon-fri 09:00-18:00"),
    messages=LineMessages(),
    ring_timeout=25,
    active=True,
    created_at=NOW,
    updated_at=NOW,
    professionals_after=90,
)


def test_the_line_sets_skills_language_ring_timeout_and_who_is_tried_first() -> None:
    needs = requirements_of(LINE)
    assert needs.skills == {"violences"}
    assert needs.language == "fr"
    assert needs.ring_timeout == 25
    pro = Profile(role=PROFESSIONAL, skills=frozenset({"violences"}))
    vol = Profile(role=VOLUNTEER, skills=frozenset({"violences"}))
    assert rank(needs, vol, 0) == 0
    assert rank(needs, pro, 10) is None
    assert rank(needs, pro, 90) == 1


def test_the_menu_choice_adds_a_skill_or_makes_the_call_urgent() -> None:
    assert requirements_of(LINE, "2").skills == {"violences", "juridique"}
    assert requirements_of(LINE, "7").skills == {"violences"}  # no such kind: no extra need
    urgent = requirements_of(LINE, "9")
    assert urgent.urgent
    assert urgent.priority > requirements_of(LINE).priority


def test_numbers_hours_and_activity_decide_who_is_turned_away() -> None:
    lines = {"0800123456": LINE}
    assert line_verdict({}, "0800999999", NOW) is None  # no lines set up: every number is served
    assert line_verdict(lines, "0800999999", NOW) == "unknown"
    assert line_verdict(lines, "0800123456", NOW) == LINE
    assert line_verdict(lines, "0800123456", NOW + timedelta(hours=8)) == "closed"
    assert (
        line_verdict({"0800123456": dataclasses.replace(LINE, active=False)}, "0800123456", NOW) == "closed"
    )
