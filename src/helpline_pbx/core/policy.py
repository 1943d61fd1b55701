"""The timings and limits the call queue applies, in seconds."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from helpline_pbx.core.roles import Role


@dataclass(frozen=True, slots=True)
class ShiftLimit:
    """How long a listener of a role stays on duty, and how many calls they take, before a break."""

    max_on_duty: float | None = None
    max_calls: int | None = None

    def __post_init__(self) -> None:
        if self.max_on_duty is not None and not self.max_on_duty > 0:
            raise ValueError("a shift's max_on_duty must be a positive number of seconds")
        if self.max_calls is not None and self.max_calls < 1:
            raise ValueError("a shift's max_calls must be at least 1")


# Listening to people in crisis is tiring: four hours or twelve calls, then a break. Supervisors are on
# duty to support the others, so their limit is time only.
DEFAULT_SHIFT_LIMITS: Mapping[str, ShiftLimit] = MappingProxyType(
    {
        Role.VOLUNTEER: ShiftLimit(max_on_duty=4 * 3600, max_calls=12),
        Role.PROFESSIONAL: ShiftLimit(max_on_duty=6 * 3600, max_calls=20),
        Role.SUPERVISOR: ShiftLimit(max_on_duty=8 * 3600),
    }
)


@dataclass(frozen=True, slots=True)
class Policy:
    """How long things last; validated once so the queue never schedules a negative timer."""

    ring_timeout: float = 20.0
    rest_after_call: float = 30.0
    missed_offer_delay: float = 10.0
    declined_offer_delay: float = 10.0
    # After this many offers missed in a row (no answer, phone unreachable) the listener is paused;
    # 0 never pauses anyone.
    max_missed_offers: int = 3
    # What one "more rest" request adds.
    rest_extension: float = 120.0
    # The rest after a call the listener marked difficult, in the awaiting-debrief state.
    rest_after_difficult: float = 600.0
    # How long after a call the listener may still mark it difficult.
    difficult_window: float = 600.0
    # A shift break (after a shift limit) lasts this long.
    shift_break: float = 900.0
    shift_limits: Mapping[str, ShiftLimit] = field(default_factory=lambda: DEFAULT_SHIFT_LIMITS)

    def __post_init__(self) -> None:
        for name in (
            "ring_timeout",
            "rest_after_call",
            "missed_offer_delay",
            "declined_offer_delay",
            "max_missed_offers",
            "rest_extension",
            "rest_after_difficult",
            "difficult_window",
            "shift_break",
        ):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{name} must be a non-negative number of seconds")
        if self.ring_timeout == 0:
            # A zero ring timeout would withdraw every offer before any phone could ring.
            raise ValueError("ring_timeout must be positive")
