"""What the lines' repository returns (frozen), and how a row becomes one and back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from helpline_pbx.hours import HoursError, OpeningHours
from helpline_pbx.lines.errors import InvalidHours
from helpline_pbx.lines.tables import LineRow
from helpline_pbx.lines.validators import valid_prompt


@dataclass(frozen=True, slots=True)
class LineMessages:
    """Names of the prompt files a line plays."""

    closed: str = "closed"
    overloaded: str = "overloaded"
    alternatives: str = "alternatives"


@dataclass(frozen=True, slots=True)
class LineSnapshot:
    id: str
    name: str
    label: str
    numbers: tuple[str, ...]
    audience: str
    support: tuple[str, ...]
    language: str
    skills: tuple[str, ...]
    hours: OpeningHours
    messages: LineMessages
    ring_timeout: int | None
    active: bool
    created_at: datetime
    updated_at: datetime
    # Volunteers first, everyone after this many seconds of waiting; None: everyone at once.
    professionals_after: int | None = None
    repeat_hint: bool = False
    rest_after_call: int | None = None
    announce_every: int | None = None
    choice_after: int | None = None
    max_wait: int | None = None
    service_level: int | None = None
    short_abandon: int | None = None
    practice: bool = False
    trainees_allowed: bool = False

    @property
    def timezone(self) -> str:
        return self.hours.timezone


@dataclass(frozen=True, slots=True)
class LinesVersion:
    """Changes whenever a line is added, edited (numbers included) or removed."""

    count: int
    last_change: datetime | None


class Unset(Enum):
    """The type of UNSET: "leave it as it is", where None means "remove it"."""

    UNSET = "unset"


UNSET = Unset.UNSET
HoursChange = OpeningHours | Callable[[OpeningHours], OpeningHours]
MessagesChange = LineMessages | Callable[[LineMessages], LineMessages]


def store_hours(row: LineRow, hours: OpeningHours) -> None:
    row.timezone = hours.timezone
    row.weekly_hours = hours.weekly_json()
    row.hour_exceptions = hours.exceptions_json()


def store_messages(row: LineRow, messages: LineMessages) -> None:
    row.closed_message = valid_prompt(messages.closed, "closed")
    row.overloaded_message = valid_prompt(messages.overloaded, "overloaded")
    row.alternatives_message = valid_prompt(messages.alternatives, "alternatives")


def hours_of(row: LineRow) -> OpeningHours:
    try:
        return OpeningHours.from_json(row.weekly_hours, row.hour_exceptions, row.timezone)
    except HoursError as exc:
        raise InvalidHours(f"stored hours of line {row.name!r} are invalid: {exc}") from exc


def messages_of(row: LineRow) -> LineMessages:
    return LineMessages(row.closed_message, row.overloaded_message, row.alternatives_message)


def snapshot_of(row: LineRow) -> LineSnapshot:
    return LineSnapshot(
        id=row.id,
        name=row.name,
        label=row.label,
        numbers=tuple(sorted(n.number for n in row.numbers)),
        audience=row.audience,
        support=tuple(row.support),
        language=row.language,
        skills=tuple(row.skills),
        hours=hours_of(row),
        messages=messages_of(row),
        ring_timeout=row.ring_timeout,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
        professionals_after=row.professionals_after,
        repeat_hint=row.repeat_hint,
        rest_after_call=row.rest_after_call,
        announce_every=row.announce_every,
        choice_after=row.choice_after,
        max_wait=row.max_wait,
        service_level=row.service_level,
        short_abandon=row.short_abandon,
        practice=row.practice,
        trainees_allowed=row.trainees_allowed,
    )
