"""Opening hours as text: the compact form the CLI takes, and the French words phones and people read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from helpline_pbx.hours.ranges import (
    ALWAYS,
    DAY_KEYS,
    FULL_DAY,
    DayRanges,
    HoursError,
    TimeRange,
    checked_day,
)

_DAY_ALIASES: dict[str, int] = {}
for _index, _names in enumerate(
    (
        ("mon", "monday", "lun", "lundi"),
        ("tue", "tuesday", "mar", "mardi"),
        ("wed", "wednesday", "mer", "mercredi"),
        ("thu", "thursday", "jeu", "jeudi"),
        ("fri", "friday", "ven", "vendredi"),
        ("sat", "saturday", "sam", "samedi"),
        ("sun", "sunday", "dim", "dimanche"),
    )
):
    for _name in _names:
        _DAY_ALIASES[_name] = _index

DAY_NAMES_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

_CLOSED_WORDS = frozenset({"closed", "fermé", "ferme"})
_FULL_DAY_WORDS = frozenset({"24h", "all-day"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# Parsing


def parse_weekly(text: str) -> tuple[DayRanges, ...]:
    """Seven days of ranges from "mon-fri 09:00-21:00; sat 10:00-18:00; sun closed" or "24/7"."""
    if text.strip().lower() == ALWAYS:
        return (FULL_DAY,) * 7
    days: list[DayRanges | None] = [None] * 7
    clauses = [clause.strip() for clause in re.split(r"[;\n]", text) if clause.strip()]
    if not clauses:
        raise HoursError('opening hours are empty (use "24/7" for always open)', text)
    for clause in clauses:
        head, _, spec = clause.partition(" ")
        if not spec.strip():
            raise HoursError('each part needs days and hours, like "mon-fri 09:00-17:00"', clause)
        ranges = _parse_spec(spec, clause)
        for index in _parse_days(head.lower(), clause):
            if days[index] is not None:
                raise HoursError(f"{DAY_KEYS[index]} is given twice", clause)
            days[index] = ranges
    return tuple(ranges or () for ranges in days)


def parse_exceptions(text: str) -> list[tuple[date, DayRanges]]:
    """Dated exceptions from "2026-12-25 closed; 2026-12-24 09:00-14:00"."""
    pairs = []
    for clause in (part.strip() for part in re.split(r"[;\n]", text)):
        if not clause:
            continue
        head, _, spec = clause.partition(" ")
        if not spec.strip():
            raise HoursError(
                'an exception looks like "2026-12-25 closed" or "2026-12-24 09:00-14:00"', clause
            )
        pairs.append((date_of(head, clause), _parse_spec(spec, clause)))
    return pairs


def parse_date(text: str) -> date:
    """A date like 2026-12-25, or HoursError."""
    return date_of(text.strip())


def _parse_spec(spec: str, clause: str) -> DayRanges:
    compact = re.sub(r"\s+", "", spec.lower())
    if compact in _CLOSED_WORDS:
        return ()
    if compact in _FULL_DAY_WORDS:
        return FULL_DAY
    try:
        return checked_day(tuple(TimeRange.parse(item) for item in compact.split(",")), clause)
    except HoursError as exc:
        raise HoursError(exc.reason, clause) from None


def _parse_days(text: str, clause: str) -> list[int]:
    if text == "daily":
        return list(range(7))
    indexes: list[int] = []
    for item in text.split(","):
        first_name, dash, last_name = item.partition("-")
        first = _day(first_name, clause)
        if not dash:
            indexes.append(first)
            continue
        last = _day(last_name, clause)
        # "fri-mon" wraps over the weekend.
        indexes.extend((first + step) % 7 for step in range((last - first) % 7 + 1))
    return indexes


def _day(name: str, clause: str) -> int:
    try:
        return _DAY_ALIASES[name]
    except KeyError:
        raise HoursError(f"unknown day {name!r} (mon, tue, … sun)", clause) from None


def date_of(text: str, clause: str | None = None) -> date:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise HoursError(f"{text!r} is not a date like 2026-12-25", clause or text) from None


# Formatting


def ranges_text(ranges: DayRanges) -> str:
    return ",".join(str(r) for r in ranges) if ranges else "closed"


def runs(weekly: tuple[DayRanges, ...]) -> Iterator[tuple[int, int, DayRanges]]:
    """Consecutive days with the same ranges, as (first, last, ranges)."""
    first = 0
    for index in range(1, 8):
        if index == 7 or weekly[index] != weekly[first]:
            yield first, index - 1, weekly[first]
            first = index


def days_fr(first: int, last: int) -> str:
    if first == 0 and last == 6:
        return "tous les jours"
    if first == last:
        return DAY_NAMES_FR[first]
    if last == first + 1:
        return f"{DAY_NAMES_FR[first]} et {DAY_NAMES_FR[last]}"
    return f"du {DAY_NAMES_FR[first]} au {DAY_NAMES_FR[last]}"


def _time_fr(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if not rest else f"{hours} h {rest:02d}"


def ranges_fr(ranges: DayRanges) -> str:
    if not ranges:
        return "fermé"
    if ranges == FULL_DAY:
        return "24 h/24"
    texts = []
    for r in ranges:
        text = f"{_time_fr(r.start)}–{_time_fr(r.end)}"
        texts.append(f"{text} le lendemain" if r.crosses_midnight else text)
    return ", ".join(texts)
