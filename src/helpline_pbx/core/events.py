"""Facts the outside world reports to the call queue, in the past tense."""

from dataclasses import dataclass, field
from typing import Literal

from helpline_pbx.core.routing import Profile, Requirements

TimerKind = Literal["ring", "rest", "escalate", "shift"]
OfferFailure = Literal["busy", "no_answer", "unreachable"]
HelpKind = Literal["professional", "supervisor"]


@dataclass(frozen=True, slots=True)
class TimerKey:
    """Names a timer the queue started; the executor echoes it back in TimerFired.

    A ring timer is keyed by the call and the rung listener, a rest timer by the listener
    and the call that caused the rest, an escalate timer by the call and the step of its reach
    ("reach-1", ...) in place of a listener, a shift timer by the listener alone (their time on duty).
    """

    kind: TimerKind
    call_id: str | None
    listener_id: str


@dataclass(frozen=True, slots=True)
class CallerArrived:
    """A caller entered the service and waits for a listener.

    arrived_at, when known, is when they first arrived: a caller re-adopted after a restart keeps their
    place and their wait time.
    """

    call_id: str
    line: str
    arrived_at: float | None = None
    requirements: Requirements = field(default_factory=Requirements)


@dataclass(frozen=True, slots=True)
class CallResumed:
    """A call already bridged with a listener, found in Asterisk after a restart: it goes on as before."""

    call_id: str
    line: str
    listener_id: str
    endpoint: str
    arrived_at: float
    answered_at: float


@dataclass(frozen=True, slots=True)
class CallerLeft:
    """The caller hung up, whatever state the call was in."""

    call_id: str


@dataclass(frozen=True, slots=True)
class ListenerOnline:
    """The listener is on duty and wants calls (logged in, or resumed after a pause).

    idle_since None means "idle from now". A listener new to the core starts their shift at
    on_duty_since (None: now) with shift_calls calls already taken in it (after a restart).
    reachable says whether their phone is registered: an unregistered phone is never rung.
    """

    listener_id: str
    endpoint: str
    idle_since: float | None = None
    profile: Profile = field(default_factory=Profile)
    reachable: bool = True
    on_duty_since: float | None = None
    shift_calls: int = 0
    # Coming on duty paused (for this reason): known to the core, offered nothing until they resume.
    paused: str | None = None


@dataclass(frozen=True, slots=True)
class ListenerUpdated:
    """The roster changed what a listener brings (role, skills, languages) or their phone: the core takes
    it, whatever they are doing, without changing their presence."""

    listener_id: str
    endpoint: str
    profile: Profile


@dataclass(frozen=True, slots=True)
class ListenerPaused:
    """The listener paused (or was paused) for `reason`: no call until they resume. A call or rest in
    progress runs to its end first."""

    listener_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ListenerOffline:
    """The listener logged out (or was removed): they must not be offered calls any more."""

    listener_id: str


@dataclass(frozen=True, slots=True)
class PhoneReachability:
    """The listener's phone registered (reachable) or lost its registration."""

    listener_id: str
    reachable: bool


@dataclass(frozen=True, slots=True)
class RestExtended:
    """The listener asked for more rest: their current rest lasts longer (or a short one starts)."""

    listener_id: str


@dataclass(frozen=True, slots=True)
class DebriefHandled:
    """A supervisor closed the listener's debrief request(s): they talked it over."""

    listener_id: str


@dataclass(frozen=True, slots=True)
class CallMarkedDifficult:
    """The listener marked their current call, or the one they just finished, as difficult."""

    listener_id: str


@dataclass(frozen=True, slots=True)
class HelpRequested:
    """During a call, the listener asked for a professional or the supervisor on duty to join them
    (three-way), or to take the call over (handover: the listener leaves once the helper answers)."""

    call_id: str
    listener_id: str
    kind: HelpKind
    handover: bool = False


@dataclass(frozen=True, slots=True)
class CallerChoseAlternatives:
    """A waiting caller chose to hear the line's alternatives instead of keeping their place."""

    call_id: str


@dataclass(frozen=True, slots=True)
class ClaimFailed:
    """The roster refused the claim: another instance holds that listener."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    """The listener's phone answered the offer."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class OfferFailed:
    """The listener leg ended before answer (486 busy, timeout, 480-503 or no contact)."""

    call_id: str
    listener_id: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """The listener answered but the bridge could not be made (their leg vanished): the caller never
    spoke to anyone and goes back to waiting, place kept."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class ListenerLeft:
    """The listener leg hung up during a bridged call."""

    call_id: str
    listener_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the queue started has expired."""

    key: TimerKey


@dataclass(frozen=True, slots=True)
class DrainRequested:
    """The service is stopping: take no new callers."""


Event = (
    CallerArrived
    | CallResumed
    | CallerLeft
    | ListenerOnline
    | ListenerUpdated
    | ListenerPaused
    | ListenerOffline
    | PhoneReachability
    | RestExtended
    | CallMarkedDifficult
    | DebriefHandled
    | HelpRequested
    | CallerChoseAlternatives
    | ClaimFailed
    | OfferAnswered
    | OfferFailed
    | ConnectFailed
    | ListenerLeft
    | TimerFired
    | DrainRequested
)
