"""What a listener's fields may hold: each validator returns the cleaned value or raises InvalidListener."""

import re
from collections.abc import Iterable
from datetime import datetime

from helpline_pbx.roster.errors import InvalidListener
from helpline_pbx.roster.states import ListenerState, Role, words
from helpline_pbx.roster.tables import CALL_ID_LENGTH, REASON_LENGTH
from helpline_pbx.timestamps import utc

ENDPOINT_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
PSEUDONYM_MAX_LENGTH = 64


def valid_words(values: Iterable[str], what: str) -> list[str]:
    """A listener's skills or languages: a set, kept sorted."""
    try:
        return sorted(words(values, what))
    except ValueError as exc:
        raise InvalidListener(str(exc)) from None


def valid_pseudonym(value: str) -> str:
    value = value.strip()
    if not value or len(value) > PSEUDONYM_MAX_LENGTH or not value.isprintable():
        raise InvalidListener(f"a pseudonym needs 1 to {PSEUDONYM_MAX_LENGTH} printable characters")
    return value


def valid_endpoint(value: str) -> str:
    if not ENDPOINT_PATTERN.fullmatch(value):
        raise InvalidListener(f"endpoint {value!r} must be 1 to 64 characters among a-z, 0-9, '_' and '-'")
    return value


def valid_role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise InvalidListener(f"role {value!r} is not one of {allowed}") from None


def valid_state(value: ListenerState | str) -> ListenerState:
    try:
        return ListenerState(value)
    except ValueError:
        allowed = ", ".join(state.value for state in ListenerState)
        raise InvalidListener(f"state {value!r} is not one of {allowed}") from None


def valid_call_id(value: str) -> str:
    if not value or len(value) > CALL_ID_LENGTH:
        raise InvalidListener(f"a call id needs 1 to {CALL_ID_LENGTH} characters")
    return value


def valid_reason(value: str | None) -> str | None:
    if value is not None and len(value) > REASON_LENGTH:
        raise InvalidListener(f"a reason has at most {REASON_LENGTH} characters")
    return value


def aware(value: datetime) -> datetime:
    return utc(value, "the roster")
