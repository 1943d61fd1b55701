"""The lines' tables.

Lists (support, skills) and hours are JSON columns: a line is always read whole, edited rarely and never
searched by skill or weekday, so child tables would only add joins. The numbers get a table of their own
because the database must enforce that one number reaches one line, and calls look lines up by number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpline_pbx.roster.tables import Base, UTCDateTime

LINE_ID_LENGTH = 16
LABEL_MAX_LENGTH = 64
AUDIENCE_MAX_LENGTH = 500
PROMPT_MAX_LENGTH = 128


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
    # The board's and the statistics' thresholds, in seconds (None: the service's defaults): a call answered
    # within `service_level` counts towards the service level, and a wait beyond it raises an alert; a caller
    # who hangs up within `short_abandon` is a short abandon, left out of the service level.
    service_level: Mapped[int | None] = mapped_column(Integer)
    short_abandon: Mapped[int | None] = mapped_column(Integer)
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
