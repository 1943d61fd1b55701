"""What a listener's fields may hold: each validator returns the cleaned value or raises InvalidListener."""

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from helpline_pbx.roster.errors import InvalidListener
from helpline_pbx.roster.states import ListenerState, Presence, Role, words
from helpline_pbx.roster.tables import CALL_ID_LENGTH, REASON_LENGTH
from helpline_pbx.timestamps import utc

ENDPOINT_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
PSEUDONYM_MAX_LENGTH = 64
W = TypeVar("W", bound=StrEnum)


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


def one_of(vocabulary: type[W], value: W | str, what: str) -> W:
    """The word of a closed vocabulary (role, state, presence) that `value` names."""
    try:
        return vocabulary(value)
    except ValueError:
        allowed = ", ".join(word.value for word in vocabulary)
        raise InvalidListener(f"{what} {value!r} is not one of {allowed}") from None


def valid_role(value: Role | str) -> Role:
    return one_of(Role, value, "role")


def valid_state(value: ListenerState | str) -> ListenerState:
    return one_of(ListenerState, value, "state")


def valid_presence(value: Presence | str) -> Presence:
    return one_of(Presence, value, "presence")


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
