"""What the call queue asks the executor to do, in the imperative."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from helpline_pbx.core.events import TimerKey

Outcome = Literal["served", "abandoned", "fallback", "alternatives"]


class Presence(StrEnum):
    """What the listener (or the line, for them) chose: on duty, off duty, or paused. The roster stores
    the same values."""

    OFF = "off"
    ON = "on"
    PAUSED = "paused"


class ListenerState(StrEnum):
    """The listener's state as the queue sees it; the roster stores the same values."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    RESTING = "resting"
    # Not offered calls until they resume (their choice, missed offers in a row, or a shift break).
    PAUSED = "paused"
    # Resting after a call they marked difficult; a supervisor is asked for a debrief.
    AWAITING_DEBRIEF = "awaiting_debrief"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """The anonymous summary of one call: ids, times and counts, nothing about the caller."""

    call_id: str
    line: str
    queued_at: float
    first_offered_at: float | None
    answered_at: float | None
    ended_at: float
    outcome: Outcome
    listener_id: str | None
    offers: int
    wait_seconds: float
    talk_seconds: float
    practice: bool = False


@dataclass(frozen=True, slots=True)
class OfferCall:
    """Claim the listener in the roster, then ring their phone.

    The claim itself moves the listener to ringing in the roster, so no SetListenerState
    precedes it: a mirrored write would make the conditional claim fail. If the claim is
    refused, report ClaimFailed.
    """

    call_id: str
    listener_id: str
    endpoint: str
    ring_timeout: float
    # A professional or supervisor asked into a call in progress, not a new call for them.
    helper: bool = False


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing that listener for that call; hang up their leg even if it answered meanwhile."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class ConnectCall:
    """Bridge the caller with the listener and stop the hold music."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class JoinCall:
    """Add the helper who answered to the call's conversation (three-way)."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class ReleaseListener:
    """Hang up that listener's leg of the call, which goes on without them (after a handover)."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class EndCall:
    """Tear down what remains of the call: legs still up, the bridge, per-call resources."""

    call_id: str
    listener_id: str | None


@dataclass(frozen=True, slots=True)
class SendToFallback:
    """Hand the caller back to the dialplan: the fallback, or another context (the line's alternatives)."""

    call_id: str
    context: str | None = None


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Start (or restart) the timer with that key; report TimerFired when it expires."""

    key: TimerKey
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Cancel the timer with that key; no TimerFired may follow for it."""

    key: TimerKey


@dataclass(frozen=True, slots=True)
class SetListenerState:
    """Persist the listener's state in the roster; until is the end of a rest."""

    listener_id: str
    state: ListenerState
    call_id: str | None
    until: float | None
    reason: str | None
    # Set when the core changes the listener's presence itself (paused after missed offers, a shift break
    # and its end); None leaves it.
    presence: Presence | None = None


@dataclass(frozen=True, slots=True)
class NotifyListener:
    """Call the listener's phone to say something short (e.g. "shift limit reached, take a break")."""

    listener_id: str
    endpoint: str
    notice: str


@dataclass(frozen=True, slots=True)
class RequestDebrief:
    """List a debrief request for the listener's difficult call and call the supervisors on duty."""

    listener_id: str
    call_id: str | None


@dataclass(frozen=True, slots=True)
class RecordCall:
    """Store the anonymous record of a call that has ended."""

    record: CallRecord


Command = (
    OfferCall
    | CancelOffer
    | ConnectCall
    | JoinCall
    | ReleaseListener
    | EndCall
    | SendToFallback
    | StartTimer
    | CancelTimer
    | SetListenerState
    | NotifyListener
    | RequestDebrief
    | RecordCall
)
