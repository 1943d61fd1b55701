"""The closed vocabularies stored in the roster tables."""

import re
from enum import StrEnum

# One vocabulary for the core and the roster: the roster stores the states the core decides.
from helpline_pbx.core.commands import ListenerState

__all__ = ["WORD_PATTERN", "ListenerState", "Outcome", "Role"]

# A skill, a kind of support or a language code: the same word on a line and on a listener, or routing
# could require what nobody can hold.
WORD_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class Role(StrEnum):
    VOLUNTEER = "volunteer"
    PROFESSIONAL = "professional"
    SUPERVISOR = "supervisor"


class Outcome(StrEnum):
    SERVED = "served"
    ABANDONED = "abandoned"
    FALLBACK = "fallback"
