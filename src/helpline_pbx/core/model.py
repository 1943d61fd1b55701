"""What the call queue knows: the calls in progress, the listeners, and the links between them.

Each link is stored once, on the call: its listener (`Call.listener_id`) and its helper
(`Help.helper_id`). A listener's call is derived from them (`Floor.call_of`), so the two sides can
never disagree.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from helpline_pbx.core.commands import ListenerState
from helpline_pbx.core.events import HelpKind, TimerKey
from helpline_pbx.core.policy import Policy
from helpline_pbx.core.routing import Profile, Requirements

ALTERNATIVES_CONTEXT = "helpline-alternatives"
# Pause reasons the core itself decides.
MISSED_OFFERS = "missed_offers"
SHIFT_LIMIT = "shift_limit"
# On duty, but no phone registered: nothing can be offered until it is.
PHONE_UNREACHABLE = "phone_unreachable"
# A help request (a professional into a call) tries this many helpers before it is given up.
HELP_ATTEMPTS = 3


class CallState(StrEnum):
    WAITING = "waiting"
    RINGING = "ringing"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    line: str
    state: CallState
    queued_at: float
    listener_id: str | None
    offers: int


@dataclass(frozen=True, slots=True)
class ListenerView:
    listener_id: str
    state: ListenerState
    endpoint: str
    idle_since: float
    call_id: str | None
    until: float | None
    online: bool
    reachable: bool = True
    paused_reason: str | None = None
    shift_calls: int = 0


@dataclass(slots=True)
class Help:
    kind: HelpKind
    handover: bool
    asked_by: str
    helper_id: str | None = None
    joined: bool = False
    attempts: int = 0


@dataclass(slots=True)
class Call:
    call_id: str
    line: str
    queued_at: float
    state: CallState = CallState.WAITING
    listener_id: str | None = None
    first_offered_at: float | None = None
    answered_at: float | None = None
    offers: int = 0
    requirements: Requirements = field(default_factory=Requirements)
    # Escalation timers still to fire, cancelled if the call ends first.
    escalations: list[TimerKey] = field(default_factory=list)
    # Who marked it difficult during the call (the listener, or a helper who joined).
    difficult_for: set[str] = field(default_factory=set)
    # A help request in progress: who is asked, whether they answered, and what for.
    help: Help | None = None


@dataclass(slots=True)
class Listener:
    listener_id: str
    endpoint: str
    idle_since: float
    state: ListenerState = ListenerState.AVAILABLE
    # False once the listener signed off: a call or rest in progress finishes, then offline.
    online: bool = True
    until: float | None = None
    rest_timer: TimerKey | None = None
    profile: Profile = field(default_factory=Profile)
    # An unregistered phone is never rung.
    reachable: bool = True
    # Why they are paused (their choice, missed offers, shift limit); None when they want calls.
    paused_reason: str | None = None
    # Offers missed in a row (no answer, unreachable); an answer resets it.
    missed: int = 0
    # The current shift: since when on duty, and how many calls answered in it.
    # None until the roster told when the shift began (a call resumed after a restart comes first).
    on_duty_since: float | None = None
    shift_calls: int = 0
    # The last call they finished, for "mark it difficult" right after it.
    last_call_id: str | None = None
    last_call_end: float | None = None
    last_call_marked: bool = False

    @property
    def on_duty(self) -> bool:
        """Signed in and not paused: counted among those who take calls now or after their call or rest."""
        return self.online and self.paused_reason is None and self.state is not ListenerState.OFFLINE


@dataclass(frozen=True, slots=True)
class Ringing:
    """An offer ringing a listener's phone: the call's own offer, or a request to help in it."""

    call: Call
    listener_id: str
    helper: bool


class Floor:
    """Every call in progress (in arrival order, which is the queue) and every listener ever seen."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        # Insertion order is arrival order: calls are never re-inserted, so this is the queue.
        self.calls: dict[str, Call] = {}
        self.listeners: dict[str, Listener] = {}
        self.draining = False

    def call_of(self, listener_id: str) -> Call | None:
        """The call that listener is being offered or takes part in (as its listener or its helper)."""
        return next((c for c in self.calls.values() if listener_id in _linked(c)), None)

    def links(self) -> dict[str, str]:
        """Each listener linked to a call, with that call's id (one pass, for the views)."""
        return {listener_id: c.call_id for c in self.calls.values() for listener_id in _linked(c)}

    def ringing(self, call_id: str, listener_id: str) -> Ringing | None:
        """The offer of that call ringing that listener: as its helper, or as its listener; None for a
        stale report. The one place that tells a helper's ringing from the call's own offer."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        help = call.help
        if help is not None and not help.joined and help.helper_id == listener_id:
            return Ringing(call, listener_id, helper=True)
        if call.state is CallState.RINGING and call.listener_id == listener_id:
            return Ringing(call, listener_id, helper=False)
        return None

    def ring_timeout(self, call: Call) -> float:
        return call.requirements.ring_timeout or self.policy.ring_timeout


def _linked(call: Call) -> tuple[str, ...]:
    helper = None if call.help is None else call.help.helper_id
    return tuple(x for x in (call.listener_id, helper) if x is not None)


def ring_key(call_id: str, listener_id: str) -> TimerKey:
    return TimerKey("ring", call_id, listener_id)
