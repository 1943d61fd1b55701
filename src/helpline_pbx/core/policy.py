"""The timings the call queue applies, in seconds."""

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Policy:
    """How long things last; validated once so the queue never schedules a negative timer."""

    ring_timeout: float = 20.0
    rest_after_call: float = 30.0
    missed_offer_delay: float = 10.0
    declined_offer_delay: float = 10.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{field.name} must be a non-negative number of seconds")
        if self.ring_timeout == 0:
            # A zero ring timeout would withdraw every offer before any phone could ring.
            raise ValueError("ring_timeout must be positive")
