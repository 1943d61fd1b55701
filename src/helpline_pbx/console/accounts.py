"""Who may use the console: accounts with Argon2 passwords, their sessions, and the audit of changes.

Sign-in failures count per account: after MAX_FAILURES in a row the account is locked for LOCKOUT, whatever
password comes next (the web edge also limits attempts per address). A session is a random secret in an
HttpOnly cookie; the database keeps only its SHA-256, with the session's CSRF token and its expiry (idle
and absolute). Hashing runs in a thread: an Argon2 verification takes tens of milliseconds, and the event
loop it would block is the one carrying the calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.console.tables import AccountRow, ConsoleAuditRow, ConsoleSessionRow
from helpline_pbx.roster.database import session_factory, transaction
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.tables import Listener

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Verified when the username is unknown, so that an unknown name costs as long as a wrong password.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class AccountRole(StrEnum):
    COORDINATOR = "coordinator"
    SUPERVISOR = "supervisor"
    LISTENER = "listener"


class AccountError(RosterError):
    """A refused account operation, said in one sentence for the person who asked."""

    code: ClassVar[str] = "account_error"


class SignInRefused(AccountError):
    code: ClassVar[str] = "sign_in_refused"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    role: AccountRole
    listener_id: str | None
    active: bool
    must_change_password: bool

    @property
    def staff(self) -> bool:
        """Coordinators and supervisors: they see the whole line."""
        return self.role is not AccountRole.LISTENER


@dataclass(frozen=True, slots=True)
class Session:
    account: Account
    csrf: str
    expires_at: datetime
    # The cookie's value: given once, when the session opens.
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: str | None


def _account(row: AccountRow) -> Account:
    return Account(
        row.id, row.username, AccountRole(row.role), row.listener_id, row.active, row.must_change_password
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise AccountError("a username is 2 to 64 characters: lower-case letters, digits, '.', '_' or '-'")
    return username


def valid_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def _aware(value: datetime | None) -> datetime:
    return datetime.now(UTC) if value is None else value.astimezone(UTC)


class Accounts:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def add(
        self,
        username: str,
        role: AccountRole | str,
        *,
        listener: str | None = None,
        actor: str = "cli",
        now: datetime | None = None,
    ) -> tuple[Account, str]:
        """A new account and its one-time password (to be changed at the first sign-in). `listener` ties it
        to a listener of the roster, by id or pseudonym; a listener account needs one."""
        username = valid_username(username)
        try:
            role = AccountRole(role)
        except ValueError:
            raise AccountError(f"no role {role!r}: coordinator, supervisor or listener") from None
        if role is AccountRole.LISTENER and listener is None:
            raise AccountError("a listener's account names its listener (--listener ID or pseudonym)")
        password = one_time_password()
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        now = _aware(now)
        async with transaction(self._sessions) as session:
            if await session.scalar(select(AccountRow.id).where(AccountRow.username == username)):
                raise AccountError(f"an account named {username!r} exists already")
            listener_id = None
            if listener is not None:
                listener_id = await session.scalar(
                    select(Listener.id).where((Listener.id == listener) | (Listener.pseudonym == listener))
                )
                if listener_id is None:
                    raise AccountError(f"no listener {listener!r}")
            row = AccountRow(
                username=username,
                password_hash=hashed,
                role=role.value,
                listener_id=listener_id,
                active=True,
                must_change_password=True,
                failed_logins=0,
                created_at=now,
            )
            session.add(row)
            session.add(_audit(actor, "account_added", username, f"role={role.value}", now))
            await session.flush()
            return _account(row), password

    async def all(self) -> list[Account]:
        async with transaction(self._sessions) as session:
            rows = (await session.scalars(select(AccountRow).order_by(AccountRow.username))).all()
            return [_account(row) for row in rows]

    async def get(self, username: str) -> Account:
        async with transaction(self._sessions) as session:
            row = await session.scalar(select(AccountRow).where(AccountRow.username == username))
            if row is None:
                raise AccountError(f"no account {username!r}")
            return _account(row)

    async def reset_password(self, username: str, *, actor: str = "cli", now: datetime | None = None) -> str:
        """A new one-time password; the account's sessions close and its lock lifts."""
        password = one_time_password()
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        now = _aware(now)
        async with transaction(self._sessions) as session:
            row = await session.scalar(select(AccountRow).where(AccountRow.username == username))
            if row is None:
                raise AccountError(f"no account {username!r}")
            row.password_hash = hashed
            row.must_change_password = True
            row.failed_logins = 0
            row.locked_until = None
            await session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.account_id == row.id))
            session.add(_audit(actor, "password_reset", username, None, now))
        return password

    async def set_active(
        self, username: str, active: bool, *, actor: str = "cli", now: datetime | None = None
    ) -> None:
        now = _aware(now)
        async with transaction(self._sessions) as session:
            row = await session.scalar(select(AccountRow).where(AccountRow.username == username))
            if row is None:
                raise AccountError(f"no account {username!r}")
            row.active = active
            if not active:
                await session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.account_id == row.id))
            session.add(
                _audit(actor, "account_activated" if active else "account_deactivated", username, None, now)
            )

    async def sign_in(self, username: str, password: str, *, now: datetime | None = None) -> Session:
        """A new session, or SignInRefused saying only what the person may know (never which of the name or
        the password was wrong)."""
        now = _aware(now)
        async with transaction(self._sessions) as session:
            row = await session.scalar(select(AccountRow).where(AccountRow.username == username))
            hashed = row.password_hash if row is not None and row.active else _DUMMY_HASH
            locked_until = None if row is None else row.locked_until
        if locked_until is not None and locked_until > now:
            minutes = max(1, round((locked_until - now).total_seconds() / 60))
            raise SignInRefused(f"too many failed sign-ins: try again in {minutes} min")
        good = await asyncio.to_thread(_verify, hashed, password)
        if row is None or not row.active:
            raise SignInRefused("wrong username or password")
        opened: Session | None = None
        async with transaction(self._sessions) as session:
            fresh = await session.get(AccountRow, row.id)
            if fresh is not None and fresh.active and good:
                fresh.failed_logins = 0
                fresh.locked_until = None
                secret = secrets.token_urlsafe(32)
                csrf = secrets.token_urlsafe(32)
                expires = now + SESSION_IDLE
                session.add(
                    ConsoleSessionRow(
                        id=_digest(secret),
                        account_id=fresh.id,
                        csrf=csrf,
                        created_at=now,
                        last_seen_at=now,
                        expires_at=expires,
                    )
                )
                opened = Session(_account(fresh), csrf, expires, secret)
            elif fresh is not None and fresh.active:
                # The failure is counted (and committed) before the refusal is raised.
                fresh.failed_logins += 1
                if fresh.failed_logins >= MAX_FAILURES:
                    fresh.locked_until = now + LOCKOUT
                    fresh.failed_logins = 0
                    session.add(_audit(fresh.username, "account_locked", fresh.username, None, now))
        if opened is None:
            raise SignInRefused("wrong username or password")
        return opened

    async def session(self, secret: str, *, now: datetime | None = None) -> Session | None:
        """The live session this cookie opens, its idle expiry pushed back; None when expired or unknown."""
        now = _aware(now)
        async with transaction(self._sessions) as session:
            found = await session.get(ConsoleSessionRow, _digest(secret))
            if found is None:
                return None
            account = await session.get(AccountRow, found.account_id)
            if found.expires_at <= now or account is None or not account.active:
                await session.delete(found)
                return None
            found.last_seen_at = now
            found.expires_at = min(now + SESSION_IDLE, found.created_at + SESSION_MAX)
            return Session(_account(account), found.csrf, found.expires_at)

    async def sign_out(self, secret: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id == _digest(secret)))

    async def change_password(
        self, account_id: int, current: str, new: str, *, now: datetime | None = None
    ) -> None:
        valid_password(new)
        if new == current:
            raise AccountError("the new password must differ from the current one")
        async with transaction(self._sessions) as session:
            row = await session.get(AccountRow, account_id)
            hashed = None if row is None else row.password_hash
        if hashed is None or not await asyncio.to_thread(_verify, hashed, current):
            raise AccountError("the current password is wrong")
        new_hash = await asyncio.to_thread(_HASHER.hash, new)
        now = _aware(now)
        async with transaction(self._sessions) as session:
            await session.execute(
                update(AccountRow)
                .where(AccountRow.id == account_id)
                .values(password_hash=new_hash, must_change_password=False)
            )
            username = await session.scalar(select(AccountRow.username).where(AccountRow.id == account_id))
            session.add(_audit(username or "?", "password_changed", username, None, now))

    async def audit(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: str | None = None,
        *,
        now: datetime | None = None,
    ) -> None:
        async with transaction(self._sessions) as session:
            session.add(_audit(actor, action, target, detail, _aware(now)))

    async def audit_entries(self, limit: int = 200) -> list[AuditEntry]:
        async with transaction(self._sessions) as session:
            rows = (
                await session.scalars(
                    select(ConsoleAuditRow).order_by(ConsoleAuditRow.id.desc()).limit(limit)
                )
            ).all()
            return [AuditEntry(r.at, r.actor, r.action, r.target, r.detail) for r in rows]

    async def purge_sessions(self, *, now: datetime | None = None) -> int:
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= _aware(now))
            )
            return int(getattr(result, "rowcount", 0) or 0)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _audit(actor: str, action: str, target: str | None, detail: str | None, now: datetime) -> ConsoleAuditRow:
    return ConsoleAuditRow(at=now, actor=actor[:64], action=action, target=target, detail=detail)
