"""A line's opening hours evaluated in its time zone: is it open, when does it open next.

Pure: no I/O, no clock. Hours are wall-clock times in the line's zone (see the package's doc for DST).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpline_pbx.hours.ranges import (
    ALWAYS,
    DAY_KEYS,
    DEFAULT_TIMEZONE,
    FULL_DAY,
    DayRanges,
    HoursError,
    TimeRange,
    checked_day,
)
from helpline_pbx.hours.text import (
    date_of,
    days_fr,
    parse_exceptions,
    parse_weekly,
    ranges_fr,
    ranges_text,
    runs,
)
from helpline_pbx.timestamps import require_aware


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
        weekly = tuple(checked_day(ranges, DAY_KEYS[index]) for index, ranges in enumerate(self.weekly))
        by_date: dict[date, DayRanges] = {}
        for day, ranges in self.exceptions:
            if day in by_date:
                raise HoursError("date given twice", day.isoformat())
            by_date[day] = checked_day(ranges, day.isoformat())
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
            (date_of(text), tuple(TimeRange.parse(item) for item in ranges))
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
        for first, last, ranges in runs(self.weekly):
            days = DAY_KEYS[first] if first == last else f"{DAY_KEYS[first]}-{DAY_KEYS[last]}"
            parts.append(f"{days} {ranges_text(ranges)}")
        return "; ".join(parts)

    def exceptions_text(self) -> str:
        return "; ".join(f"{day.isoformat()} {ranges_text(ranges)}" for day, ranges in self.exceptions)

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
            for first, last, ranges in runs(self.weekly):
                parts.append(f"{days_fr(first, last)} : {ranges_fr(ranges)}")
            text = " ; ".join(parts)
        if with_exceptions and self.exceptions:
            notes = []
            for day, ranges in self.exceptions:
                when = day.strftime("%d/%m/%Y")
                notes.append(f"fermé le {when}" if not ranges else f"le {when} : {ranges_fr(ranges)}")
            text += " ; sauf : " + ", ".join(notes)
        return text


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError("unknown time zone (use an IANA name like Europe/Paris)", name) from None


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
