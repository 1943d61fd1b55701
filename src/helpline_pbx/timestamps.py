"""Instants as the roster and the rules take them: timezone-aware, so no local clock ever creeps in."""

from datetime import UTC, datetime


def require_aware(value: datetime, what: str) -> datetime:
    """value itself; ValueError if it has no timezone (`what` needs aware datetimes)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} need timezone-aware datetimes")
    return value


def utc(value: datetime, what: str) -> datetime:
    """value in UTC, as the database stores it; ValueError if it has no timezone."""
    return require_aware(value, what).astimezone(UTC)
