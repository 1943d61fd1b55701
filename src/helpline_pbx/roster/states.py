"""The closed vocabularies stored in the roster tables."""

from enum import StrEnum


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    PROFESSIONAL = "professional"
    SUPERVISOR = "supervisor"


class ListenerState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    RESTING = "resting"


class Outcome(StrEnum):
    SERVED = "served"
    ABANDONED = "abandoned"
    FALLBACK = "fallback"
