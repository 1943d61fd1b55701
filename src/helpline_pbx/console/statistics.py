"""The console's statistics, pure: call records and daily aggregates in, figures out, each with its
definition.

No I/O, no clock (instants are given): statistics_queries.py reads the roster and calls `compute`.
Nothing here is about callers: a call is its line, its times, its outcome and the listener who answered.

Records are kept for the retention period only; the purge folds older ones into daily aggregates
(`aggregate`, stored in daily_stats). A figure adds both: a call is in exactly one of them, so a period that
straddles the purge gives the same counts before and after it. What an aggregate cannot give back exactly
(a wait's own value, a day in another zone) is said in the figure's definition or in `Statistics.notes`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from helpline_pbx.hours import DEFAULT_TIMEZONE, OpeningHours, zone_of

if TYPE_CHECKING:
    from helpline_pbx.lines.snapshots import LineSnapshot

SERVICE_LEVEL_SECONDS = 30
SHORT_ABANDON_SECONDS = 5
# Upper bounds (inclusive, seconds) of the answered waits' histogram kept in daily_stats; one more count
# follows for longer waits. Changing them would misread stored histograms: add buckets, never move them.
WAIT_BUCKETS: tuple[int, ...] = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
REST_STATES = frozenset({"resting", "awaiting_debrief"})
# On duty: taking calls or between them. Paused listeners are not offered calls, so they staff nothing.
ON_DUTY_STATES = frozenset({"available", "ringing", "on_call", "resting", "awaiting_debrief"})
# The record of a call and the listener's rest after it are stamped by the same decision but not at the
# same instant: a rest that begins this soon before the call's end still follows it.
REST_SLACK = timedelta(seconds=2)
REMOVED_LISTENER = "(listener removed)"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Interval = tuple[datetime, datetime]
_N = TypeVar("_N", int, float)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Service level: answered within this many seconds; short abandon: hung up within this many."""

    service_level: int = SERVICE_LEVEL_SECONDS
    short_abandon: int = SHORT_ABANDON_SECONDS


@dataclass(frozen=True, slots=True)
class LineRules:
    """What the figures need of a line: the zone its days are counted in and its thresholds."""

    timezone: str = DEFAULT_TIMEZONE
    thresholds: Thresholds = Thresholds()

    @classmethod
    def of_line(cls, line: LineSnapshot, defaults: Thresholds = Thresholds()) -> LineRules:
        return cls(
            line.timezone,
            Thresholds(
                defaults.service_level if line.service_level is None else line.service_level,
                defaults.short_abandon if line.short_abandon is None else line.short_abandon,
            ),
        )


@dataclass(frozen=True, slots=True)
class Period:
    """From `start` to `end`, both days included, local days in `timezone`."""

    start: date
    end: date
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a period ends on or after its start ({self.start} to {self.end})")
        zone_of(self.timezone)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self) -> Interval:
        """The UTC instants of the first day's local midnight and of the midnight after the last day."""
        return local_midnight(self.start, self.timezone), local_midnight(
            self.end + timedelta(days=1), self.timezone
        )

    def local(self, at: datetime) -> datetime:
        return at.astimezone(zone_of(self.timezone))


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone_of(timezone)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the statistics read of one call record; rest_seconds comes from the listener audit."""

    line: str
    queued_at: datetime
    outcome: str
    wait_seconds: float
    talk_seconds: float
    listener_id: str | None = None
    practice: bool = False
    rest_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class DayAggregate:
    """One daily_stats row: the purged calls of a line's local day (None: not counted before rev. 0011)."""

    day: date
    line: str
    practice: bool
    timezone: str
    calls: int
    served: int
    abandoned: int
    fallback: int
    alternatives: int
    talk_seconds_total: float
    wait_seconds_total: float = 0.0
    wait_seconds_max: float = 0.0
    short_abandons: int | None = None
    answered_in_service_level: int | None = None
    service_level_seconds: int | None = None
    short_abandon_seconds: int | None = None
    answered_wait_seconds_total: float | None = None
    rest_seconds_total: float | None = None
    wait_histogram: tuple[int, ...] | None = None
    hourly: tuple[int, ...] | None = None
    # Callers turned away while the line was closed (None: aggregated before they were counted).
    closed: int | None = None


@dataclass(frozen=True, slots=True)
class TurnedAwayFacts:
    """A caller who reached a closed or inactive line."""

    line: str
    at: datetime
    practice: bool = False


@dataclass(frozen=True, slots=True)
class StateChange:
    """One listener_events row: from `at`, the listener is in `state`."""

    listener_id: str
    at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    value: float | int | None
    unit: str
    definition: str


@dataclass(frozen=True, slots=True)
class DayRow:
    day: date
    offered: int
    answered: int
    abandoned: int


@dataclass(frozen=True, slots=True)
class ListenerLoad:
    pseudonym: str
    answered: int
    hours_on_duty: float


@dataclass(frozen=True, slots=True)
class Statistics:
    period: Period
    line: str | None
    practice: bool
    summary: tuple[Figure, ...]
    coverage: tuple[Figure, ...]
    daily: tuple[DayRow, ...]
    # Seven rows (Monday first) of 24 counts (local hours), calls by arrival.
    heat_map: tuple[tuple[int, ...], ...]
    load: tuple[ListenerLoad, ...]
    # What the page should say about the figures' limits for this period (purged days, other zones...).
    notes: tuple[str, ...]
    definitions: Mapping[str, str] = field(default_factory=dict)

    def figure(self, key: str) -> Figure:
        for item in (*self.summary, *self.coverage):
            if item.key == key:
                return item
        raise KeyError(key)


# -- one call, judged ------------------------------------------------------------------------------------


class RecordLike(Protocol):
    """What the statistics read of a call record (the table's row, or a query's)."""

    @property
    def line(self) -> str: ...

    @property
    def queued_at(self) -> datetime: ...

    @property
    def ended_at(self) -> datetime: ...

    @property
    def outcome(self) -> str: ...

    @property
    def wait_seconds(self) -> float: ...

    @property
    def talk_seconds(self) -> float: ...

    @property
    def listener_id(self) -> str | None: ...

    @property
    def practice(self) -> bool: ...


def facts_of(record: RecordLike, changes: Mapping[str, Sequence[StateChange]], now: datetime) -> CallFacts:
    """A record as the statistics judge it, with the rest its listener took after it (from their audit)."""
    answered = record.outcome == "served" and record.listener_id is not None
    return CallFacts(
        line=record.line,
        queued_at=record.queued_at,
        outcome=record.outcome,
        wait_seconds=record.wait_seconds,
        talk_seconds=record.talk_seconds,
        listener_id=record.listener_id,
        practice=record.practice,
        rest_seconds=rest_after(changes.get(record.listener_id or "", []), record.ended_at, now)
        if answered
        else 0.0,
    )


def is_short_abandon(call: CallFacts, thresholds: Thresholds) -> bool:
    return call.outcome == "abandoned" and call.wait_seconds <= thresholds.short_abandon


def answered_within(call: CallFacts, thresholds: Thresholds) -> bool:
    return call.outcome == "served" and call.wait_seconds <= thresholds.service_level


def bucket_of(wait_seconds: float) -> int:
    """The histogram bucket of a wait: the first bound it does not exceed, else the overflow."""
    for index, bound in enumerate(WAIT_BUCKETS):
        if wait_seconds <= bound:
            return index
    return len(WAIT_BUCKETS)


def rest_after(changes: Sequence[StateChange], ended_at: datetime, until: datetime) -> float:
    """Seconds of rest the listener took right after a call that ended at `ended_at`.

    The audit does not name the call a rest follows (rests carry no call id), so this reads time: if the
    listener's first state change from just before the call's end is a rest, the rest lasts until their
    next state that is not one (resting then awaiting a debrief is one rest), at the latest `until`.
    `changes` are that listener's, in order.
    """
    following = [change for change in changes if change.at >= ended_at - REST_SLACK]
    if not following or following[0].state not in REST_STATES:
        return 0.0
    begin = following[0].at
    for change in following[1:]:
        if change.state not in REST_STATES:
            return max(0.0, (min(change.at, until) - begin).total_seconds())
    return max(0.0, (until - begin).total_seconds())


# -- the purge's aggregates ----------------------------------------------------------------------------


def aggregate(
    calls: Iterable[CallFacts], rules: Mapping[str, LineRules], default: LineRules = LineRules("UTC")
) -> list[DayAggregate]:
    """Calls folded into one aggregate per (local day, line, practice), judged by their line's rules."""
    tallies: dict[tuple[date, str, bool], _Tally] = {}
    zones: dict[str, LineRules] = {}
    for call in calls:
        rule = rules.get(call.line, default)
        zones[call.line] = rule
        local = call.queued_at.astimezone(zone_of(rule.timezone))
        key = (local.date(), call.line, call.practice)
        tally = tallies.setdefault(key, _Tally())
        tally.add_call(call, rule.thresholds, local)
    result = []
    for (day, line, practice), tally in sorted(tallies.items()):
        rule = zones[line]
        result.append(
            DayAggregate(
                day=day,
                line=line,
                practice=practice,
                timezone=rule.timezone,
                calls=tally.offered,
                served=tally.answered,
                abandoned=tally.abandoned,
                fallback=tally.fallback,
                alternatives=tally.alternatives,
                talk_seconds_total=tally.talk,
                wait_seconds_total=tally.wait_total,
                wait_seconds_max=tally.wait_max,
                short_abandons=tally.short_abandons,
                answered_in_service_level=tally.within,
                service_level_seconds=rule.thresholds.service_level,
                short_abandon_seconds=rule.thresholds.short_abandon,
                answered_wait_seconds_total=tally.answered_wait,
                rest_seconds_total=tally.rest,
                wait_histogram=tuple(tally.histogram),
                hourly=tuple(tally.hourly),
            )
        )
    return result


# -- the tally both sources feed ----------------------------------------------------------------------


@dataclass
class _Tally:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandons: int | None = 0
    alternatives: int = 0
    fallback: int = 0
    within: int | None = 0
    answered_wait: float | None = 0.0
    talk: float = 0.0
    rest: float | None = 0.0
    wait_total: float = 0.0
    wait_max: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BUCKETS) + 1))
    hourly: list[int] = field(default_factory=lambda: [0] * 24)
    # The answered waits themselves, while only records fed the tally: an exact p90.
    waits: list[float] | None = field(default_factory=list)
    histogram_known: bool = True
    closed: int | None = 0

    def add_call(self, call: CallFacts, thresholds: Thresholds, local: datetime) -> None:
        self.offered += 1
        self.hourly[local.hour] += 1
        self.wait_total += call.wait_seconds
        self.wait_max = max(self.wait_max, call.wait_seconds)
        self.alternatives += call.outcome == "alternatives"
        self.fallback += call.outcome == "fallback"
        if call.outcome == "abandoned":
            self.abandoned += 1
            if self.short_abandons is not None and is_short_abandon(call, thresholds):
                self.short_abandons += 1
        if call.outcome == "served":
            self.answered += 1
            self.talk += call.talk_seconds
            if self.within is not None and answered_within(call, thresholds):
                self.within += 1
            if self.answered_wait is not None:
                self.answered_wait += call.wait_seconds
            if self.rest is not None:
                self.rest += call.rest_seconds
            self.histogram[bucket_of(call.wait_seconds)] += 1
            if self.waits is not None:
                self.waits.append(call.wait_seconds)

    def add_aggregate(self, day: DayAggregate) -> None:
        self.offered += day.calls
        self.answered += day.served
        self.abandoned += day.abandoned
        self.alternatives += day.alternatives
        self.fallback += day.fallback
        self.talk += day.talk_seconds_total
        self.wait_total += day.wait_seconds_total
        self.wait_max = max(self.wait_max, day.wait_seconds_max)
        self.short_abandons = _plus(self.short_abandons, day.short_abandons)
        self.within = _plus(self.within, day.answered_in_service_level)
        self.answered_wait = _plus(self.answered_wait, day.answered_wait_seconds_total)
        self.rest = _plus(self.rest, day.rest_seconds_total)
        if day.served:
            self.waits = None
        if day.wait_histogram is None or len(day.wait_histogram) != len(self.histogram):
            self.histogram_known = self.histogram_known and day.served == 0
        else:
            self.histogram = [a + b for a, b in zip(self.histogram, day.wait_histogram, strict=True)]
        if day.hourly is not None and len(day.hourly) == 24:
            self.hourly = [a + b for a, b in zip(self.hourly, day.hourly, strict=True)]


def _plus(total: _N | None, more: _N | None) -> _N | None:
    """Unknown stays unknown: a sum with a part not counted is not a smaller number."""
    if total is None or more is None:
        return None
    return total + more


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def percentile_90(waits: Sequence[float]) -> float | None:
    """The nearest-rank 90th percentile: the smallest wait that at least 90 % of the waits do not exceed."""
    if not waits:
        return None
    ordered = sorted(waits)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def percentile_90_of_histogram(histogram: Sequence[int]) -> float | None:
    """The upper bound of the bucket holding the nearest-rank 90th percentile (the last bound for the
    overflow bucket: then at least that)."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = math.ceil(0.9 * total)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return float(WAIT_BUCKETS[min(index, len(WAIT_BUCKETS) - 1)])
    return float(WAIT_BUCKETS[-1])


# -- coverage: time as intervals ------------------------------------------------------------------------


def union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for begin, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def intersection(first: Iterable[Interval], second: Iterable[Interval]) -> list[Interval]:
    a, b = union(first), union(second)
    result: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        begin, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if begin < end:
            result.append((begin, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def hours_of(intervals: Iterable[Interval]) -> float:
    return sum((end - begin).total_seconds() for begin, end in union(intervals)) / 3600


def open_intervals(hours: OpeningHours, start: datetime, end: datetime) -> list[Interval]:
    """When the line is open between two instants, in UTC.

    Ranges are wall-clock times in the line's zone: aware datetime arithmetic in Python is wall-clock, so
    09:00 + 12 h is 21:00 local on a DST change day too, and a 24 h day lasts 23 or 25 hours then.
    """
    zone = hours.zone
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    found: list[Interval] = []
    day = first
    while day <= last:
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        for r in hours.ranges_on(day):
            begin = (midnight + timedelta(minutes=r.start)).astimezone(UTC)
            finish = (midnight + timedelta(minutes=r.start + r.length)).astimezone(UTC)
            found.append((max(begin, start), min(finish, end)))
        day += timedelta(days=1)
    return union(found)


def on_duty_intervals(
    changes: Iterable[StateChange], start: datetime, end: datetime
) -> dict[str, list[Interval]]:
    """Each listener's time on duty between two instants. The changes include each listener's last one
    before `start` (their state then); a state that has not changed since lasts until `end`."""
    by_listener: dict[str, list[StateChange]] = {}
    for change in sorted(changes, key=lambda c: (c.listener_id, c.at)):
        by_listener.setdefault(change.listener_id, []).append(change)
    result: dict[str, list[Interval]] = {}
    for listener_id, own in by_listener.items():
        spans: list[Interval] = []
        for change, following in zip(own, [*own[1:], None], strict=True):
            if change.state not in ON_DUTY_STATES:
                continue
            finish = end if following is None else min(following.at, end)
            begin = max(change.at, start)
            if begin < finish:
                spans.append((begin, finish))
        result[listener_id] = union(spans)
    return result


# -- the figures -------------------------------------------------------------------------------------------


def compute(
    period: Period,
    calls: Iterable[CallFacts],
    aggregates: Iterable[DayAggregate] = (),
    *,
    line: str | None = None,
    practice: bool = False,
    rules: Mapping[str, LineRules] | None = None,
    default_rules: LineRules | None = None,
    open_hours: Sequence[OpeningHours] = (),
    duty: Mapping[str, Sequence[Interval]] | None = None,
    duty_window: Interval | None = None,
    pseudonyms: Mapping[str, str] | None = None,
    turned_away: Iterable[TurnedAwayFacts] = (),
) -> Statistics:
    """The figures of a period, for one line (None: every line), real calls or practice calls (never both).

    calls are the records, aggregates the daily_stats rows; both are filtered here again (line, practice,
    period) so a caller passing too much cannot mix practice calls in. open_hours are the lines' hours;
    duty the listeners' time on duty within duty_window, the part of the period the listener audit still
    covers (None: coverage and hours on duty unknown).
    """
    rules = rules or {}
    default_rules = default_rules or LineRules(period.timezone)
    zone = zone_of(period.timezone)
    begin, end = period.bounds()
    total = _Tally()
    by_day = {day: _Tally() for day in period.days()}
    heat = [[0] * 24 for _ in range(7)]
    answered_by: dict[str, int] = {}
    notes: list[str] = []
    thresholds_used: set[Thresholds] = set()

    for call in calls:
        if call.practice != practice or (line is not None and call.line != line):
            continue
        if not begin <= call.queued_at < end:
            continue
        thresholds = rules.get(call.line, default_rules).thresholds
        thresholds_used.add(thresholds)
        local = call.queued_at.astimezone(zone)
        total.add_call(call, thresholds, local)
        by_day[local.date()].add_call(call, thresholds, local)
        heat[local.weekday()][local.hour] += 1
        if call.outcome == "served" and call.listener_id is not None:
            answered_by[call.listener_id] = answered_by.get(call.listener_id, 0) + 1

    for away in turned_away:
        if away.practice == practice and (line is None or away.line == line) and begin <= away.at < end:
            total.closed = _plus(total.closed, 1)

    foreign_zone = 0
    no_hours = 0
    for day in aggregates:
        if day.practice != practice or (line is not None and day.line != line):
            continue
        if day.day not in by_day:
            continue
        total.add_aggregate(day)
        total.closed = _plus(total.closed, day.closed)
        by_day[day.day].add_aggregate(day)
        if day.service_level_seconds is not None and day.short_abandon_seconds is not None:
            thresholds_used.add(Thresholds(day.service_level_seconds, day.short_abandon_seconds))
        if day.timezone != period.timezone:
            foreign_zone += 1
        if day.hourly is None or len(day.hourly) != 24:
            no_hours += day.calls
        else:
            for hour, count in enumerate(day.hourly):
                heat[day.day.weekday()][hour] += count

    if foreign_zone:
        notes.append(
            f"{foreign_zone} day(s) come from aggregates counted in another time zone than "
            f"{period.timezone}: their calls are on the day and hour of that zone."
        )
    if no_hours:
        notes.append(
            f"{no_hours} call(s) aggregated before hourly counts were kept are missing from the heat map."
        )
    if total.waits is None:
        notes.append(
            "Some days come from daily aggregates (records past retention): the p90 speed of answer is "
            "read from a histogram, and listeners' answered calls count only the days still recorded."
        )

    summary = _summary(total, thresholds_used)
    coverage = _coverage(open_hours, duty, duty_window, notes)
    daily = tuple(DayRow(day, t.offered, t.answered, t.abandoned) for day, t in by_day.items())
    load = _load(answered_by, duty, pseudonyms or {})
    return Statistics(
        period=period,
        line=line,
        practice=practice,
        summary=summary,
        coverage=coverage,
        daily=daily,
        heat_map=tuple(tuple(row) for row in heat),
        load=load,
        notes=tuple(notes),
        definitions=TABLE_DEFINITIONS,
    )


def _threshold_text(used: set[Thresholds], attribute: str, default: int) -> str:
    values = sorted({getattr(t, attribute) for t in used}) or [default]
    return " or ".join(f"{v} s" for v in values)


def _summary(t: _Tally, used: set[Thresholds]) -> tuple[Figure, ...]:
    short = _threshold_text(used, "short_abandon", SHORT_ABANDON_SECONDS)
    level = _threshold_text(used, "service_level", SERVICE_LEVEL_SECONDS)
    counted = None if t.short_abandons is None else t.offered - t.short_abandons
    if t.waits is not None:
        p90: float | None = percentile_90(t.waits)
        p90_definition = (
            "90th percentile (nearest rank) of the wait before answer of answered calls: 90 % waited "
            "no longer"
        )
    else:
        p90 = percentile_90_of_histogram(t.histogram) if t.histogram_known else None
        p90_definition = (
            "90th percentile (nearest rank) of the wait before answer of answered calls; approximate: "
            "the upper bound of its wait bucket ("
            + ", ".join(f"{b}" for b in WAIT_BUCKETS)
            + " s, or more), "
            "as some days come from daily aggregates"
        )
    handle = None if t.rest is None else _ratio(t.talk + t.rest, t.answered)
    unknown = " (unknown: some days were aggregated before it was counted)"
    return (
        Figure("offered", "Offered", t.offered, "calls", OFFERED_DEFINITION),
        Figure(
            "answered",
            "Answered",
            t.answered,
            "calls",
            "calls answered by a listener (outcome served)",
        ),
        Figure(
            "abandoned",
            "Abandoned",
            t.abandoned,
            "calls",
            "calls whose caller hung up while waiting (outcome abandoned), short abandons included",
        ),
        Figure(
            "short_abandons",
            "Short abandons",
            t.short_abandons,
            "calls",
            f"abandoned calls whose wait was at most {short} (the line's short-abandon threshold)"
            + ("" if t.short_abandons is not None else unknown),
        ),
        Figure(
            "alternatives",
            "Turned to alternatives",
            t.alternatives,
            "calls",
            "calls whose caller chose to hear other ways to get help while waiting (outcome alternatives)",
        ),
        Figure(
            "fallback",
            "Fallback",
            t.fallback,
            "calls",
            "calls the service handed to the fallback (the on-duty phones rung directly, then a message)",
        ),
        Figure(
            "closed",
            "Closed (arrived outside hours)",
            t.closed,
            "calls",
            CLOSED_DEFINITION + ("" if t.closed is not None else unknown),
        ),
        Figure(
            "answer_rate",
            "Answer rate",
            _ratio(t.answered, counted),
            "ratio",
            "answered ÷ (offered − short abandons); none when nothing is left to divide by",
        ),
        Figure(
            "service_level",
            "Service level",
            _ratio(t.within, counted),
            "ratio",
            f"answered within {level} (the line's service level) ÷ (offered − short abandons)"
            + ("" if t.within is not None else unknown),
        ),
        Figure(
            "average_speed_of_answer",
            "Average speed of answer",
            _ratio(t.answered_wait, t.answered),
            "seconds",
            "sum of the waits of answered calls (from arrival in the queue to the answer) ÷ answered"
            + ("" if t.answered_wait is not None else unknown),
        ),
        Figure("p90_speed_of_answer", "Speed of answer, 90th percentile", p90, "seconds", p90_definition),
        Figure(
            "average_talk_time",
            "Average talk time",
            _ratio(t.talk, t.answered),
            "seconds",
            "sum of the talk times of answered calls (answer to hang-up) ÷ answered",
        ),
        Figure(
            "average_handle_time",
            "Average handle time",
            handle,
            "seconds",
            "(sum of talk times + sum of the rests right after those calls) ÷ answered; a rest is read from "
            "the listener's audit: the rest or awaiting-debrief state entered when the call ended, until "
            "their next other state" + ("" if t.rest is not None else unknown),
        ),
    )


def _coverage(
    open_hours: Sequence[OpeningHours],
    duty: Mapping[str, Sequence[Interval]] | None,
    window: Interval | None,
    notes: list[str],
) -> tuple[Figure, ...]:
    if duty is None or window is None or window[1] <= window[0]:
        notes.append(
            "The listener audit no longer covers this period: coverage and hours on duty are unknown."
        )
        opened = staffed = staffed_open = ratio = None
        where = "no part of the period (audit purged)"
    else:
        begin, end = window
        open_spans = union(span for hours in open_hours for span in open_intervals(hours, begin, end))
        staffed_spans = union(span for spans in duty.values() for span in spans)
        opened = hours_of(open_spans)
        staffed = hours_of(staffed_spans)
        staffed_open = hours_of(intersection(open_spans, staffed_spans))
        ratio = _ratio(staffed_open, opened)
        where = f"{begin:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    scope = f"; counted from {where}, the part of the period the listener audit covers and that has passed"
    return (
        Figure(
            "open_hours",
            "Open hours",
            opened,
            "hours",
            "hours the line is open by its opening hours (exceptions included; all lines: open on any)"
            + scope,
        ),
        Figure(
            "staffed_hours",
            "Staffed hours",
            staffed,
            "hours",
            "hours with at least one listener on duty (available, ringing, on a call, resting or awaiting a "
            "debrief; paused is not on duty), whatever the line: listeners are not tied to lines" + scope,
        ),
        Figure(
            "staffed_open_hours",
            "Staffed open hours",
            staffed_open,
            "hours",
            "open hours with at least one listener on duty" + scope,
        ),
        Figure(
            "coverage",
            "Coverage",
            ratio,
            "ratio",
            "open hours with at least one listener on duty ÷ open hours" + scope,
        ),
    )


def _load(
    answered_by: Mapping[str, int],
    duty: Mapping[str, Sequence[Interval]] | None,
    pseudonyms: Mapping[str, str],
) -> tuple[ListenerLoad, ...]:
    rows: dict[str, list[float]] = {}
    for listener_id in {*answered_by, *(duty or {})}:
        hours = hours_of((duty or {}).get(listener_id, ()))
        answered = answered_by.get(listener_id, 0)
        if not answered and not hours:
            continue
        # Listeners removed from the roster are one row: their ids mean nothing to the page.
        name = pseudonyms.get(listener_id, REMOVED_LISTENER)
        row = rows.setdefault(name, [0, 0.0])
        row[0] += answered
        row[1] += hours
    return tuple(ListenerLoad(name, int(a), h) for name, (a, h) in sorted(rows.items()))


OFFERED_DEFINITION = (
    "calls that reached the line's queue in the period (every call record, by its arrival in the period's "
    "time zone), whatever their outcome; calls turned away while the line was closed are not among them"
)
CLOSED_DEFINITION = (
    "callers who reached the line while it was closed or inactive and heard its closed message (not among "
    "the offered calls)"
)
TABLE_DEFINITIONS: Mapping[str, str] = {
    "daily": "per local day of the period: offered (every call record), answered (served), abandoned "
    "(short abandons included)",
    "heat_map": "calls offered by weekday (Monday first) and hour of their arrival, in the period's "
    "time zone",
    "load": "per listener: calls answered in the period (records still kept), and hours on duty (available, "
    "ringing, on a call, resting or awaiting a debrief) in the part of the period the audit covers",
}


# -- CSV -------------------------------------------------------------------------------------------------


def _csv(rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue()


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def summary_csv(stats: Statistics) -> str:
    """Every figure (summary, then coverage) with its unit and definition; an unknown figure is blank."""
    return _csv(
        [("figure", "label", "value", "unit", "definition")]
        + [(f.key, f.label, _cell(f.value), f.unit, f.definition) for f in (*stats.summary, *stats.coverage)]
        + [("note", "", "", "", note) for note in stats.notes]
    )


def daily_csv(stats: Statistics) -> str:
    return _csv(
        [("day", "offered", "answered", "abandoned")]
        + [(r.day.isoformat(), r.offered, r.answered, r.abandoned) for r in stats.daily]
    )


def heat_map_csv(stats: Statistics) -> str:
    return _csv(
        [("weekday", *(f"{hour:02d}" for hour in range(24)))]
        + [(WEEKDAYS[n], *row) for n, row in enumerate(stats.heat_map)]
    )


def load_csv(stats: Statistics) -> str:
    return _csv(
        [("listener", "answered", "hours_on_duty")]
        + [(r.pseudonym, r.answered, _cell(r.hours_on_duty)) for r in stats.load]
    )
