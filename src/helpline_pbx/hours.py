"""Opening hours of a listening line: weekly ranges, dated exceptions, evaluated in the line's time zone.

Pure: no I/O, no clock. The compact text form is what the CLI takes:

    "mon-fri 09:00-21:00; sat 10:00-18:00; sun closed"     weekly (days not named are closed)
    "24/7"                                                    always open
    "2026-12-25 closed; 2026-12-24 09:00-14:00"               exceptions, one date each

Hours are wall-clock times in the line's zone, so a line open 09:00-21:00 opens at 09:00 local time on both
sides of a DST change. A range may cross midnight ("20:00-02:00"): it belongs to the day it starts, so an
exception for Saturday does not cut short Friday's night range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpline_pbx.timestamps import require_aware

DEFAULT_TIMEZONE = "Europe/Paris"
MINUTES_PER_DAY = 24 * 60
ALWAYS = "24/7"

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class HoursError(ValueError):
    """Malformed opening hours; `part` is the piece of input that is wrong."""

    def __init__(self, reason: str, part: str) -> None:
        super().__init__(f"{reason} in {part!r}")
        self.reason = reason
        self.part = part


@dataclass(frozen=True, slots=True, order=True)
class TimeRange:
    """[start, end) in minutes after local midnight; end <= start means it ends the next day."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_DAY or not 0 < self.end <= MINUTES_PER_DAY:
            raise HoursError("time out of range", str(self))
        if self.start == self.end:
            raise HoursError("a range needs a start and an end that differ", str(self))

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        start_text, dash, end_text = text.strip().partition("-")
        if not dash:
            raise HoursError("a range looks like 09:00-17:00", text)
        start = _minutes(start_text.strip(), text, allow_24=False)
        end = _minutes(end_text.strip(), text, allow_24=True)
        # "22:00-00:00" means until midnight, not a range that crosses into the next day.
        return cls(start, MINUTES_PER_DAY if end == 0 else end)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def length(self) -> int:
        return self.end - self.start if self.end > self.start else MINUTES_PER_DAY - self.start + self.end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


DayRanges = tuple[TimeRange, ...]
FULL_DAY: DayRanges = (TimeRange(0, MINUTES_PER_DAY),)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Weekly ranges (Monday first), dated exceptions (no range: closed that day) and the zone they are in."""

    weekly: tuple[DayRanges, ...] = (FULL_DAY,) * 7
    exceptions: tuple[tuple[date, DayRanges], ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    _by_date: dict[date, DayRanges] = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise HoursError("weekly hours need seven days", repr(self.weekly))
        weekly = tuple(_checked_day(ranges, DAY_KEYS[index]) for index, ranges in enumerate(self.weekly))
        by_date: dict[date, DayRanges] = {}
        for day, ranges in self.exceptions:
            if day in by_date:
                raise HoursError("date given twice", day.isoformat())
            by_date[day] = _checked_day(ranges, day.isoformat())
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "exceptions", tuple(sorted(by_date.items())))
        object.__setattr__(self, "_by_date", by_date)
        object.__setattr__(self, "_zone", zone_of(self.timezone))

    # Building

    @classmethod
    def parse(
        cls, weekly: str, exceptions: str | Iterable[str] = (), *, timezone: str = DEFAULT_TIMEZONE
    ) -> OpeningHours:
        """From the compact text form; exceptions as one text or several ("2026-12-25 closed")."""
        texts = [exceptions] if isinstance(exceptions, str) else list(exceptions)
        pairs = [pair for text in texts for pair in parse_exceptions(text)]
        return cls(parse_weekly(weekly), tuple(pairs), timezone)

    @classmethod
    def from_json(
        cls,
        weekly: Mapping[str, Iterable[str]],
        exceptions: Mapping[str, Iterable[str]] | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> OpeningHours:
        """The inverse of weekly_json() and exceptions_json(), as stored in the database."""
        unknown = set(weekly) - set(DAY_KEYS)
        if unknown:
            raise HoursError("unknown day", ", ".join(sorted(unknown)))
        days = tuple(tuple(TimeRange.parse(text) for text in weekly.get(key, ())) for key in DAY_KEYS)
        dated = tuple(
            (_date(text), tuple(TimeRange.parse(item) for item in ranges))
            for text, ranges in (exceptions or {}).items()
        )
        return cls(days, dated, timezone)

    def with_exception(self, day: date, ranges: Iterable[TimeRange] = ()) -> OpeningHours:
        """These hours with `day` closed (no ranges) or open at special hours, replacing any exception."""
        kept = tuple(pair for pair in self.exceptions if pair[0] != day)
        return OpeningHours(self.weekly, (*kept, (day, tuple(ranges))), self.timezone)

    def without_exception(self, day: date) -> OpeningHours:
        """These hours with `day` back to the weekly ones."""
        return OpeningHours(
            self.weekly, tuple(pair for pair in self.exceptions if pair[0] != day), self.timezone
        )

    def in_zone(self, timezone: str) -> OpeningHours:
        return OpeningHours(self.weekly, self.exceptions, timezone)

    # Text and JSON forms

    def weekly_text(self) -> str:
        if self.is_always_open_weekly():
            return ALWAYS
        parts = []
        for first, last, ranges in _runs(self.weekly):
            days = DAY_KEYS[first] if first == last else f"{DAY_KEYS[first]}-{DAY_KEYS[last]}"
            parts.append(f"{days} {_ranges_text(ranges)}")
        return "; ".join(parts)

    def exceptions_text(self) -> str:
        return "; ".join(f"{day.isoformat()} {_ranges_text(ranges)}" for day, ranges in self.exceptions)

    def weekly_json(self) -> dict[str, list[str]]:
        return {key: [str(r) for r in ranges] for key, ranges in zip(DAY_KEYS, self.weekly, strict=True)}

    def exceptions_json(self) -> dict[str, list[str]]:
        return {day.isoformat(): [str(r) for r in ranges] for day, ranges in self.exceptions}

    def is_always_open_weekly(self) -> bool:
        return all(ranges == FULL_DAY for ranges in self.weekly)

    # Evaluation

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def ranges_on(self, day: date) -> DayRanges:
        """The ranges that start on this local date: its exception if it has one, else its weekday's."""
        return self._by_date.get(day, self.weekly[day.weekday()])

    def is_open(self, at: datetime) -> bool:
        local = _aware(at).astimezone(self._zone)
        minute = local.hour * 60 + local.minute
        today = local.date()
        for r in self.ranges_on(today):
            if r.start <= minute and (r.crosses_midnight or minute < r.end):
                return True
        return any(r.crosses_midnight and minute < r.end for r in self.ranges_on(today - timedelta(days=1)))

    def next_opening(self, at: datetime) -> datetime | None:
        """`at` when open, else the first later instant at which the line is open; None if it never opens.

        In UTC: a local time in the repeated hour of a DST change (fold=1) compares unequal to every
        datetime of another zone, so local results would be a trap. Show it with .astimezone(self.zone).
        """
        at = _aware(at)
        if self.is_open(at):
            return at.astimezone(UTC)
        first_day = at.astimezone(self._zone).date() - timedelta(days=1)
        last_exception = self.exceptions[-1][0] if self.exceptions else first_day
        # Two weeks past the last exception: each weekday comes twice, and at most once on a DST day.
        last_day = max(first_day, last_exception) + timedelta(days=16)
        best: datetime | None = None
        day = first_day
        while day <= last_day:
            for candidate in self._openings_on(day):
                if candidate > at and (best is None or candidate < best) and self.is_open(candidate):
                    best = candidate
            # Candidates of one day all come before those two days later: one more day settles it.
            if best is not None and self._found_before(best, day):
                return best
            day += timedelta(days=1)
        return best

    def _found_before(self, best: datetime, day: date) -> bool:
        return best < datetime.combine(day, time(), self._zone).astimezone(UTC)

    def _openings_on(self, day: date) -> Iterator[datetime]:
        """Every instant at which the line may go from closed to open during this local date.

        The wall clock reaches a range's start (once, or twice when the clock goes back) or jumps over
        part of a range at a DST transition; both kinds are tried and is_open() decides.
        """
        for r in self.ranges_on(day):
            wall = datetime.combine(day, time(r.start // 60, r.start % 60), self._zone)
            yield wall.astimezone(UTC)
            yield wall.replace(fold=1).astimezone(UTC)
        yield from _transitions(self._zone, day)

    # Words

    def describe(self, *, with_exceptions: bool = True) -> str:
        """Short French text: "du lundi au vendredi : 9 h–21 h ; samedi : 10 h–18 h ; dimanche : fermé"."""
        if self.is_always_open_weekly():
            text = "ouvert 24 h/24, 7 j/7"
        elif not any(self.weekly):
            text = "toujours fermé"
        else:
            parts = []
            for first, last, ranges in _runs(self.weekly):
                parts.append(f"{_days_fr(first, last)} : {_ranges_fr(ranges)}")
            text = " ; ".join(parts)
        if with_exceptions and self.exceptions:
            notes = []
            for day, ranges in self.exceptions:
                when = day.strftime("%d/%m/%Y")
                notes.append(f"fermé le {when}" if not ranges else f"le {when} : {_ranges_fr(ranges)}")
            text += " ; sauf : " + ", ".join(notes)
        return text


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
        pairs.append((_date(head, clause), _parse_spec(spec, clause)))
    return pairs


def parse_date(text: str) -> date:
    """A date like 2026-12-25, or HoursError."""
    return _date(text.strip())


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError("unknown time zone (use an IANA name like Europe/Paris)", name) from None


def _parse_spec(spec: str, clause: str) -> DayRanges:
    compact = re.sub(r"\s+", "", spec.lower())
    if compact in _CLOSED_WORDS:
        return ()
    if compact in _FULL_DAY_WORDS:
        return FULL_DAY
    try:
        return _checked_day(tuple(TimeRange.parse(item) for item in compact.split(",")), clause)
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


def _date(text: str, clause: str | None = None) -> date:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise HoursError(f"{text!r} is not a date like 2026-12-25", clause or text) from None


def _minutes(text: str, part: str, *, allow_24: bool) -> int:
    match = _TIME.fullmatch(text)
    if match is None:
        raise HoursError(f"{text!r} is not a time like 09:00", part)
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise HoursError(f"{text!r} is not a time of day", part)
    return hours * 60 + minutes


def _checked_day(ranges: Iterable[TimeRange], part: str) -> DayRanges:
    ordered = tuple(sorted(ranges))
    for before, after in pairwise(ordered):
        # On its own day a range crossing midnight runs to 24:00.
        if before.crosses_midnight or after.start < before.end:
            raise HoursError(f"ranges {before} and {after} overlap", part)
    return ordered


def _aware(at: datetime) -> datetime:
    return require_aware(at, "opening hours")


def _transitions(zone: ZoneInfo, day: date) -> Iterator[datetime]:
    """UTC instants during this local date at which the zone's offset changes."""
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    hour = start
    while hour < end:
        after = min(hour + timedelta(hours=1), end)
        if _offset(zone, hour) != _offset(zone, after):
            yield _transition_between(zone, hour, after)
        hour = after


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta | None:
    # ZoneInfo.utcoffset() reads its argument as a wall time: go through astimezone() for an instant.
    return instant.astimezone(zone).utcoffset()


def _transition_between(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first whole second in (low, high] with high's offset; tz database transitions fall on seconds."""
    offset = _offset(zone, high)
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == offset:
            high_s = middle
        else:
            low_s = middle
    return datetime.fromtimestamp(high_s, UTC)


# Formatting


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _ranges_text(ranges: DayRanges) -> str:
    return ",".join(str(r) for r in ranges) if ranges else "closed"


def _runs(weekly: tuple[DayRanges, ...]) -> Iterator[tuple[int, int, DayRanges]]:
    """Consecutive days with the same ranges, as (first, last, ranges)."""
    first = 0
    for index in range(1, 8):
        if index == 7 or weekly[index] != weekly[first]:
            yield first, index - 1, weekly[first]
            first = index


def _days_fr(first: int, last: int) -> str:
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


def _ranges_fr(ranges: DayRanges) -> str:
    if not ranges:
        return "fermé"
    if ranges == FULL_DAY:
        return "24 h/24"
    texts = []
    for r in ranges:
        text = f"{_time_fr(r.start)}–{_time_fr(r.end)}"
        texts.append(f"{text} le lendemain" if r.crosses_midnight else text)
    return ", ".join(texts)
