"""The closed vocabularies stored in the roster tables."""

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import cast, get_args

# One vocabulary for the core and the roster: the roster stores the states, roles and outcomes the core
# decides on.
from helpline_pbx.core.commands import ListenerState, Outcome, Presence
from helpline_pbx.core.roles import Role

__all__ = [
    "OUTCOMES",
    "WORD_PATTERN",
    "ListenerState",
    "Outcome",
    "Presence",
    "Role",
    "SupervisionMode",
    "outcome_of",
    "words",
]

# A skill, a kind of support or a language code: the same word on a line and on a listener, or routing
# could require what nobody can hold.
WORD_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def words(values: Iterable[str], what: str) -> list[str]:
    """Short lowercase words (skills, kinds of support, language codes), each once, in the order given;
    blank values are skipped. ValueError names the first that is not such a word."""
    found: list[str] = []
    for value in values:
        word = value.strip().lower()
        if not word:
            continue
        if not WORD_PATTERN.fullmatch(word):
            raise ValueError(
                f"{what} {value!r} must be 1 to 32 characters among a-z, 0-9, '_' and '-' (no accents)"
            )
        if word not in found:
            found.append(word)
    return found


# How a call ended, as the core writes it and call_records stores it.
OUTCOMES: tuple[str, ...] = get_args(Outcome)


def outcome_of(value: str) -> Outcome:
    """The outcome `value` names; ValueError for any other word."""
    if value not in OUTCOMES:
        raise ValueError(f"unknown call outcome {value!r}")
    return cast(Outcome, value)


class SupervisionMode(StrEnum):
    LISTEN = "listen"  # the supervisor hears both sides, nobody hears them
    COACH = "coach"  # only the listener hears the supervisor
    JOIN = "join"  # everyone hears everyone
