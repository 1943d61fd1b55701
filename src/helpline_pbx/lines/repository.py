"""The lines' repository: administration and lookup, each method one short transaction."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from helpline_pbx.hours import DEFAULT_TIMEZONE, HoursError, OpeningHours
from helpline_pbx.lines.errors import DuplicateLine, DuplicateNumber, InvalidHours, InvalidLine, LineNotFound
from helpline_pbx.lines.snapshots import (
    UNSET,
    HoursChange,
    LineMessages,
    LineSnapshot,
    LinesVersion,
    MessagesChange,
    Unset,
    hours_of,
    messages_of,
    snapshot_of,
    store_hours,
    store_messages,
)
from helpline_pbx.lines.tables import LineNumberRow, LineRow
from helpline_pbx.lines.validators import (
    normalize_number,
    parse_hours,
    valid_audience,
    valid_label,
    valid_language,
    valid_name,
    valid_numbers,
    valid_ring_timeout,
    valid_seconds,
    valid_tokens,
    valid_wait,
)
from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.timestamps import utc


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
        service_level: int | None = None,
        short_abandon: int | None = None,
        practice: bool = False,
        trainees_allowed: bool = False,
        active: bool = True,
        now: datetime | None = None,
    ) -> LineSnapshot:
        """Create a line; hours are OpeningHours or their weekly text, 24/7 in Europe/Paris by default."""
        name = valid_name(name)
        wanted = valid_numbers(numbers)
        if hours is None:
            hours = OpeningHours(timezone=DEFAULT_TIMEZONE)
        elif isinstance(hours, str):
            hours = parse_hours(hours)
        now = _aware(now or datetime.now(UTC))
        row = LineRow(
            name=name,
            label=valid_label(label),
            audience=valid_audience(audience),
            support=valid_tokens(support, "support"),
            language=valid_language(language),
            skills=valid_tokens(skills, "skill"),
            ring_timeout=valid_ring_timeout(ring_timeout),
            professionals_after=valid_wait(professionals_after),
            repeat_hint=repeat_hint,
            rest_after_call=valid_seconds("rest_after_call", rest_after_call),
            announce_every=valid_seconds("announce_every", announce_every),
            choice_after=valid_seconds("choice_after", choice_after),
            max_wait=valid_seconds("max_wait", max_wait),
            service_level=valid_seconds("service_level", service_level),
            short_abandon=valid_seconds("short_abandon", short_abandon),
            practice=practice,
            trainees_allowed=trainees_allowed,
            active=active,
            created_at=now,
            updated_at=now,
        )
        store_hours(row, hours)
        store_messages(row, messages or LineMessages())
        try:
            async with transaction(self._sessions) as session:
                await _refuse_duplicates(session, name=name, numbers=wanted)
                row.id = await _free_line_id(session)
                row.numbers = [LineNumberRow(number=number) for number in wanted]
                session.add(row)
                await session.flush()
                return snapshot_of(row)
        except IntegrityError as exc:
            # Another writer took the name or a number between our check and our insert.
            raise DuplicateLine(f"line name {name!r} or one of its numbers is already used") from exc

    async def get(self, ref: str) -> LineSnapshot:
        """Find a line by id, else name, else one of its numbers."""
        async with transaction(self._sessions) as session:
            return snapshot_of(await _find(session, ref))

    async def list(self, *, active_only: bool = False) -> list[LineSnapshot]:
        query = select(LineRow).options(selectinload(LineRow.numbers)).order_by(LineRow.name)
        if active_only:
            query = query.where(LineRow.active.is_(True))
        async with transaction(self._sessions) as session:
            return [snapshot_of(row) for row in await session.scalars(query)]

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
            return None if row is None else snapshot_of(row)

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
        service_level: int | Unset | None = UNSET,
        short_abandon: int | Unset | None = UNSET,
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
        new_name = None if name is None else valid_name(name)
        changes: dict[str, Any] = {
            "name": new_name,
            "label": None if label is None else valid_label(label),
            "audience": None if audience is None else valid_audience(audience),
            "support": None if support is None else valid_tokens(support, "support"),
            "language": None if language is None else valid_language(language),
            "skills": None if skills is None else valid_tokens(skills, "skill"),
            "repeat_hint": repeat_hint,
            "practice": practice,
            "trainees_allowed": trainees_allowed,
            "active": active,
        }
        # Optional durations: UNSET leaves them, None removes them.
        durations = {
            key: value if value is UNSET else valid_seconds(key, value)
            for key, value in (
                ("rest_after_call", rest_after_call),
                ("announce_every", announce_every),
                ("choice_after", choice_after),
                ("max_wait", max_wait),
                ("service_level", service_level),
                ("short_abandon", short_abandon),
            )
        }
        replace_numbers = None if numbers is None else valid_numbers(numbers)
        added = valid_numbers(add_numbers)
        removed = valid_numbers(remove_numbers)
        timeout = ring_timeout if ring_timeout is UNSET else valid_ring_timeout(ring_timeout)
        widen = professionals_after if professionals_after is UNSET else valid_wait(professionals_after)
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
                    old_hours = hours_of(row)
                    try:
                        new_hours = hours(old_hours) if callable(hours) else hours
                    except HoursError as exc:
                        raise InvalidHours(f"line {row.name!r}: {exc}") from exc
                    if new_hours != old_hours:
                        store_hours(row, new_hours)
                        changed = True
                if messages is not None:
                    old_messages = messages_of(row)
                    new_messages = messages(old_messages) if callable(messages) else messages
                    if new_messages != old_messages:
                        store_messages(row, new_messages)
                        changed = True
                if sorted(wanted) != sorted(current):
                    kept = [n for n in row.numbers if n.number in wanted]
                    row.numbers = kept + [LineNumberRow(number=n) for n in wanted if n not in current]
                    changed = True
                if changed:
                    row.updated_at = now
                await session.flush()
                return snapshot_of(row)
        except IntegrityError as exc:
            raise DuplicateLine(f"the name or a number of line {ref!r} is already used") from exc

    async def remove(self, ref: str) -> LineSnapshot:
        """Delete the line and its numbers; call records keep the line's name."""
        async with transaction(self._sessions) as session:
            row = await _find(session, ref, for_update=True)
            snapshot = snapshot_of(row)
            await session.delete(row)
            return snapshot

    async def version(self) -> LinesVersion:
        """Cheap to poll: tells when cached lines must be reloaded."""
        async with transaction(self._sessions) as session:
            count, last_change = (
                await session.execute(select(func.count(), func.max(LineRow.updated_at)).select_from(LineRow))
            ).one()
            return LinesVersion(count=count, last_change=last_change)


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


def _aware(value: datetime) -> datetime:
    return utc(value, "lines")
