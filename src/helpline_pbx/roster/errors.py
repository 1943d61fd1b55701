"""Roster failures, each with a stable code that only the edges map to messages or statuses."""

from typing import ClassVar


class RosterError(Exception):
    """Base of every failure the roster reports on purpose."""

    code: ClassVar[str] = "roster_error"


class ListenerNotFound(RosterError):
    code: ClassVar[str] = "listener_not_found"


class DuplicateListener(RosterError):
    code: ClassVar[str] = "listener_duplicate"


class InvalidListener(RosterError):
    code: ClassVar[str] = "listener_invalid"


class DatabaseUnavailable(RosterError):
    """The database could not be reached or stayed locked; the caller may retry or fall back."""

    code: ClassVar[str] = "database_unavailable"


class CallNotFound(RosterError):
    """No recent call by that id or code, or one that cannot be acted on."""

    code: ClassVar[str] = "call_not_found"
