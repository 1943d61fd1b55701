"""What a call on a line needs, from the line and the caller's menu choice (pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from helpline_pbx.core.routing import PROFESSIONAL, VOLUNTEER, Profile, rank
from helpline_pbx.hours import OpeningHours
from helpline_pbx.lines.arrivals import line_verdict, requirements_of
from helpline_pbx.lines.snapshots import LineMessages, LineSnapshot

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


def test_the_menu_choice_adds_a_wanted_skill_or_makes_the_call_urgent() -> None:
    legal = requirements_of(LINE, "2")
    assert legal.skills == {"violences"}
    assert legal.wanted == {"juridique"}
    plain = Profile(role=VOLUNTEER, skills=frozenset({"violences"}))
    lawyer = Profile(role=VOLUNTEER, skills=frozenset({"violences", "juridique"}))
    # While someone on duty holds the chosen skill, only they may take the call; else anyone on the line.
    assert rank(legal, plain, 0) is None
    assert rank(legal, lawyer, 0) == 0
    assert rank(legal, plain, 0, wanted_held=False) == 0
    assert requirements_of(LINE, "7").wanted == frozenset()  # no such kind: no extra need
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


def test_a_practice_line_reaches_trainees_only_and_a_chosen_one_by_code() -> None:
    practice = dataclasses.replace(LINE, practice=True, support=(), professionals_after=None)
    needs = requirements_of(practice, "123", {"123": "l-trainee"}.get)
    assert needs.practice
    assert needs.only_listener == "l-trainee"
    assert requirements_of(practice, "999", {"123": "l-trainee"}.get).only_listener is None
    trainee = Profile(role=VOLUNTEER, skills=frozenset({"violences"}), trainee=True)
    trained = Profile(role=VOLUNTEER, skills=frozenset({"violences"}))
    assert rank(needs, trainee, 0) == 0
    assert rank(needs, trained, 0) is None
    # A real call never reaches a trainee, unless the line allows it (under supervision).
    assert rank(requirements_of(LINE), trainee, 0) is None
    allowed = requirements_of(dataclasses.replace(LINE, trainees_allowed=True))
    assert rank(allowed, trainee, 0) == 0


def test_the_line_sets_the_rest_after_its_calls() -> None:
    assert requirements_of(LINE).rest_after_call is None
    assert requirements_of(dataclasses.replace(LINE, rest_after_call=120)).rest_after_call == 120.0
