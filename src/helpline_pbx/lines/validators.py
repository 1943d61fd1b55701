"""What a line's fields may hold: each validator returns the cleaned value or raises InvalidLine."""

from __future__ import annotations

import re
from collections.abc import Iterable

from helpline_pbx.hours import DEFAULT_TIMEZONE, HoursError, OpeningHours
from helpline_pbx.lines.errors import InvalidHours, InvalidLine
from helpline_pbx.lines.tables import AUDIENCE_MAX_LENGTH, LABEL_MAX_LENGTH, PROMPT_MAX_LENGTH
from helpline_pbx.roster.states import words
from helpline_pbx.tokens import NUMBER_SEPARATORS

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
PROMPT_PATTERN = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+){0,3}")
NUMBER_PATTERN = re.compile(r"\d{3,15}")
RING_TIMEOUT_RANGE = range(5, 301)


def parse_hours(
    weekly: str = "24/7", exceptions: str | Iterable[str] = (), *, timezone: str = DEFAULT_TIMEZONE
) -> OpeningHours:
    """OpeningHours.parse() whose errors are the roster's InvalidHours."""
    try:
        return OpeningHours.parse(weekly, exceptions, timezone=timezone)
    except HoursError as exc:
        raise InvalidHours(f"invalid opening hours: {exc}") from exc


def normalize_number(text: str) -> str:
    """Digits only: spaces, dots, dashes and a leading "+" are dropped ("+33 800…" gives "33800…")."""
    digits = NUMBER_SEPARATORS.sub("", text.strip()).removeprefix("+")
    if not NUMBER_PATTERN.fullmatch(digits):
        raise InvalidLine(f"{text!r} is not a phone number (3 to 15 digits)")
    return digits


def valid_name(value: str) -> str:
    value = value.strip()
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidLine(
            f"line name {value!r} must be 1 to 32 characters among a-z, 0-9, '_' and '-', "
            "starting with a letter"
        )
    return value


def valid_label(value: str) -> str:
    value = value.strip()
    if not value or len(value) > LABEL_MAX_LENGTH or not value.isprintable():
        raise InvalidLine(f"a line's label needs 1 to {LABEL_MAX_LENGTH} printable characters")
    return value


def valid_audience(value: str) -> str:
    value = value.strip()
    if len(value) > AUDIENCE_MAX_LENGTH or not value.isprintable():
        raise InvalidLine(f"a line's audience has at most {AUDIENCE_MAX_LENGTH} printable characters")
    return value


def valid_tokens(values: Iterable[str], what: str) -> list[str]:
    """A line's kinds of support or skills, in the order given (the menu offers them in that order)."""
    try:
        return words(values, what)
    except ValueError as exc:
        raise InvalidLine(str(exc)) from None


def valid_language(value: str) -> str:
    value = value.strip()
    if not LANGUAGE_PATTERN.fullmatch(value) or len(value) > 16:
        raise InvalidLine(f"language {value!r} must be a short BCP 47 tag such as fr, en or fr-BE")
    return value


def valid_wait(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= 3600:
        raise InvalidLine("the wait before professionals are tried must be 0 to 3600 seconds")
    return value


# The durations a line may set, in seconds, and their bounds.
SECONDS_RANGES = {
    "rest_after_call": range(0, 3601),
    "announce_every": range(15, 3601),
    "choice_after": range(10, 3601),
    "max_wait": range(0, 7201),
    "service_level": range(1, 3601),
    "short_abandon": range(0, 601),
}


def valid_seconds(key: str, value: int | None) -> int | None:
    bounds = SECONDS_RANGES[key]
    if value is not None and value not in bounds:
        what = key.replace("_", " ")
        raise InvalidLine(f"{what} must be {bounds.start} to {bounds.stop - 1} seconds")
    return value


def valid_ring_timeout(value: int | None) -> int | None:
    if value is not None and value not in RING_TIMEOUT_RANGE:
        low, high = RING_TIMEOUT_RANGE.start, RING_TIMEOUT_RANGE.stop - 1
        raise InvalidLine(f"ring timeout {value} must be {low} to {high} seconds")
    return value


def valid_numbers(values: Iterable[str]) -> list[str]:
    numbers: list[str] = []
    for value in values:
        number = normalize_number(value)
        if number not in numbers:
            numbers.append(number)
    return numbers


def valid_prompt(value: str, what: str) -> str:
    if len(value) > PROMPT_MAX_LENGTH or not PROMPT_PATTERN.fullmatch(value):
        raise InvalidLine(
            f"{what} message {value!r} must be a prompt name such as 'closed' or 'jeunes/closed'"
        )
    return value
