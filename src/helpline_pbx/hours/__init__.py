"""Opening hours of a listening line: weekly ranges, dated exceptions, evaluated in the line's time zone.

Pure: no I/O, no clock. The compact text form is what the CLI takes:

    "mon-fri 09:00-21:00; sat 10:00-18:00; sun closed"     weekly (days not named are closed)
    "24/7"                                                    always open
    "2026-12-25 closed; 2026-12-24 09:00-14:00"               exceptions, one date each

Hours are wall-clock times in the line's zone, so a line open 09:00-21:00 opens at 09:00 local time on both
sides of a DST change. A range may cross midnight ("20:00-02:00"): it belongs to the day it starts, so an
exception for Saturday does not cut short Friday's night range.
"""

from helpline_pbx.hours.opening import OpeningHours, zone_of
from helpline_pbx.hours.ranges import (
    ALWAYS,
    DAY_KEYS,
    DEFAULT_TIMEZONE,
    FULL_DAY,
    MINUTES_PER_DAY,
    DayRanges,
    HoursError,
    TimeRange,
)
from helpline_pbx.hours.text import parse_date, parse_exceptions, parse_weekly

__all__ = [
    "ALWAYS",
    "DAY_KEYS",
    "DEFAULT_TIMEZONE",
    "FULL_DAY",
    "MINUTES_PER_DAY",
    "DayRanges",
    "HoursError",
    "OpeningHours",
    "TimeRange",
    "parse_date",
    "parse_exceptions",
    "parse_weekly",
    "zone_of",
]
