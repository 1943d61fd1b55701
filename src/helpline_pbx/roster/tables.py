"""Declarative models of the roster database.

Every timestamp is a timezone-aware UTC datetime in Python. SQLite has no time zone type, so
`UTCDateTime` stores naive UTC there (its text form then sorts and compares correctly in SQL)
and gives the zone back on load.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Dialect, Float, Integer, MetaData, String, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from helpline_pbx.roster.states import OUTCOMES, ListenerState, Presence, Role, SupervisionMode

# Stable constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LISTENER_ID_LENGTH = 16
CALL_ID_LENGTH = 128
REASON_LENGTH = 200


def _one_of(column: str, values: Iterable[str]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the roster; pass a timezone-aware one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"unexpected timestamp value of type {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Listener(Base):
    """A person who answers calls, known to the team by a pseudonym only."""

    __tablename__ = "listeners"
    __table_args__ = (
        CheckConstraint(_one_of("role", Role), name="role"),
        CheckConstraint(_one_of("state", ListenerState), name="state"),
        CheckConstraint(_one_of("presence", Presence), name="presence"),
    )

    id: Mapped[str] = mapped_column(String(LISTENER_ID_LENGTH), primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str] = mapped_column(String(64), unique=True)
    # The SIP digest HA1, md5(endpoint:realm:password), which is all Asterisk needs: the password itself is
    # shown once (add, or a new password) and never stored. It changes with the endpoint name.
    sip_ha1: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool]
    state: Mapped[str] = mapped_column(String(16))
    state_call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH))
    state_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Changes on profile edits only, not on state changes, so roster_version() stays quiet
    # while calls come and go.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What routing matches against a line's needs (lists of short words, e.g. "harcelement", "fr").
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["fr"])
    # On duty, off duty or paused: what the listener chose (from their phone or the CLI), or what the line
    # decided for them (paused after missed offers, a shift break). `state` says what they are doing.
    presence: Mapped[str] = mapped_column(String(8), default=Presence.OFF.value, server_default="off")
    presence_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    # Digits a supervisor dials to reach this listener's call ("*31" + code); never a phone number.
    code: Mapped[str | None] = mapped_column(String(6), unique=True)
    # In training: takes practice calls, and real ones only where a line allows it under supervision.
    trainee: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Agreed that a supervisor may listen to their calls (trainees may always be supervised).
    monitoring_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When the current shift began (log in, or the end of a shift break): shift limits count from here.
    shift_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CallRecord(Base):
    """Anonymous statistics of one call: nothing here may identify the caller."""

    __tablename__ = "call_records"
    __table_args__ = (CheckConstraint(_one_of("outcome", OUTCOMES), name="outcome"),)

    call_id: Mapped[str] = mapped_column(String(CALL_ID_LENGTH), primary_key=True)
    line: Mapped[str] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    # No foreign key: removing a listener must never delete or block the statistics.
    listener_id: Mapped[str | None] = mapped_column(String(LISTENER_ID_LENGTH), index=True)
    offers: Mapped[int] = mapped_column(Integer)
    wait_seconds: Mapped[float] = mapped_column(Float)
    talk_seconds: Mapped[float] = mapped_column(Float)
    instance: Mapped[str] = mapped_column(String(64))
    # A practice call ("mise en situation"): kept apart in every statistic.
    practice: Mapped[bool] = mapped_column(default=False, server_default=false())


class ListenerEvent(Base):
    """Append-only audit of listener state transitions."""

    __tablename__ = "listener_events"
    __table_args__ = (CheckConstraint(_one_of("state", ListenerState), name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key, for the same reason as call_records.listener_id.
    listener_id: Mapped[str] = mapped_column(String(LISTENER_ID_LENGTH), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH))


TOKEN_LENGTH = 64


class CallerBar(Base):
    """A caller barred by their pseudonymous token, for a while and for a stated reason.

    The token is keyed and rotates with the key (see tokens.py): once the key is destroyed, nothing here
    can be linked to a number any more.
    """

    __tablename__ = "caller_bars"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LENGTH), index=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    # A listener id, or "cli": who decided, never who called.
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CallerSighting(Base):
    """One arrival of a tokened caller: what rate limits and the "called N times" hint count."""

    __tablename__ = "caller_sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(TOKEN_LENGTH), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # The service instance whose screen saw the caller (None: before revision 0009).
    instance: Mapped[str | None] = mapped_column(String(64))


class RecentCall(Base):
    """A recent call's spoken code ("Écoute 4821") and token, so a supervisor can bar that caller by the
    code they heard. Kept a few days only."""

    __tablename__ = "recent_calls"

    call_id: Mapped[str] = mapped_column(String(CALL_ID_LENGTH), primary_key=True)
    code: Mapped[str] = mapped_column(String(8), index=True)
    line: Mapped[str] = mapped_column(String(64))
    token: Mapped[str | None] = mapped_column(String(TOKEN_LENGTH))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class DailyStats(Base):
    """Aggregates of purged call records: what stays after the retention period.

    The new columns of revision 0011 are None in rows aggregated before it: unknown, not zero.
    """

    __tablename__ = "daily_stats"

    # YYYY-MM-DD, a local day in `timezone` (the line's zone when it was purged; UTC before revision 0011).
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Practice calls are counted apart from real ones.
    practice: Mapped[bool] = mapped_column(primary_key=True, default=False, server_default=false())
    calls: Mapped[int] = mapped_column(Integer)
    served: Mapped[int] = mapped_column(Integer)
    abandoned: Mapped[int] = mapped_column(Integer)
    fallback: Mapped[int] = mapped_column(Integer)
    alternatives: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    wait_seconds_total: Mapped[float] = mapped_column(Float)
    talk_seconds_total: Mapped[float] = mapped_column(Float)
    wait_seconds_max: Mapped[float] = mapped_column(Float)
    # Callers turned away while the line was closed or inactive (None: aggregated before revision 0012).
    closed: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Abandoned within the short-abandon threshold, and answered within the service level, as judged by the
    # line's thresholds at purge time (kept beside them: a threshold changed later does not rewrite history).
    short_abandons: Mapped[int | None] = mapped_column(Integer)
    answered_in_service_level: Mapped[int | None] = mapped_column(Integer)
    service_level_seconds: Mapped[int | None] = mapped_column(Integer)
    short_abandon_seconds: Mapped[int | None] = mapped_column(Integer)
    # wait_seconds_total covers every call; the speed of answer needs the answered calls' waits alone.
    answered_wait_seconds_total: Mapped[float | None] = mapped_column(Float)
    # Rest taken after answered calls (listener audit), for the handle time.
    rest_seconds_total: Mapped[float | None] = mapped_column(Float)
    # Answered calls counted by wait, one count per bucket of console.statistics.WAIT_BUCKETS then one for
    # longer waits: enough for an approximate p90 once the waits themselves are gone.
    wait_histogram: Mapped[list[int] | None] = mapped_column(JSON)
    # Calls by local hour of their arrival (24 counts), for the heat map.
    hourly: Mapped[list[int] | None] = mapped_column(JSON)


class TurnedAway(Base):
    """A caller who reached a line while it was closed or inactive and heard its message: counted, nothing
    more (the line, when, why)."""

    __tablename__ = "turned_away"
    __table_args__ = (CheckConstraint("reason IN ('closed', 'inactive')", name="reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    practice: Mapped[bool] = mapped_column(default=False, server_default=false())


class Debrief(Base):
    """A listener's request for a debrief after a difficult call, listed until a supervisor handles it."""

    __tablename__ = "debriefs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    listener_id: Mapped[str] = mapped_column(String(LISTENER_ID_LENGTH), index=True)
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A supervisor's listener id, or "cli".
    handled_by: Mapped[str | None] = mapped_column(String(64))


class Supervision(Base):
    """Every time a supervisor listened to, coached or joined a listener's call: who, whom, when, how."""

    __tablename__ = "supervisions"
    __table_args__ = (CheckConstraint(_one_of("mode", SupervisionMode), name="mode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    supervisor_id: Mapped[str] = mapped_column(String(LISTENER_ID_LENGTH))
    listener_id: Mapped[str] = mapped_column(String(LISTENER_ID_LENGTH))
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LENGTH))
    mode: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
