"""A day's opening ranges: minutes after local midnight, a range that may cross midnight, and the error
malformed hours raise."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

DEFAULT_TIMEZONE = "Europe/Paris"
MINUTES_PER_DAY = 24 * 60
ALWAYS = "24/7"

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"(\d{1,2}):(\d{2})")


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
        start = minutes_of(start_text.strip(), text, allow_24=False)
        end = minutes_of(end_text.strip(), text, allow_24=True)
        # "22:00-00:00" means until midnight, not a range that crosses into the next day.
        return cls(start, MINUTES_PER_DAY if end == 0 else end)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def length(self) -> int:
        return self.end - self.start if self.end > self.start else MINUTES_PER_DAY - self.start + self.end

    def __str__(self) -> str:
        return f"{hhmm(self.start)}-{hhmm(self.end)}"


DayRanges = tuple[TimeRange, ...]
FULL_DAY: DayRanges = (TimeRange(0, MINUTES_PER_DAY),)


def minutes_of(text: str, part: str, *, allow_24: bool) -> int:
    match = _TIME.fullmatch(text)
    if match is None:
        raise HoursError(f"{text!r} is not a time like 09:00", part)
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise HoursError(f"{text!r} is not a time of day", part)
    return hours * 60 + minutes


def checked_day(ranges: Iterable[TimeRange], part: str) -> DayRanges:
    ordered = tuple(sorted(ranges))
    for before, after in pairwise(ordered):
        # On its own day a range crossing midnight runs to 24:00.
        if before.crosses_midnight or after.start < before.end:
            raise HoursError(f"ranges {before} and {after} overlap", part)
    return ordered


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
