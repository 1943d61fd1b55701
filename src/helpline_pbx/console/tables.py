"""The console's tables: who may sign in, their sessions, and what they changed.

Nothing here is about callers. An account may be tied to a listener of the roster (a listener sees only
their own presence and history); removing the listener leaves the account and the audit intact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from helpline_pbx.roster.tables import LISTENER_ID_LENGTH, Base, UTCDateTime

ACCOUNT_ROLES = ("coordinator", "supervisor", "listener")
USERNAME_LENGTH = 64


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("role IN ('coordinator', 'supervisor', 'listener')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    # Argon2id, in its own encoded form (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # No foreign key: a listener removed from the roster must not take the account's audit with it.
    listener_id: Mapped[str | None] = mapped_column(String(LISTENER_ID_LENGTH))
    active: Mapped[bool]
    # A password the CLI printed once must be changed at the first sign-in.
    must_change_password: Mapped[bool]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsoleSessionRow(Base):
    __tablename__ = "console_sessions"

    # The SHA-256 of the cookie's secret: a copy of the table opens no session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ConsoleAuditRow(Base):
    """Every change made from the console or the accounts command: who, what, when."""

    __tablename__ = "console_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # A username, or "cli".
    actor: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(String(500))
