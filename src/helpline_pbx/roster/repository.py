"""The roster: listeners, their availability, claims, and anonymous call records.

Every method runs in its own short transaction and returns frozen snapshots, so no session is
ever held while the caller awaits other I/O (ARI, timers).
"""

import re
import secrets
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from helpline_pbx.phones import sip_ha1
from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.errors import (
    DuplicateListener,
    InvalidListener,
    ListenerNotFound,
)
from helpline_pbx.roster.snapshots import (
    CallRecordData,
    ListenerEventSnapshot,
    ListenerSnapshot,
    RosterVersion,
)
from helpline_pbx.roster.states import ListenerState, Outcome, Presence, Role, words
from helpline_pbx.roster.tables import (
    CALL_ID_LENGTH,
    REASON_LENGTH,
    CallRecord,
    Listener,
    ListenerEvent,
)
from helpline_pbx.timestamps import utc

ENDPOINT_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
PSEUDONYM_MAX_LENGTH = 64
SECRET_BYTES = 24  # token_urlsafe(24) gives 32 characters
BUSY_STATES = (ListenerState.RINGING, ListenerState.ON_CALL)
CALL_STATES = frozenset(BUSY_STATES)


class Roster:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self._sessions)

    # Listeners: administration

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
        pseudonym = _valid_pseudonym(pseudonym)
        skill_list = _valid_words(skills, "skill")
        language_list = _valid_words(languages, "language") or ["fr"]
        endpoint = _valid_endpoint(endpoint)
        valid_role = _valid_role(role)
        now = _aware(now or datetime.now(UTC))
        password = _new_secret()
        try:
            async with self._transaction() as session:
                await _refuse_duplicates(session, pseudonym=pseudonym, endpoint=endpoint)
                listener = Listener(
                    id=await _free_listener_id(session),
                    pseudonym=pseudonym,
                    endpoint=endpoint,
                    sip_ha1=sip_ha1(endpoint, password),
                    role=valid_role.value,
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
                return _listener_snapshot(listener, password=password)
        except IntegrityError as exc:
            # Another writer took the name between our check and our insert.
            raise DuplicateListener(
                f"pseudonym {pseudonym!r} or endpoint {endpoint!r} is already used"
            ) from exc

    async def get_listener(self, ref: str) -> ListenerSnapshot:
        """Find a listener by id, else endpoint, else pseudonym."""
        async with self._transaction() as session:
            return _listener_snapshot(await _find(session, ref))

    async def list_listeners(self, active_only: bool = False) -> list[ListenerSnapshot]:
        query = select(Listener).order_by(Listener.pseudonym)
        if active_only:
            query = query.where(Listener.active.is_(True))
        async with self._transaction() as session:
            return [_listener_snapshot(row) for row in await session.scalars(query)]

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
        new_pseudonym = None if pseudonym is None else _valid_pseudonym(pseudonym)
        new_skills = None if skills is None else _valid_words(skills, "skill")
        new_languages = None if languages is None else (_valid_words(languages, "language") or ["fr"])
        new_endpoint = None if endpoint is None else _valid_endpoint(endpoint)
        new_role = None if role is None else _valid_role(role)
        now = _aware(now or datetime.now(UTC))
        try:
            async with self._transaction() as session:
                listener = await _find(session, ref, for_update=True)
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
                return _listener_snapshot(listener, password=password)
        except IntegrityError as exc:
            raise DuplicateListener(f"pseudonym or endpoint of listener {ref!r} is already used") from exc

    async def remove_listener(self, ref: str) -> ListenerSnapshot:
        """Delete the listener; call records and audit rows keep its id."""
        async with self._transaction() as session:
            listener = await _find(session, ref, for_update=True)
            snapshot = _listener_snapshot(listener)
            await session.delete(listener)
            return snapshot

    async def roster_version(self) -> RosterVersion:
        """Cheap to poll: tells when endpoints must be pushed to Asterisk again."""
        async with self._transaction() as session:
            count, last_change = (
                await session.execute(select(func.count(), func.max(Listener.updated_at)))
            ).one()
            return RosterVersion(count=count, last_change=last_change)

    # Listeners: availability

    async def claim(self, listener_id: str, call_id: str, now: datetime) -> bool:
        """Atomically reserve a free listener for a call; False when someone else got there first.

        The WHERE clause is the whole decision: PostgreSQL re-checks it on the latest row
        version after waiting for a concurrent update, and SQLite runs writers one at a time,
        so two claims can never both change the row.
        """
        call_id = _valid_call_id(call_id)
        now = _aware(now)
        statement = (
            update(Listener)
            .where(Listener.id == listener_id, Listener.active.is_(True), _is_free(now))
            .values(
                state=ListenerState.RINGING.value,
                state_call_id=call_id,
                state_until=None,
                state_reason=None,
                state_changed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._transaction() as session:
            result = await session.execute(statement)
            if _rowcount(result) != 1:
                return False
            session.add(
                ListenerEvent(
                    listener_id=listener_id,
                    at=now,
                    state=ListenerState.RINGING.value,
                    reason="claimed",
                    call_id=call_id,
                )
            )
            return True

    async def set_state(
        self,
        listener_id: str,
        state: ListenerState | str,
        *,
        call_id: str | None = None,
        until: datetime | None = None,
        reason: str | None = None,
        now: datetime,
        idle_since: datetime | None = None,
        presence: Presence | None = None,
        owner: str | None = None,
    ) -> ListenerSnapshot:
        """Move a listener to `state` and append the transition to the audit, atomically.

        idle_since=None keeps the stored value; so does presence=None. A presence going on starts a shift.
        owner is the call-id prefix of the instance writing: a listener ringing or on a call of another
        instance sharing the roster is left as they are (that instance's claim stands; it frees them).
        """
        new_state = _valid_state(state)
        if new_state in CALL_STATES and not call_id:
            raise InvalidListener(f"state {new_state.value} needs a call id")
        if new_state is ListenerState.RESTING and until is None:
            raise InvalidListener("state resting needs an end time (until)")
        if call_id is not None:
            call_id = _valid_call_id(call_id)
        reason = _valid_reason(reason)
        now = _aware(now)
        async with self._transaction() as session:
            listener = await session.get(Listener, listener_id, with_for_update=True)
            if listener is None:
                raise ListenerNotFound(f"no listener {listener_id!r}")
            if owner is not None and _held_by_another(listener, owner, call_id):
                return _listener_snapshot(listener)
            # "Available since" means since then: the same state and reason written again (the service
            # restarting, reconnecting) is no change.
            if (listener.state, listener.state_reason) != (new_state.value, reason):
                listener.state_changed_at = now
            listener.state = new_state.value
            listener.state_call_id = call_id
            listener.state_until = None if until is None else _aware(until)
            listener.state_reason = reason
            if idle_since is not None:
                listener.idle_since = _aware(idle_since)
            if presence is not None:
                _apply_presence(listener, presence, reason, now)
            session.add(
                ListenerEvent(
                    listener_id=listener_id,
                    at=now,
                    state=new_state.value,
                    reason=reason,
                    call_id=call_id,
                )
            )
            await session.flush()
            return _listener_snapshot(listener)

    async def set_presence(
        self, ref: str, presence: Presence | str, *, reason: str | None = None, now: datetime
    ) -> ListenerSnapshot:
        """What the listener chose (log in, log out, pause, resume), as the CLI or a phone says it.

        The service sees the change at its next roster poll and moves the listener's state; the state
        itself is the service's to write.
        """
        try:
            wanted = Presence(presence)
        except ValueError:
            allowed = ", ".join(p.value for p in Presence)
            raise InvalidListener(f"presence {presence!r} is not one of {allowed}") from None
        reason = _valid_reason(reason)
        async with self._transaction() as session:
            listener = await _find(session, ref, for_update=True)
            _apply_presence(listener, wanted, reason, _aware(now))
            await session.flush()
            return _listener_snapshot(listener)

    async def calls_since(self, listener_id: str, since: datetime) -> int:
        """How many calls (practice included) the listener answered since `since`: a shift's count."""
        query = select(func.count()).where(
            CallRecord.listener_id == listener_id,
            CallRecord.answered_at.is_not(None),
            CallRecord.answered_at >= _aware(since),
        )
        async with self._transaction() as session:
            return int(await session.scalar(query) or 0)

    async def available_listeners(self, now: datetime) -> list[ListenerSnapshot]:
        """Active listeners a claim could take now, longest idle first."""
        now = _aware(now)
        query = (
            select(Listener)
            .where(Listener.active.is_(True), _is_free(now))
            .order_by(Listener.idle_since.asc().nulls_first(), Listener.id)
        )
        async with self._transaction() as session:
            return [_listener_snapshot(row) for row in await session.scalars(query)]

    async def repair(
        self,
        instance_live_call_ids: Iterable[str] | None = None,
        *,
        now: datetime,
        call_id_prefix: str | None = None,
    ) -> int:
        """Free listeners left ringing or on a call that no longer exists, after a restart.

        None means no call is live. With several instances sharing one roster, each instance repairs
        only its own calls: pass the prefix its call ids start with, and its live call ids.
        """
        live = frozenset(instance_live_call_ids or ())
        now = _aware(now)
        query = (
            select(Listener)
            .where(Listener.state.in_([state.value for state in BUSY_STATES]))
            .with_for_update()
        )
        if call_id_prefix is not None:
            query = query.where(Listener.state_call_id.startswith(call_id_prefix, autoescape=True))
        async with self._transaction() as session:
            repaired = 0
            for listener in await session.scalars(query):
                if listener.state_call_id in live:
                    continue
                session.add(
                    ListenerEvent(
                        listener_id=listener.id,
                        at=now,
                        state=ListenerState.AVAILABLE.value,
                        reason="repair",
                        call_id=listener.state_call_id,
                    )
                )
                listener.state = ListenerState.AVAILABLE.value
                listener.state_call_id = None
                listener.state_until = None
                listener.state_reason = "repair"
                listener.state_changed_at = now
                listener.idle_since = now
                repaired += 1
            return repaired

    async def listener_events(
        self, listener_id: str | None = None, *, limit: int = 100
    ) -> list[ListenerEventSnapshot]:
        """The newest audit rows, oldest first."""
        query = select(ListenerEvent).order_by(ListenerEvent.id.desc()).limit(limit)
        if listener_id is not None:
            query = query.where(ListenerEvent.listener_id == listener_id)
        async with self._transaction() as session:
            rows = list(await session.scalars(query))
        return [_event_snapshot(row) for row in reversed(rows)]

    async def purge_listener_events(self, older_than: datetime) -> int:
        statement = delete(ListenerEvent).where(ListenerEvent.at < _aware(older_than))
        async with self._transaction() as session:
            result = await session.execute(statement.execution_options(synchronize_session=False))
            return _rowcount(result)

    # Call records

    async def record_call(self, record: CallRecordData) -> bool:
        """Store a call's statistics once; False when this call id was already recorded."""
        values = _call_record_values(record)
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(CallRecord).values(values).on_conflict_do_nothing()
        async with self._transaction() as session:
            result = await session.execute(statement)
            return _rowcount(result) == 1

    async def call_record(self, call_id: str) -> CallRecordData | None:
        async with self._transaction() as session:
            row = await session.get(CallRecord, call_id)
            return None if row is None else _call_record_data(row)

    async def call_records(self, since: datetime | None = None) -> list[CallRecordData]:
        """Call records in order of arrival (those queued at or after `since`, if given)."""
        query = select(CallRecord).order_by(CallRecord.queued_at)
        if since is not None:
            query = query.where(CallRecord.queued_at >= _aware(since))
        async with self._transaction() as session:
            return [_call_record_data(row) for row in await session.scalars(query)]

    async def purge_call_records(self, older_than: datetime) -> int:
        """Delete the records of calls that ended before `older_than`; returns how many."""
        statement = delete(CallRecord).where(CallRecord.ended_at < _aware(older_than))
        async with self._transaction() as session:
            result = await session.execute(statement.execution_options(synchronize_session=False))
            return _rowcount(result)


def _rowcount(result: Result[Any]) -> int:
    # Only DML reaches here, whose results are cursor results with a row count.
    return cast(CursorResult[Any], result).rowcount


def _held_by_another(listener: Listener, owner: str, call_id: str | None) -> bool:
    """Ringing or on a call that is not the writer's: another instance claimed them."""
    held = listener.state_call_id
    return (
        listener.state in {state.value for state in BUSY_STATES}
        and held is not None
        and held != call_id
        and not held.startswith(owner)
    )


def _is_free(now: datetime) -> ColumnElement[bool]:
    return or_(
        Listener.state == ListenerState.AVAILABLE.value,
        and_(
            Listener.state == ListenerState.RESTING.value,
            Listener.state_until.is_not(None),
            Listener.state_until <= now,
        ),
    )


async def _find(session: AsyncSession, ref: str, *, for_update: bool = False) -> Listener:
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


def _apply_presence(listener: Listener, presence: Presence, reason: str | None, now: datetime) -> None:
    # A shift starts at log in, and again after a break (a pause for the shift limit).
    returning = listener.presence == Presence.OFF.value or listener.presence_reason == "shift_limit"
    if presence is Presence.ON and listener.presence != Presence.ON.value and returning:
        listener.shift_started_at = now
    if presence is Presence.OFF:
        listener.shift_started_at = None
    listener.presence = presence.value
    listener.presence_reason = None if presence is Presence.ON else reason


def _new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def _valid_words(values: Iterable[str], what: str) -> list[str]:
    """A listener's skills or languages: a set, kept sorted."""
    try:
        return sorted(words(values, what))
    except ValueError as exc:
        raise InvalidListener(str(exc)) from None


def _valid_pseudonym(value: str) -> str:
    value = value.strip()
    if not value or len(value) > PSEUDONYM_MAX_LENGTH or not value.isprintable():
        raise InvalidListener(f"a pseudonym needs 1 to {PSEUDONYM_MAX_LENGTH} printable characters")
    return value


def _valid_endpoint(value: str) -> str:
    if not ENDPOINT_PATTERN.fullmatch(value):
        raise InvalidListener(f"endpoint {value!r} must be 1 to 64 characters among a-z, 0-9, '_' and '-'")
    return value


def _valid_role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise InvalidListener(f"role {value!r} is not one of {allowed}") from None


def _valid_state(value: ListenerState | str) -> ListenerState:
    try:
        return ListenerState(value)
    except ValueError:
        allowed = ", ".join(state.value for state in ListenerState)
        raise InvalidListener(f"state {value!r} is not one of {allowed}") from None


def _valid_call_id(value: str) -> str:
    if not value or len(value) > CALL_ID_LENGTH:
        raise InvalidListener(f"a call id needs 1 to {CALL_ID_LENGTH} characters")
    return value


def _valid_reason(value: str | None) -> str | None:
    if value is not None and len(value) > REASON_LENGTH:
        raise InvalidListener(f"a reason has at most {REASON_LENGTH} characters")
    return value


def _aware(value: datetime) -> datetime:
    return utc(value, "the roster")


def _listener_snapshot(row: Listener, *, password: str | None = None) -> ListenerSnapshot:
    return ListenerSnapshot(
        id=row.id,
        pseudonym=row.pseudonym,
        endpoint=row.endpoint,
        sip_ha1=row.sip_ha1,
        sip_password=password,
        role=Role(row.role),
        active=row.active,
        state=ListenerState(row.state),
        state_call_id=row.state_call_id,
        state_until=row.state_until,
        state_reason=row.state_reason,
        idle_since=row.idle_since,
        state_changed_at=row.state_changed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        skills=frozenset(row.skills or ()),
        languages=frozenset(row.languages or ("fr",)),
        presence=Presence(row.presence),
        presence_reason=row.presence_reason,
        code=row.code,
        trainee=row.trainee,
        monitoring_consent=row.monitoring_consent,
        shift_started_at=row.shift_started_at,
    )


def _event_snapshot(row: ListenerEvent) -> ListenerEventSnapshot:
    return ListenerEventSnapshot(
        id=row.id,
        listener_id=row.listener_id,
        at=row.at,
        state=ListenerState(row.state),
        reason=row.reason,
        call_id=row.call_id,
    )


def _call_record_values(record: CallRecordData) -> dict[str, Any]:
    try:
        outcome = Outcome(record.outcome)
    except ValueError:
        raise ValueError(f"unknown call outcome {record.outcome!r}") from None
    _valid_call_id(record.call_id)
    for name, text in (("line", record.line), ("instance", record.instance)):
        if not text or len(text) > 64:
            raise ValueError(f"a call record's {name} needs 1 to 64 characters")

    def optional(value: datetime | None) -> datetime | None:
        return None if value is None else _aware(value)

    return {
        "call_id": record.call_id,
        "line": record.line,
        "queued_at": _aware(record.queued_at),
        "first_offered_at": optional(record.first_offered_at),
        "answered_at": optional(record.answered_at),
        "ended_at": _aware(record.ended_at),
        "outcome": outcome.value,
        "listener_id": record.listener_id,
        "offers": record.offers,
        "wait_seconds": record.wait_seconds,
        "talk_seconds": record.talk_seconds,
        "instance": record.instance,
        "practice": record.practice,
    }


def _call_record_data(row: CallRecord) -> CallRecordData:
    return CallRecordData(
        call_id=row.call_id,
        line=row.line,
        queued_at=row.queued_at,
        ended_at=row.ended_at,
        outcome=Outcome(row.outcome),
        instance=row.instance,
        first_offered_at=row.first_offered_at,
        answered_at=row.answered_at,
        listener_id=row.listener_id,
        offers=row.offers,
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
        practice=row.practice,
    )
