"""Frozen values the roster hands out; ORM rows never leave a session."""

from dataclasses import dataclass, field
from datetime import datetime

from helpline_pbx.roster.states import ListenerState, Outcome, Presence, Role


@dataclass(frozen=True, slots=True)
class ListenerSnapshot:
    id: str
    pseudonym: str
    endpoint: str
    # Kept out of repr so that logging a snapshot never prints a credential: the digest Asterisk checks the
    # phone against (what the roster stores).
    sip_ha1: str = field(repr=False)
    role: Role
    active: bool
    state: ListenerState
    state_call_id: str | None
    state_until: datetime | None
    state_reason: str | None
    idle_since: datetime | None
    state_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset({"fr"})
    presence: Presence = Presence.OFF
    presence_reason: str | None = None
    code: str | None = None
    trainee: bool = False
    monitoring_consent: bool = False
    shift_started_at: datetime | None = None
    # The SIP password in clear, only in the value that adding the listener or giving them a new password
    # returns (to show once); the roster never stores it, so every other snapshot has None.
    sip_password: str | None = field(default=None, repr=False, compare=False)

    def is_free(self, now: datetime) -> bool:
        """Whether a claim at `now` could succeed, as far as this snapshot knows."""
        if not self.active:
            return False
        if self.state is ListenerState.AVAILABLE:
            return True
        return (
            self.state is ListenerState.RESTING and self.state_until is not None and self.state_until <= now
        )


@dataclass(frozen=True, slots=True)
class CallRecordData:
    """Anonymous statistics of one finished call; `line` is the helpline line's own name."""

    call_id: str
    line: str
    queued_at: datetime
    ended_at: datetime
    outcome: Outcome
    instance: str
    first_offered_at: datetime | None = None
    answered_at: datetime | None = None
    listener_id: str | None = None
    offers: int = 0
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    practice: bool = False


@dataclass(frozen=True, slots=True)
class ListenerEventSnapshot:
    id: int
    listener_id: str
    at: datetime
    state: ListenerState
    reason: str | None
    call_id: str | None


@dataclass(frozen=True, slots=True)
class RosterVersion:
    """Changes whenever a listener is added, edited or removed; not on state changes."""

    count: int
    last_change: datetime | None
