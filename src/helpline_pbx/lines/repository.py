"""Listening lines: who each line serves, how, when it is open, and the numbers (DIDs) that reach it.

Lists (support, skills) and hours are JSON columns: a line is always read whole, edited rarely and never
searched by skill or weekday, so child tables would only add joins. The numbers get a table of their own
because the database must enforce that one number reaches one line, and calls look lines up by number.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Integer, String, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from helpline_pbx.hours import DEFAULT_TIMEZONE, HoursError, OpeningHours
from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.states import words
from helpline_pbx.roster.tables import Base, UTCDateTime
from helpline_pbx.timestamps import utc
from helpline_pbx.tokens import NUMBER_SEPARATORS

LINE_ID_LENGTH = 16
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")

LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
PROMPT_PATTERN = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+){0,3}")
PROMPT_MAX_LENGTH = 128
NUMBER_PATTERN = re.compile(r"\d{3,15}")
# Separators people type in phone numbers; the trunk sends digits only.
LABEL_MAX_LENGTH = 64
AUDIENCE_MAX_LENGTH = 500
RING_TIMEOUT_RANGE = range(5, 301)


# Errors


class LineError(RosterError):
    code: ClassVar[str] = "line_error"


class LineNotFound(LineError):
    code: ClassVar[str] = "line_not_found"


class DuplicateLine(LineError):
    code: ClassVar[str] = "line_duplicate"


class DuplicateNumber(DuplicateLine):
    code: ClassVar[str] = "line_number_duplicate"


class InvalidLine(LineError):
    code: ClassVar[str] = "line_invalid"


class InvalidHours(InvalidLine):
    code: ClassVar[str] = "line_hours_invalid"


# Tables


class LineRow(Base):
    """One listening line; its numbers are in line_numbers."""

    __tablename__ = "lines"

    id: Mapped[str] = mapped_column(String(LINE_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    label: Mapped[str] = mapped_column(String(LABEL_MAX_LENGTH))
    audience: Mapped[str] = mapped_column(String(AUDIENCE_MAX_LENGTH))
    support: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(16))
    skills: Mapped[list[str]] = mapped_column(JSON)
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": ["09:00-21:00"], ...} and {"2026-12-25": [], "2026-12-24": ["09:00-14:00"]}
    weekly_hours: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    hour_exceptions: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    closed_message: Mapped[str] = mapped_column(String(PROMPT_MAX_LENGTH))
    overloaded_message: Mapped[str] = mapped_column(String(PROMPT_MAX_LENGTH))
    alternatives_message: Mapped[str] = mapped_column(String(PROMPT_MAX_LENGTH))
    ring_timeout: Mapped[int | None] = mapped_column(Integer)
    # Volunteers are tried first; after this many seconds of waiting, professionals and supervisors too.
    # None: everyone at once.
    professionals_after: Mapped[int | None] = mapped_column(Integer)
    # Show listeners how often this (pseudonymous) caller called within the key period ("2e appel").
    repeat_hint: Mapped[bool] = mapped_column(default=False)
    # Minimum rest of a listener after a call on this line, in seconds; None: the service's default.
    rest_after_call: Mapped[int | None] = mapped_column(Integer)
    # While waiting: position and estimated wait every this many seconds (None: never).
    announce_every: Mapped[int | None] = mapped_column(Integer)
    # After this many seconds of waiting, the caller may keep their place or hear the alternatives.
    choice_after: Mapped[int | None] = mapped_column(Integer)
    # An estimated wait above this many seconds: the caller hears the overloaded message first.
    max_wait: Mapped[int | None] = mapped_column(Integer)
    # A training line: its calls go only to trainees and are marked practice everywhere.
    practice: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Real calls of this line may reach trainees (whose calls supervisors may always join).
    trainees_allowed: Mapped[bool] = mapped_column(default=False, server_default=false())
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Bumped by every edit, numbers included: lines_version() watches it.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    numbers: Mapped[list[LineNumberRow]] = relationship(
        back_populates="line",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="LineNumberRow.number",
    )


class LineNumberRow(Base):
    """A number (DID) that reaches a line: digits only, national or E.164 without the "+"."""

    __tablename__ = "line_numbers"

    # The primary key makes a number reach one line at most.
    number: Mapped[str] = mapped_column(String(15), primary_key=True)
    line_id: Mapped[str] = mapped_column(
        String(LINE_ID_LENGTH), ForeignKey("lines.id", ondelete="CASCADE"), index=True
    )

    line: Mapped[LineRow] = relationship(back_populates="numbers")


# Snapshots


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


# Repository


class Lines:
    """Administration and lookup of lines; every method is one short transaction returning snapshots."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def add(
        self,
        name: str,
        *,
        label: str,
        numbers: Iterable[str] = (),
        audience: str = "",
        support: Iterable[str] = (),
        language: str = "fr",
        skills: Iterable[str] = (),
        hours: OpeningHours | str | None = None,
        messages: LineMessages | None = None,
        ring_timeout: int | None = None,
        professionals_after: int | None = None,
        repeat_hint: bool = False,
        rest_after_call: int | None = None,
        announce_every: int | None = None,
        choice_after: int | None = None,
        max_wait: int | None = None,
        practice: bool = False,
        trainees_allowed: bool = False,
        active: bool = True,
        now: datetime | None = None,
    ) -> LineSnapshot:
        """Create a line; hours are OpeningHours or their weekly text, 24/7 in Europe/Paris by default."""
        name = _valid_name(name)
        wanted = _valid_numbers(numbers)
        if hours is None:
            hours = OpeningHours(timezone=DEFAULT_TIMEZONE)
        elif isinstance(hours, str):
            hours = parse_hours(hours)
        now = _aware(now or datetime.now(UTC))
        row = LineRow(
            name=name,
            label=_valid_label(label),
            audience=_valid_audience(audience),
            support=_valid_tokens(support, "support"),
            language=_valid_language(language),
            skills=_valid_tokens(skills, "skill"),
            ring_timeout=_valid_ring_timeout(ring_timeout),
            professionals_after=_valid_wait(professionals_after),
            repeat_hint=repeat_hint,
            rest_after_call=_valid_seconds("rest_after_call", rest_after_call),
            announce_every=_valid_seconds("announce_every", announce_every),
            choice_after=_valid_seconds("choice_after", choice_after),
            max_wait=_valid_seconds("max_wait", max_wait),
            practice=practice,
            trainees_allowed=trainees_allowed,
            active=active,
            created_at=now,
            updated_at=now,
        )
        _store_hours(row, hours)
        _store_messages(row, messages or LineMessages())
        try:
            async with transaction(self._sessions) as session:
                await _refuse_duplicates(session, name=name, numbers=wanted)
                row.id = await _free_line_id(session)
                row.numbers = [LineNumberRow(number=number) for number in wanted]
                session.add(row)
                await session.flush()
                return _snapshot(row)
        except IntegrityError as exc:
            # Another writer took the name or a number between our check and our insert.
            raise DuplicateLine(f"line name {name!r} or one of its numbers is already used") from exc

    async def get(self, ref: str) -> LineSnapshot:
        """Find a line by id, else name, else one of its numbers."""
        async with transaction(self._sessions) as session:
            return _snapshot(await _find(session, ref))

    async def list(self, *, active_only: bool = False) -> list[LineSnapshot]:
        query = select(LineRow).options(selectinload(LineRow.numbers)).order_by(LineRow.name)
        if active_only:
            query = query.where(LineRow.active.is_(True))
        async with transaction(self._sessions) as session:
            return [_snapshot(row) for row in await session.scalars(query)]

    async def line_for_number(self, number: str) -> LineSnapshot | None:
        """The line a dialled number reaches, active or not (the caller checks `active`).

        None for a number no line has, or for something that is not a number at all: the call path
        must go on to its fallback rather than fail.
        """
        try:
            did = normalize_number(number)
        except InvalidLine:
            return None
        query = (
            select(LineRow)
            .join(LineNumberRow, LineNumberRow.line_id == LineRow.id)
            .where(LineNumberRow.number == did)
            .options(selectinload(LineRow.numbers))
        )
        async with transaction(self._sessions) as session:
            row = await session.scalar(query)
            return None if row is None else _snapshot(row)

    async def edit(
        self,
        ref: str,
        *,
        name: str | None = None,
        label: str | None = None,
        numbers: Iterable[str] | None = None,
        add_numbers: Iterable[str] = (),
        remove_numbers: Iterable[str] = (),
        audience: str | None = None,
        support: Iterable[str] | None = None,
        language: str | None = None,
        skills: Iterable[str] | None = None,
        hours: HoursChange | None = None,
        messages: MessagesChange | None = None,
        ring_timeout: int | Unset | None = UNSET,
        professionals_after: int | Unset | None = UNSET,
        repeat_hint: bool | None = None,
        rest_after_call: int | Unset | None = UNSET,
        announce_every: int | Unset | None = UNSET,
        choice_after: int | Unset | None = UNSET,
        max_wait: int | Unset | None = UNSET,
        practice: bool | None = None,
        trainees_allowed: bool | None = None,
        active: bool | None = None,
        now: datetime | None = None,
    ) -> LineSnapshot:
        """Change what is given, all or nothing.

        `numbers` replaces every number; `add_numbers` and `remove_numbers` change some. `hours` is new
        hours, or a function of the current ones (so adding a holiday cannot lose a concurrent edit);
        `messages` likewise.
        `ring_timeout=None` removes the override.
        """
        new_name = None if name is None else _valid_name(name)
        changes: dict[str, Any] = {
            "name": new_name,
            "label": None if label is None else _valid_label(label),
            "audience": None if audience is None else _valid_audience(audience),
            "support": None if support is None else _valid_tokens(support, "support"),
            "language": None if language is None else _valid_language(language),
            "skills": None if skills is None else _valid_tokens(skills, "skill"),
            "repeat_hint": repeat_hint,
            "practice": practice,
            "trainees_allowed": trainees_allowed,
            "active": active,
        }
        # Optional durations: UNSET leaves them, None removes them.
        durations = {
            key: value if value is UNSET else _valid_seconds(key, value)
            for key, value in (
                ("rest_after_call", rest_after_call),
                ("announce_every", announce_every),
                ("choice_after", choice_after),
                ("max_wait", max_wait),
            )
        }
        replace_numbers = None if numbers is None else _valid_numbers(numbers)
        added = _valid_numbers(add_numbers)
        removed = _valid_numbers(remove_numbers)
        timeout = ring_timeout if ring_timeout is UNSET else _valid_ring_timeout(ring_timeout)
        widen = professionals_after if professionals_after is UNSET else _valid_wait(professionals_after)
        now = _aware(now or datetime.now(UTC))
        try:
            async with transaction(self._sessions) as session:
                row = await _find(session, ref, for_update=True)
                current = [n.number for n in row.numbers]
                wanted = list(replace_numbers if replace_numbers is not None else current)
                missing = [n for n in removed if n not in wanted]
                if missing:
                    raise InvalidLine(f"line {row.name!r} has no number {missing[0]!r}")
                wanted = [n for n in wanted if n not in removed]
                wanted += [n for n in added if n not in wanted]
                await _refuse_duplicates(
                    session, name=new_name, numbers=[n for n in wanted if n not in current], besides=row.id
                )
                changed = False
                for key, value in changes.items():
                    if value is not None and getattr(row, key) != value:
                        setattr(row, key, value)
                        changed = True
                if timeout is not UNSET and row.ring_timeout != timeout:
                    row.ring_timeout = timeout
                    changed = True
                if widen is not UNSET and row.professionals_after != widen:
                    row.professionals_after = widen
                    changed = True
                for key, duration in durations.items():
                    if duration is not UNSET and getattr(row, key) != duration:
                        setattr(row, key, duration)
                        changed = True
                if hours is not None:
                    old_hours = _hours(row)
                    try:
                        new_hours = hours(old_hours) if callable(hours) else hours
                    except HoursError as exc:
                        raise InvalidHours(f"line {row.name!r}: {exc}") from exc
                    if new_hours != old_hours:
                        _store_hours(row, new_hours)
                        changed = True
                if messages is not None:
                    old_messages = _messages(row)
                    new_messages = messages(old_messages) if callable(messages) else messages
                    if new_messages != old_messages:
                        _store_messages(row, new_messages)
                        changed = True
                if sorted(wanted) != sorted(current):
                    kept = [n for n in row.numbers if n.number in wanted]
                    row.numbers = kept + [LineNumberRow(number=n) for n in wanted if n not in current]
                    changed = True
                if changed:
                    row.updated_at = now
                await session.flush()
                return _snapshot(row)
        except IntegrityError as exc:
            raise DuplicateLine(f"the name or a number of line {ref!r} is already used") from exc

    async def remove(self, ref: str) -> LineSnapshot:
        """Delete the line and its numbers; call records keep the line's name."""
        async with transaction(self._sessions) as session:
            row = await _find(session, ref, for_update=True)
            snapshot = _snapshot(row)
            await session.delete(row)
            return snapshot

    async def version(self) -> LinesVersion:
        """Cheap to poll: tells when cached lines must be reloaded."""
        async with transaction(self._sessions) as session:
            count, last_change = (
                await session.execute(select(func.count(), func.max(LineRow.updated_at)).select_from(LineRow))
            ).one()
            return LinesVersion(count=count, last_change=last_change)


def parse_hours(
    weekly: str = "24/7", exceptions: str | Iterable[str] = (), *, timezone: str = DEFAULT_TIMEZONE
) -> OpeningHours:
    """OpeningHours.parse() whose errors are the roster's InvalidHours."""
    try:
        return OpeningHours.parse(weekly, exceptions, timezone=timezone)
    except HoursError as exc:
        raise InvalidHours(f"invalid opening hours: {exc}") from exc


def normalize_number(text: str) -> str:
    """Digits only: spaces, dots, dashes and a leading "+" are dropped ("+33 800…" gives "33800…")."""
    digits = NUMBER_SEPARATORS.sub("", text.strip()).removeprefix("+")
    if not NUMBER_PATTERN.fullmatch(digits):
        raise InvalidLine(f"{text!r} is not a phone number (3 to 15 digits)")
    return digits


# Helpers


async def _find(session: AsyncSession, ref: str, *, for_update: bool = False) -> LineRow:
    conditions = [LineRow.id == ref, LineRow.name == ref]
    did: str | None = None
    with suppress(InvalidLine):
        did = normalize_number(ref)
    if did is not None:
        conditions.append(LineRow.id.in_(select(LineNumberRow.line_id).where(LineNumberRow.number == did)))
    query = select(LineRow).where(or_(*conditions)).options(selectinload(LineRow.numbers))
    if for_update:
        query = query.with_for_update(of=LineRow)
    rows = list(await session.scalars(query))
    # Names start with a letter and ids with "ln-", so only an id and a name can look alike: ids win.
    for row in rows:
        if row.id == ref:
            return row
    for row in rows:
        if row.name == ref:
            return row
    if rows:
        return rows[0]
    raise LineNotFound(f"no line with id, name or number {ref!r}")


async def _refuse_duplicates(
    session: AsyncSession, *, name: str | None, numbers: Sequence[str], besides: str | None = None
) -> None:
    if name is not None:
        query = select(LineRow.id).where(LineRow.name == name)
        if besides is not None:
            query = query.where(LineRow.id != besides)
        if await session.scalar(query) is not None:
            raise DuplicateLine(f"line name {name!r} is already used")
    if numbers:
        taken = (
            await session.execute(
                select(LineNumberRow.number, LineRow.name)
                .join(LineRow, LineRow.id == LineNumberRow.line_id)
                .where(LineNumberRow.number.in_(list(numbers)))
            )
        ).first()
        if taken is not None:
            raise DuplicateNumber(f"number {taken[0]!r} already reaches line {taken[1]!r}")


async def _free_line_id(session: AsyncSession) -> str:
    # As for listeners: ids with a run of five digits are drawn again, so no id looks like a phone number.
    while True:
        candidate = f"ln-{secrets.token_hex(4)}"
        if re.search(r"\d{5,}", candidate) is None and await session.get(LineRow, candidate) is None:
            return candidate


def _valid_name(value: str) -> str:
    value = value.strip()
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidLine(
            f"line name {value!r} must be 1 to 32 characters among a-z, 0-9, '_' and '-', "
            "starting with a letter"
        )
    return value


def _valid_label(value: str) -> str:
    value = value.strip()
    if not value or len(value) > LABEL_MAX_LENGTH or not value.isprintable():
        raise InvalidLine(f"a line's label needs 1 to {LABEL_MAX_LENGTH} printable characters")
    return value


def _valid_audience(value: str) -> str:
    value = value.strip()
    if len(value) > AUDIENCE_MAX_LENGTH or not value.isprintable():
        raise InvalidLine(f"a line's audience has at most {AUDIENCE_MAX_LENGTH} printable characters")
    return value


def _valid_tokens(values: Iterable[str], what: str) -> list[str]:
    """A line's kinds of support or skills, in the order given (the menu offers them in that order)."""
    try:
        return words(values, what)
    except ValueError as exc:
        raise InvalidLine(str(exc)) from None


def _valid_language(value: str) -> str:
    value = value.strip()
    if not LANGUAGE_PATTERN.fullmatch(value) or len(value) > 16:
        raise InvalidLine(f"language {value!r} must be a short BCP 47 tag such as fr, en or fr-BE")
    return value


def _valid_wait(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= 3600:
        raise InvalidLine("the wait before professionals are tried must be 0 to 3600 seconds")
    return value


# The durations a line may set, in seconds, and their bounds.
SECONDS_RANGES = {
    "rest_after_call": range(0, 3601),
    "announce_every": range(15, 3601),
    "choice_after": range(10, 3601),
    "max_wait": range(0, 7201),
}


def _valid_seconds(key: str, value: int | None) -> int | None:
    bounds = SECONDS_RANGES[key]
    if value is not None and value not in bounds:
        what = key.replace("_", " ")
        raise InvalidLine(f"{what} must be {bounds.start} to {bounds.stop - 1} seconds")
    return value


def _valid_ring_timeout(value: int | None) -> int | None:
    if value is not None and value not in RING_TIMEOUT_RANGE:
        low, high = RING_TIMEOUT_RANGE.start, RING_TIMEOUT_RANGE.stop - 1
        raise InvalidLine(f"ring timeout {value} must be {low} to {high} seconds")
    return value


def _valid_numbers(values: Iterable[str]) -> list[str]:
    numbers: list[str] = []
    for value in values:
        number = normalize_number(value)
        if number not in numbers:
            numbers.append(number)
    return numbers


def _valid_prompt(value: str, what: str) -> str:
    if len(value) > PROMPT_MAX_LENGTH or not PROMPT_PATTERN.fullmatch(value):
        raise InvalidLine(
            f"{what} message {value!r} must be a prompt name such as 'closed' or 'jeunes/closed'"
        )
    return value


def _aware(value: datetime) -> datetime:
    return utc(value, "lines")


def _store_hours(row: LineRow, hours: OpeningHours) -> None:
    row.timezone = hours.timezone
    row.weekly_hours = hours.weekly_json()
    row.hour_exceptions = hours.exceptions_json()


def _store_messages(row: LineRow, messages: LineMessages) -> None:
    row.closed_message = _valid_prompt(messages.closed, "closed")
    row.overloaded_message = _valid_prompt(messages.overloaded, "overloaded")
    row.alternatives_message = _valid_prompt(messages.alternatives, "alternatives")


def _hours(row: LineRow) -> OpeningHours:
    try:
        return OpeningHours.from_json(row.weekly_hours, row.hour_exceptions, row.timezone)
    except HoursError as exc:
        raise InvalidHours(f"stored hours of line {row.name!r} are invalid: {exc}") from exc


def _messages(row: LineRow) -> LineMessages:
    return LineMessages(row.closed_message, row.overloaded_message, row.alternatives_message)


def _snapshot(row: LineRow) -> LineSnapshot:
    return LineSnapshot(
        id=row.id,
        name=row.name,
        label=row.label,
        numbers=tuple(sorted(n.number for n in row.numbers)),
        audience=row.audience,
        support=tuple(row.support),
        language=row.language,
        skills=tuple(row.skills),
        hours=_hours(row),
        messages=_messages(row),
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
        practice=row.practice,
        trainees_allowed=row.trainees_allowed,
    )
