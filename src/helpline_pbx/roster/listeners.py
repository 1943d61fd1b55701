"""The listeners' administration: add, find, edit, remove, and the version the service polls."""

import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from helpline_pbx.phones import sip_ha1
from helpline_pbx.roster.database import Repository
from helpline_pbx.roster.errors import DuplicateListener, InvalidListener, ListenerNotFound
from helpline_pbx.roster.rows import listener_snapshot
from helpline_pbx.roster.snapshots import ListenerSnapshot, RosterVersion
from helpline_pbx.roster.states import ListenerState, Presence, Role
from helpline_pbx.roster.tables import Listener
from helpline_pbx.roster.validators import (
    aware,
    valid_endpoint,
    valid_pseudonym,
    valid_role,
    valid_words,
)

SECRET_BYTES = 24  # token_urlsafe(24) gives 32 characters


class ListenerAdmin(Repository):
    async def add_listener(
        self,
        pseudonym: str,
        endpoint: str,
        role: Role | str,
        *,
        skills: Iterable[str] = (),
        languages: Iterable[str] = ("fr",),
        trainee: bool = False,
        monitoring_consent: bool = False,
        now: datetime | None = None,
    ) -> ListenerSnapshot:
        """Create an active, offline (off duty) listener with a fresh SIP password and short code; the
        password is in the returned snapshot only (the roster keeps its digest)."""
        pseudonym = valid_pseudonym(pseudonym)
        skill_list = valid_words(skills, "skill")
        language_list = valid_words(languages, "language") or ["fr"]
        endpoint = valid_endpoint(endpoint)
        checked_role = valid_role(role)
        now = aware(now or datetime.now(UTC))
        password = _new_secret()
        try:
            async with self._transaction() as session:
                await _refuse_duplicates(session, pseudonym=pseudonym, endpoint=endpoint)
                listener = Listener(
                    id=await _free_listener_id(session),
                    pseudonym=pseudonym,
                    endpoint=endpoint,
                    sip_ha1=sip_ha1(endpoint, password),
                    role=checked_role.value,
                    skills=skill_list,
                    languages=language_list,
                    trainee=trainee,
                    monitoring_consent=monitoring_consent,
                    code=await _free_code(session),
                    presence=Presence.OFF.value,
                    active=True,
                    state=ListenerState.OFFLINE.value,
                    state_changed_at=now,
                    created_at=now,
                    updated_at=now,
                )
                session.add(listener)
                await session.flush()
                return listener_snapshot(listener, password=password)
        except IntegrityError as exc:
            # Another writer took the name between our check and our insert.
            raise DuplicateListener(
                f"pseudonym {pseudonym!r} or endpoint {endpoint!r} is already used"
            ) from exc

    async def get_listener(self, ref: str) -> ListenerSnapshot:
        """Find a listener by id, else endpoint, else pseudonym."""
        async with self._transaction() as session:
            return listener_snapshot(await find_listener(session, ref))

    async def list_listeners(self, active_only: bool = False) -> list[ListenerSnapshot]:
        query = select(Listener).order_by(Listener.pseudonym)
        if active_only:
            query = query.where(Listener.active.is_(True))
        async with self._transaction() as session:
            return [listener_snapshot(row) for row in await session.scalars(query)]

    async def edit_listener(
        self,
        ref: str,
        *,
        pseudonym: str | None = None,
        role: Role | str | None = None,
        active: bool | None = None,
        endpoint: str | None = None,
        regenerate_secret: bool = False,
        skills: Iterable[str] | None = None,
        languages: Iterable[str] | None = None,
        trainee: bool | None = None,
        monitoring_consent: bool | None = None,
        now: datetime | None = None,
    ) -> ListenerSnapshot:
        """Change what is given; regenerate_secret makes a new SIP password, returned in the snapshot only.
        A new endpoint name makes one too: the stored digest is bound to the name."""
        new_pseudonym = None if pseudonym is None else valid_pseudonym(pseudonym)
        new_skills = None if skills is None else valid_words(skills, "skill")
        new_languages = None if languages is None else (valid_words(languages, "language") or ["fr"])
        new_endpoint = None if endpoint is None else valid_endpoint(endpoint)
        new_role = None if role is None else valid_role(role)
        now = aware(now or datetime.now(UTC))
        try:
            async with self._transaction() as session:
                listener = await find_listener(session, ref, for_update=True)
                await _refuse_duplicates(
                    session, pseudonym=new_pseudonym, endpoint=new_endpoint, besides=listener.id
                )
                renamed = new_endpoint is not None and new_endpoint != listener.endpoint
                password = _new_secret() if regenerate_secret or renamed else None
                changes: dict[str, Any] = {
                    "pseudonym": new_pseudonym,
                    "endpoint": new_endpoint,
                    "role": None if new_role is None else new_role.value,
                    "active": active,
                    "sip_ha1": None
                    if password is None
                    else sip_ha1(new_endpoint or listener.endpoint, password),
                    "skills": new_skills,
                    "languages": new_languages,
                    "trainee": trainee,
                    "monitoring_consent": monitoring_consent,
                }
                changed = False
                for name, value in changes.items():
                    if value is not None and getattr(listener, name) != value:
                        setattr(listener, name, value)
                        changed = True
                if changed:
                    listener.updated_at = now
                await session.flush()
                return listener_snapshot(listener, password=password)
        except IntegrityError as exc:
            raise DuplicateListener(f"pseudonym or endpoint of listener {ref!r} is already used") from exc

    async def remove_listener(self, ref: str) -> ListenerSnapshot:
        """Delete the listener; call records and audit rows keep its id."""
        async with self._transaction() as session:
            listener = await find_listener(session, ref, for_update=True)
            snapshot = listener_snapshot(listener)
            await session.delete(listener)
            return snapshot

    async def roster_version(self) -> RosterVersion:
        """Cheap to poll: tells when endpoints must be pushed to Asterisk again."""
        async with self._transaction() as session:
            count, last_change = (
                await session.execute(select(func.count(), func.max(Listener.updated_at)))
            ).one()
            return RosterVersion(count=count, last_change=last_change)


async def find_listener(session: AsyncSession, ref: str, *, for_update: bool = False) -> Listener:
    query = select(Listener).where(
        or_(Listener.id == ref, Listener.endpoint == ref, Listener.pseudonym == ref, Listener.code == ref)
    )
    if for_update:
        query = query.with_for_update()
    rows = list(await session.scalars(query))
    # A pseudonym may look like another listener's endpoint: ids win, then endpoints, then short codes.
    for column in ("id", "endpoint", "pseudonym", "code"):
        for row in rows:
            if getattr(row, column) == ref:
                return row
    raise ListenerNotFound(f"no listener with id, endpoint, pseudonym or code {ref!r}")


async def _refuse_duplicates(
    session: AsyncSession,
    *,
    pseudonym: str | None,
    endpoint: str | None,
    besides: str | None = None,
) -> None:
    for column, value in (("pseudonym", pseudonym), ("endpoint", endpoint)):
        if value is None:
            continue
        query = select(Listener.id).where(getattr(Listener, column) == value)
        if besides is not None:
            query = query.where(Listener.id != besides)
        if await session.scalar(query) is not None:
            raise DuplicateListener(f"{column} {value!r} is already used by another listener")


async def _free_listener_id(session: AsyncSession) -> str:
    # 32 random bits: collisions are rare but possible in a large roster, so check. Ids with a run of
    # five digits are drawn again: an id must never look like a phone number in a log.
    while True:
        candidate = f"l-{secrets.token_hex(4)}"
        if re.search(r"\d{5,}", candidate) is None and await session.get(Listener, candidate) is None:
            return candidate


async def _free_code(session: AsyncSession) -> str:
    # Three digits are quick to dial and to say; a larger roster moves on to four.
    for digits in (3, 3, 3, 4, 4, 4, 5, 5, 5, 6):
        candidate = str(secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1))
        if await session.scalar(select(Listener.id).where(Listener.code == candidate)) is None:
            return candidate
    raise InvalidListener("no free short code left for a new listener")


def _new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)
