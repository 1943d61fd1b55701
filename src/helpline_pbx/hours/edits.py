"""An edit of a line's hours as a function of the current ones, so that two people changing different parts
(one adds a holiday, the other moves Saturday) cannot lose each other's change. The CLI and the console
build their edits here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from helpline_pbx.hours.opening import OpeningHours, zone_of
from helpline_pbx.hours.ranges import DayRanges

HoursChange = Callable[[OpeningHours], OpeningHours]


@dataclass(frozen=True)
class HoursEdit:
    weekly: tuple[DayRanges, ...] | None = None
    timezone: str | None = None
    closed: tuple[date, ...] = ()
    special: tuple[tuple[date, DayRanges], ...] = ()
    reopened: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        if self.timezone is not None:
            zone_of(self.timezone)

    @property
    def empty(self) -> bool:
        return (
            self.weekly is None
            and self.timezone is None
            and not (self.closed or self.special or self.reopened)
        )

    def apply(self, current: OpeningHours) -> OpeningHours:
        """Weekly hours and zone first, then the dates reopened, closed and given special hours."""
        if self.weekly is not None:
            current = OpeningHours(self.weekly, current.exceptions, current.timezone)
        if self.timezone is not None:
            current = current.in_zone(self.timezone)
        for day in self.reopened:
            current = current.without_exception(day)
        for day in self.closed:
            current = current.with_exception(day)
        for day, ranges in self.special:
            current = current.with_exception(day, ranges)
        return current

    def change(self) -> HoursChange | None:
        return None if self.empty else self.apply
