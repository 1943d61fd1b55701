"""The closed vocabularies stored in the roster tables."""

from enum import StrEnum

# One vocabulary for the core and the roster: the roster stores the states the core decides.
from helpline_pbx.core.commands import ListenerState

__all__ = ["ListenerState", "Outcome", "Role"]


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    PROFESSIONAL = "professional"
    SUPERVISOR = "supervisor"


class Outcome(StrEnum):
    SERVED = "served"
    ABANDONED = "abandoned"
    FALLBACK = "fallback"
