"""What the call queue knows: the calls in progress, the listeners, and the links between them.

Each link is stored once, on the call: its listener (`Call.listener_id`) and its helper
(`Help.helper_id`). A listener's call is derived from them (`Floor.call_of`), so the two sides can
never disagree.
"""

import heapq
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from helpline_pbx.core.commands import ListenerState
from helpline_pbx.core.events import HelpKind, TimerKey
from helpline_pbx.core.index import FreeListeners, OnDuty, WaitingCalls
from helpline_pbx.core.policy import Policy
from helpline_pbx.core.roles import Role
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


# The fields the floor's indexes are derived from (index.py).
_LISTENER_INDEXED = frozenset(
    {"state", "reachable", "profile", "idle_since", "online", "paused_reason", "until"}
)
_CALL_INDEXED = frozenset({"state", "help"})


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
    # Its place in the queue (arrival order on this floor), set when the floor takes it.
    place: int = 0
    # The floor's record of what changed since its indexes were brought up to date (Floor.settle).
    touched: dict[str, "Call"] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _CALL_INDEXED:
            touched = getattr(self, "touched", None)
            if touched is not None:
                touched[self.call_id] = self


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
    # The floor's record of what changed since its indexes were brought up to date (Floor.settle).
    touched: dict[str, "Listener"] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every change the indexes depend on is noted here, so no code path can forget to tell them.
        object.__setattr__(self, name, value)
        if name in _LISTENER_INDEXED:
            touched = getattr(self, "touched", None)
            if touched is not None:
                touched[self.listener_id] = self

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
    """Every call in progress (in arrival order, which is the queue) and every listener ever seen.

    Calls and listeners join and leave through `add_call`, `remove_call` and `add_listener`, which keep the
    indexes; `settle` brings the indexes up to date with what the last decision changed, and remembers
    what can make a new offer possible (a listener newly free, a call newly waiting or whose reach widened,
    a change in the skills held on duty) for the next dispatch.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        # Insertion order is arrival order: calls are never re-inserted, so this is the queue.
        self.calls: dict[str, Call] = {}
        self.listeners: dict[str, Listener] = {}
        self.draining = False
        self.free = FreeListeners()
        self.duty = OnDuty()
        self.waiting = WaitingCalls()
        # Since the last dispatch: who became free, which calls became waiting, whether duty changed.
        self.new_free: dict[str, Listener] = {}
        self.new_waiting: dict[str, Call] = {}
        self.duty_changed = False
        # When waiting calls' reach widens: (arrival + step, place, call id, arrival, step), stale
        # entries skipped.
        self._widenings: list[tuple[float, int, str, float, float]] = []
        # Calls with a help request open, and supervisors paused who may still be asked into a call.
        self.with_help: dict[str, Call] = {}
        self.paused_supervisors: dict[str, Listener] = {}
        self._touched_listeners: dict[str, Listener] = {}
        self._touched_calls: dict[str, Call] = {}
        self._places = 0

    def add_listener(self, listener: Listener) -> None:
        self.listeners[listener.listener_id] = listener
        listener.touched = self._touched_listeners
        self._touched_listeners[listener.listener_id] = listener

    def add_call(self, call: Call) -> None:
        self._places += 1
        call.place = self._places
        self.calls[call.call_id] = call
        call.touched = self._touched_calls
        self._touched_calls[call.call_id] = call

    def remove_call(self, call: Call) -> None:
        self.calls.pop(call.call_id, None)
        call.touched = None
        self._touched_calls.pop(call.call_id, None)
        self.waiting.update(call, waiting=False)
        self.new_waiting.pop(call.call_id, None)
        self.with_help.pop(call.call_id, None)

    def forget_news(self) -> None:
        """The dispatch has looked at what changed: from now on nobody free may take anyone waiting."""
        self.new_free.clear()
        self.new_waiting.clear()
        self.duty_changed = False

    def settle(self, now: float) -> None:
        """Bring the indexes up to date with every listener and call touched since the last time."""
        self.settle_listeners()
        self._settle_calls(now)

    def settle_listeners(self) -> None:
        touched = self._touched_listeners
        while touched:
            _, listener = touched.popitem()
            if self.free.update(listener):
                self.new_free[listener.listener_id] = listener
            if self.duty.update(listener):
                self.duty_changed = True
            if may_help_while_paused(listener):
                self.paused_supervisors[listener.listener_id] = listener
            else:
                self.paused_supervisors.pop(listener.listener_id, None)

    def _settle_calls(self, now: float) -> None:
        calls = self._touched_calls
        while calls:
            _, call = calls.popitem()
            present = call.call_id in self.calls
            if present and call.help is not None:
                self.with_help[call.call_id] = call
            else:
                self.with_help.pop(call.call_id, None)
            waiting = present and call.state is CallState.WAITING
            if self.waiting.update(call, waiting):
                self.new_waiting[call.call_id] = call
                waited = now - call.queued_at
                for after in call.requirements.widenings():
                    if after > waited:
                        due = call.queued_at + after
                        heapq.heappush(
                            self._widenings, (due, call.place, call.call_id, call.queued_at, after)
                        )
        # A call whose reach widened since may be offered to listeners it could not have before.
        widenings = self._widenings
        # (`rank` compares the time waited with the step: so does this, not the sum, to agree to the bit.)
        while widenings and widenings[0][0] <= now + 1e-6:
            _, _, call_id, queued_at, after = widenings[0]
            if now - queued_at < after:
                break
            heapq.heappop(widenings)
            widened = self.calls.get(call_id)
            if widened is not None and self.waiting.bucket_of(call_id) is not None:
                self.new_waiting[call_id] = widened

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


def may_help_while_paused(listener: Listener) -> bool:
    """A supervisor on duty who paused to take no callers of their own (their choice, not a break the
    line imposed) is still the supervisor on duty: they may be asked into a call."""
    return (
        listener.state is ListenerState.PAUSED
        and listener.profile.role == Role.SUPERVISOR
        and not listener.profile.trainee
        and listener.reachable
        and listener.until is None
        and listener.online
        and listener.paused_reason not in (None, MISSED_OFFERS, SHIFT_LIMIT)
    )


def _linked(call: Call) -> tuple[str, ...]:
    helper = None if call.help is None else call.help.helper_id
    return tuple(x for x in (call.listener_id, helper) if x is not None)


def ring_key(call_id: str, listener_id: str) -> TimerKey:
    return TimerKey("ring", call_id, listener_id)
