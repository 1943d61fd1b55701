"""The call queue: which caller is offered to which listener, and when.

Synchronous and pure: every decision is `handle(event, now) -> commands`. Events about calls,
listeners or timers the queue does not know (duplicates, late arrivals, cancelled timers) are
ignored, so the executor may report whatever it sees without filtering.
"""

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import assert_never

from helpline_pbx.core.commands import (
    CallRecord,
    CancelOffer,
    CancelTimer,
    Command,
    ConnectCall,
    EndCall,
    JoinCall,
    ListenerState,
    NotifyListener,
    OfferCall,
    Outcome,
    RecordCall,
    ReleaseListener,
    RequestDebrief,
    SendToFallback,
    SetListenerState,
    StartTimer,
)
from helpline_pbx.core.events import (
    CallerArrived,
    CallerChoseAlternatives,
    CallerLeft,
    CallMarkedDifficult,
    CallResumed,
    ClaimFailed,
    ConnectFailed,
    DebriefHandled,
    DrainRequested,
    Event,
    HelpKind,
    HelpRequested,
    ListenerLeft,
    ListenerOffline,
    ListenerOnline,
    ListenerPaused,
    ListenerUpdated,
    OfferAnswered,
    OfferFailed,
    PhoneReachability,
    RestExtended,
    TimerFired,
    TimerKey,
)
from helpline_pbx.core.policy import Policy
from helpline_pbx.core.routing import Profile, Requirements, rank

ALTERNATIVES_CONTEXT = "helpline-alternatives"
# Pause reasons the core itself decides.
MISSED_OFFERS = "missed_offers"
SHIFT_LIMIT = "shift_limit"
# On duty, but no phone registered: nothing can be offered until it is.
PHONE_UNREACHABLE = "phone_unreachable"
# A help request (a professional into a call) tries this many helpers before it is given up.
HELP_ATTEMPTS = 3
# The states in which a listener is resting one way or another, with a timer that ends it.
_TIMED_STATES = frozenset({ListenerState.RESTING, ListenerState.AWAITING_DEBRIEF, ListenerState.PAUSED})

# Ended call ids are remembered so a late duplicate CallerArrived cannot resurrect a call;
# bounded because the service runs for months.
_ENDED_MEMORY = 10_000


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
class _Help:
    kind: HelpKind
    handover: bool
    asked_by: str
    helper_id: str | None = None
    joined: bool = False
    attempts: int = 0


@dataclass(slots=True)
class _Call:
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
    help: _Help | None = None


@dataclass(slots=True)
class _Listener:
    listener_id: str
    endpoint: str
    idle_since: float
    state: ListenerState = ListenerState.AVAILABLE
    # False once the listener signed off: a call or rest in progress finishes, then offline.
    online: bool = True
    call_id: str | None = None
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


class CallQueue:
    """Callers in order of arrival, listeners by longest idle, one call per listener at a time."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        # Insertion order is arrival order: calls are never re-inserted, so this is the queue.
        self._calls: dict[str, _Call] = {}
        self._listeners: dict[str, _Listener] = {}
        self._ended: dict[str, None] = {}
        self._draining = False

    # -- views ----------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def idle(self) -> bool:
        """True when no call is in progress in any state."""
        return not self._calls

    def waiting(self) -> tuple[str, ...]:
        """Call ids still queued (waiting or being offered, not yet connected), in queue order."""
        return tuple(c.call_id for c in self._calls.values() if c.state is not CallState.CONNECTED)

    def calls(self) -> tuple[CallView, ...]:
        """Every call in progress, in queue order."""
        return tuple(
            CallView(c.call_id, c.line, c.state, c.queued_at, c.listener_id, c.offers)
            for c in self._calls.values()
        )

    def listener_state(self, listener_id: str) -> ListenerState | None:
        listener = self._listeners.get(listener_id)
        return None if listener is None else listener.state

    def listeners(self) -> tuple[ListenerView, ...]:
        """Every listener ever seen, by id."""
        return tuple(
            ListenerView(
                x.listener_id,
                x.state,
                x.endpoint,
                x.idle_since,
                x.call_id,
                x.until,
                x.online,
                x.reachable,
                x.paused_reason,
                x.shift_calls,
            )
            for x in sorted(self._listeners.values(), key=lambda x: x.listener_id)
        )

    def position(self, call_id: str) -> int | None:
        """The caller's place among the callers of their line not yet connected (1 = next), in the order
        they are served: priority, then arrival. Callers of other lines are left out: they mostly wait for
        other listeners, and counting them would tell a caller a place that means nothing. None for a call
        that is connected or unknown."""
        call = self._calls.get(call_id)
        if call is None or call.state is CallState.CONNECTED:
            return None
        same_line = [c.call_id for c in self._queue_order() if c.line == call.line]
        return same_line.index(call_id) + 1

    def on_duty(self, call_id: str | None = None) -> int:
        """How many listeners are on duty, with a registered phone, and may take calls now or after their
        current call or rest (what an honest estimated wait divides by). With a call: only those who may
        ever take that call (its skills, language, training; every role its reach will widen to)."""
        call = self._calls.get(call_id or "")
        return sum(
            1
            for x in self._listeners.values()
            if self._is_on_duty(x)
            and x.reachable
            and (call is None or rank(call.requirements, x.profile, math.inf, wanted_held=False) is not None)
        )

    def _queue_order(self) -> list[_Call]:
        # Higher priority first, then arrival order (the dict's order; the sort is stable).
        return sorted(
            (c for c in self._calls.values() if c.state is not CallState.CONNECTED),
            key=lambda c: -c.requirements.priority,
        )

    # -- decisions --------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event at time `now` (epoch seconds); return the commands to execute, in order."""
        out: list[Command] = []
        match event:
            case CallerArrived():
                self._caller_arrived(event, now, out)
            case CallResumed():
                self._call_resumed(event, out)
            case CallerLeft():
                self._caller_left(event, now, out)
            case ListenerOnline():
                self._listener_online(event, now, out)
            case ListenerUpdated():
                self._listener_updated(event)
            case ListenerPaused():
                self._listener_paused(event, now, out)
            case ListenerOffline():
                self._listener_offline(event, out)
            case PhoneReachability():
                self._reachability(event, out)
            case RestExtended():
                self._rest_extended(event, now, out)
            case CallMarkedDifficult():
                self._marked_difficult(event, now, out)
            case DebriefHandled():
                self._debrief_handled(event, out)
            case HelpRequested():
                self._help_requested(event)
            case CallerChoseAlternatives():
                self._chose_alternatives(event, now, out)
            case ClaimFailed():
                self._claim_failed(event, out)
            case OfferAnswered():
                self._offer_answered(event, now, out)
            case OfferFailed():
                self._offer_failed(event, now, out)
            case ConnectFailed():
                self._connect_failed(event, now, out)
            case ListenerLeft():
                self._listener_left(event, now, out)
            case TimerFired():
                self._timer_fired(event.key, now, out)
            case DrainRequested():
                self._drain(now, out)
            case _:
                assert_never(event)
        # Running after every event keeps the invariant "nobody waits while a listener is free",
        # so a stale event that changed nothing can offer nothing either.
        self._dispatch(now, out)
        return out

    def _caller_arrived(self, event: CallerArrived, now: float, out: list[Command]) -> None:
        if event.call_id in self._calls or event.call_id in self._ended:
            return
        call = _Call(
            event.call_id,
            event.line,
            queued_at=now if event.arrived_at is None else event.arrived_at,
            requirements=event.requirements,
        )
        if self._draining:
            out.append(SendToFallback(call.call_id))
            self._close(call, "fallback", now, out)
            return
        self._calls[call.call_id] = call
        # Wake the dispatcher when the call's reach widens, so it is offered to the newly reached.
        waited = now - call.queued_at
        for step, after in enumerate(call.requirements.widenings(), start=1):
            if after > waited:
                key = TimerKey("escalate", call.call_id, f"reach-{step}")
                call.escalations.append(key)
                out.append(StartTimer(key, after - waited))

    def _call_resumed(self, event: CallResumed, out: list[Command]) -> None:
        if event.call_id in self._calls or event.call_id in self._ended:
            return
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            listener = _Listener(event.listener_id, event.endpoint, idle_since=event.answered_at)
            self._listeners[listener.listener_id] = listener
        elif listener.state is not ListenerState.AVAILABLE and listener.state is not ListenerState.OFFLINE:
            # Asterisk says this listener is talking on a call we do not know while we have them busy
            # elsewhere: trust neither, keep our own state (the stray call ends on its own).
            return
        call = _Call(
            event.call_id,
            event.line,
            queued_at=event.arrived_at,
            state=CallState.CONNECTED,
            listener_id=listener.listener_id,
            first_offered_at=event.arrived_at,
            answered_at=event.answered_at,
            offers=1,
        )
        self._calls[call.call_id] = call
        listener.state = ListenerState.ON_CALL
        listener.call_id = call.call_id
        listener.online = True
        out.append(SetListenerState(listener.listener_id, ListenerState.ON_CALL, call.call_id, None, None))

    def _caller_left(self, event: CallerLeft, now: float, out: list[Command]) -> None:
        call = self._calls.get(event.call_id)
        if call is None:
            return
        if call.state is CallState.CONNECTED:
            self._finish_bridged(call, now, out)
            return
        if call.state is CallState.RINGING:
            listener = self._withdraw_offer(call, out, cancel_offer=True)
            self._make_available(listener, out)
        out.append(EndCall(call.call_id, None))
        self._close(call, "abandoned", now, out)

    def _chose_alternatives(self, event: CallerChoseAlternatives, now: float, out: list[Command]) -> None:
        call = self._calls.get(event.call_id)
        if call is None or call.state is CallState.CONNECTED:
            return
        if call.state is CallState.RINGING:
            listener = self._withdraw_offer(call, out, cancel_offer=True)
            self._make_available(listener, out)
        out.append(SendToFallback(call.call_id, ALTERNATIVES_CONTEXT))
        self._close(call, "alternatives", now, out)

    # -- presence ---------------------------------------------------------------------------------

    def _listener_online(self, event: ListenerOnline, now: float, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            listener = _Listener(
                event.listener_id, event.endpoint, idle_since=now, state=ListenerState.OFFLINE
            )
            self._listeners[listener.listener_id] = listener
        # Skills, languages, role and phone follow the roster, whatever the listener is doing.
        listener.profile = event.profile
        listener.endpoint = event.endpoint
        listener.reachable = event.reachable
        if listener.state is ListenerState.OFFLINE:
            # Coming on duty: a shift starts (or goes on, after a restart of the service).
            listener.online = True
            listener.paused_reason = event.paused
            listener.missed = 0
            listener.idle_since = now if event.idle_since is None else event.idle_since
            listener.on_duty_since = now if event.on_duty_since is None else event.on_duty_since
            listener.shift_calls = event.shift_calls
            self._start_shift_timer(listener, now, out)
            self._settle_next(listener, now, out)
            return
        if listener.on_duty_since is None:
            # Known from a call resumed after a restart: the roster now tells when their shift began.
            listener.on_duty_since = now if event.on_duty_since is None else event.on_duty_since
            listener.shift_calls = max(listener.shift_calls, event.shift_calls)
            self._start_shift_timer(listener, now, out)
        # Already on duty: a duplicate must not reset anyone's place among idle listeners. A pause ends
        # (their own, after missed offers, or a shift break that outlived a restart); a timed shift break
        # runs to its end.
        listener.online = True
        on_break = listener.state is ListenerState.PAUSED and listener.until is not None
        if listener.paused_reason is not None and not on_break:
            listener.paused_reason = None
            listener.missed = 0
            if listener.state is ListenerState.PAUSED:
                self._make_available(listener, out)

    def _listener_updated(self, event: ListenerUpdated) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is not None:
            listener.profile = event.profile
            listener.endpoint = event.endpoint

    def _listener_paused(self, event: ListenerPaused, now: float, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None or (listener.paused_reason == event.reason and listener.online):
            return
        if listener.state is ListenerState.OFFLINE:
            listener.on_duty_since = now
            listener.shift_calls = 0
        listener.online = True
        if listener.paused_reason == SHIFT_LIMIT and listener.state is ListenerState.PAUSED:
            # The break runs to its end; they stay paused after it.
            listener.paused_reason = event.reason
            return
        listener.paused_reason = event.reason
        if listener.state is ListenerState.RINGING:
            self._drop_offer_to(listener, out)
        if listener.state in (ListenerState.AVAILABLE, ListenerState.RINGING, ListenerState.OFFLINE) or (
            listener.state is ListenerState.PAUSED and listener.until is None
        ):
            self._pause_now(listener, event.reason, out, presence=None)
        # On a call or resting: paused when it ends.

    def _listener_offline(self, event: ListenerOffline, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            return
        listener.online = False
        listener.paused_reason = None
        if listener.state is ListenerState.RINGING:
            self._drop_offer_to(listener, out)
        # A call or a rest in progress runs to its end; the listener goes offline after it.
        if listener.state in (ListenerState.RINGING, ListenerState.AVAILABLE, ListenerState.PAUSED):
            self._make_offline(listener, out)

    def _rest_extended(self, event: RestExtended, now: float, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            return
        extension = self._policy.rest_extension
        resting = (ListenerState.RESTING, ListenerState.AWAITING_DEBRIEF)
        if listener.state in resting and listener.rest_timer is not None and listener.until is not None:
            listener.until = max(listener.until, now) + extension
            out.append(
                SetListenerState(listener.listener_id, listener.state, None, listener.until, "rest_extended")
            )
            out.append(StartTimer(listener.rest_timer, listener.until - now))
        elif listener.state is ListenerState.AVAILABLE:
            self._rest(listener, None, extension, "rest_extended", now, out)

    def _debrief_handled(self, event: DebriefHandled, out: list[Command]) -> None:
        """The debrief took place: no longer awaiting one. The rest runs to its end all the same (a
        supervisor closing the request must not send calls to someone who still needs the rest)."""
        listener = self._listeners.get(event.listener_id)
        if listener is None or listener.state is not ListenerState.AWAITING_DEBRIEF:
            return
        listener.state = ListenerState.RESTING
        out.append(
            SetListenerState(
                listener.listener_id, ListenerState.RESTING, None, listener.until, "debrief_handled"
            )
        )

    def _marked_difficult(self, event: CallMarkedDifficult, now: float, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            return
        if listener.state is ListenerState.ON_CALL and listener.call_id in self._calls:
            self._calls[listener.call_id].difficult_for.add(listener.listener_id)
            return
        recent = (
            listener.last_call_end is not None
            and now - listener.last_call_end <= self._policy.difficult_window
            and not listener.last_call_marked
        )
        if recent and listener.state in (ListenerState.RESTING, ListenerState.AVAILABLE):
            listener.last_call_marked = True
            self._debrief_rest(listener, listener.last_call_id, now, out)

    # -- offers ------------------------------------------------------------------------------------

    def _claim_failed(self, event: ClaimFailed, out: list[Command]) -> None:
        call = self._calls.get(event.call_id)
        helping = self._helper_ringing(call, event.listener_id)
        if helping is not None:
            listener = self._drop_helper(helping, out, cancel_offer=False)
        else:
            call = self._call_with(event.call_id, event.listener_id, CallState.RINGING)
            if call is None:
                return
            listener = self._withdraw_offer(call, out, cancel_offer=False)
        # The winning instance owns the roster row now: mirroring "offline" would clobber its claim.
        listener.online = False
        listener.state = ListenerState.OFFLINE

    def _offer_answered(self, event: OfferAnswered, now: float, out: list[Command]) -> None:
        helping = self._helper_ringing(self._calls.get(event.call_id), event.listener_id)
        if helping is not None:
            self._helper_answered(helping, now, out)
            return
        call = self._call_with(event.call_id, event.listener_id, CallState.RINGING)
        if call is None:
            return
        listener = self._listeners[event.listener_id]
        call.state = CallState.CONNECTED
        call.answered_at = now
        listener.state = ListenerState.ON_CALL
        listener.missed = 0
        listener.shift_calls += 1
        out.append(CancelTimer(self._ring_key(call.call_id, listener.listener_id)))
        out.append(ConnectCall(call.call_id, listener.listener_id))
        out.append(SetListenerState(listener.listener_id, ListenerState.ON_CALL, call.call_id, None, None))

    def _connect_failed(self, event: ConnectFailed, now: float, out: list[Command]) -> None:
        call = self._call_with(event.call_id, event.listener_id, CallState.CONNECTED)
        if call is None:
            return
        listener = self._listeners[event.listener_id]
        call.state = CallState.WAITING
        call.listener_id = None
        call.answered_at = None
        listener.call_id = None
        self._rest(listener, call.call_id, self._policy.missed_offer_delay, "connect_failed", now, out)

    def _offer_failed(self, event: OfferFailed, now: float, out: list[Command]) -> None:
        helping = self._helper_ringing(self._calls.get(event.call_id), event.listener_id)
        if helping is not None:
            listener = self._drop_helper(helping, out, cancel_offer=False)
        else:
            call = self._call_with(event.call_id, event.listener_id, CallState.RINGING)
            if call is None:
                return
            listener = self._withdraw_offer(call, out, cancel_offer=False)
        if event.reason == "busy":
            self._rest(listener, event.call_id, self._policy.declined_offer_delay, "declined_offer", now, out)
        else:
            self._missed(listener, event.call_id, now, out)

    def _missed(self, listener: _Listener, call_id: str, now: float, out: list[Command]) -> None:
        """An offer rang out or could not reach the phone: a short rest, or a pause after too many."""
        listener.missed += 1
        if self._policy.max_missed_offers and listener.missed >= self._policy.max_missed_offers:
            listener.paused_reason = MISSED_OFFERS
            self._pause_now(listener, MISSED_OFFERS, out, presence="paused")
            return
        self._rest(listener, call_id, self._policy.missed_offer_delay, "missed_offer", now, out)

    # -- help within a call --------------------------------------------------------------------------

    def _help_requested(self, event: HelpRequested) -> None:
        call = self._calls.get(event.call_id)
        if call is None or call.state is not CallState.CONNECTED or call.help is not None:
            return
        if call.listener_id != event.listener_id:
            return
        # The dispatch that follows every event looks for the helper, before any waiting caller.
        call.help = _Help(event.kind, event.handover, event.listener_id)

    def _find_helper(self, call: _Call, now: float, out: list[Command]) -> None:
        assert call.help is not None
        language = call.requirements.language
        candidates = [
            x
            for x in self._listeners.values()
            if self._may_help(x, call.help.kind)
            and x.reachable
            and x.profile.role == call.help.kind
            and not x.profile.trainee
            and x.listener_id != call.listener_id
            and (language is None or language in x.profile.languages)
        ]
        if not candidates:
            return
        helper = min(candidates, key=lambda x: (x.idle_since, x.listener_id))
        call.help.helper_id = helper.listener_id
        call.help.attempts += 1
        helper.state = ListenerState.RINGING
        helper.call_id = call.call_id
        timeout = call.requirements.ring_timeout or self._policy.ring_timeout
        out.append(StartTimer(self._ring_key(call.call_id, helper.listener_id), timeout))
        out.append(OfferCall(call.call_id, helper.listener_id, helper.endpoint, timeout, helper=True))

    @staticmethod
    def _may_help(listener: _Listener, kind: HelpKind) -> bool:
        """Free to be asked in. A supervisor on duty who paused to take no callers of their own (their
        choice, not a break the line imposed) is still the supervisor on duty: they may be asked in."""
        if listener.state is ListenerState.AVAILABLE:
            return True
        return (
            kind == "supervisor"
            and listener.state is ListenerState.PAUSED
            and listener.until is None
            and listener.online
            and listener.paused_reason not in (None, MISSED_OFFERS, SHIFT_LIMIT)
        )

    def _helper_ringing(self, call: _Call | None, listener_id: str) -> _Call | None:
        """The call, if that listener is being asked into it as a helper and has not answered yet."""
        if call is None or call.help is None or call.help.joined or call.help.helper_id != listener_id:
            return None
        return call

    def _helper_answered(self, call: _Call, now: float, out: list[Command]) -> None:
        assert call.help is not None
        assert call.help.helper_id is not None
        assert call.listener_id is not None
        helper = self._listeners[call.help.helper_id]
        call.help.joined = True
        helper.state = ListenerState.ON_CALL
        helper.missed = 0
        helper.shift_calls += 1
        out.append(CancelTimer(self._ring_key(call.call_id, helper.listener_id)))
        out.append(JoinCall(call.call_id, helper.listener_id))
        out.append(SetListenerState(helper.listener_id, ListenerState.ON_CALL, call.call_id, None, None))
        if call.help.handover:
            # The listener hands the caller over and leaves: the helper is now the call's listener.
            first = self._listeners[call.listener_id]
            out.append(ReleaseListener(call.call_id, first.listener_id))
            call.listener_id = helper.listener_id
            call.help = None
            self._after_call(first, call, now, out)

    def _drop_helper(self, call: _Call, out: list[Command], *, cancel_offer: bool) -> _Listener:
        """Stop asking the helper who has not answered; the request stays open for another, a few times."""
        assert call.help is not None
        assert call.help.helper_id is not None
        helper = self._listeners[call.help.helper_id]
        out.append(CancelTimer(self._ring_key(call.call_id, helper.listener_id)))
        if cancel_offer:
            out.append(CancelOffer(call.call_id, helper.listener_id))
        call.help.helper_id = None
        if call.help.attempts >= HELP_ATTEMPTS:
            call.help = None
        helper.call_id = None
        return helper

    def _drop_offer_to(self, listener: _Listener, out: list[Command]) -> None:
        """Withdraw whatever offer is ringing this listener's phone (a caller's or a help request)."""
        call = self._calls.get(listener.call_id or "")
        if call is None:
            return
        if self._helper_ringing(call, listener.listener_id) is not None:
            self._drop_helper(call, out, cancel_offer=True)
        elif call.state is CallState.RINGING and call.listener_id == listener.listener_id:
            self._withdraw_offer(call, out, cancel_offer=True)

    def _listener_left(self, event: ListenerLeft, now: float, out: list[Command]) -> None:
        call = self._calls.get(event.call_id)
        if call is None or call.state is not CallState.CONNECTED:
            return
        help = call.help
        if help is not None and help.joined and help.helper_id == event.listener_id:
            # The helper leaves; the listener goes on with the caller.
            call.help = None
            self._after_call(self._listeners[event.listener_id], call, now, out)
            return
        if call.listener_id != event.listener_id:
            return
        if help is not None and help.joined and help.helper_id is not None:
            # The listener leaves a three-way call: the helper goes on with the caller.
            first = self._listeners[event.listener_id]
            call.listener_id = help.helper_id
            call.help = None
            self._after_call(first, call, now, out)
            return
        self._finish_bridged(call, now, out)

    # -- timers ------------------------------------------------------------------------------------

    def _timer_fired(self, key: TimerKey, now: float, out: list[Command]) -> None:
        if key.kind == "escalate":
            call = self._calls.get(key.call_id or "")
            if call is not None and key in call.escalations:
                # Nothing else to do: the dispatch that follows every event sees the wider reach.
                call.escalations.remove(key)
            return
        if key.kind == "ring":
            helping = self._helper_ringing(self._calls.get(key.call_id or ""), key.listener_id)
            if helping is not None:
                missed = self._drop_helper(helping, out, cancel_offer=True)
            else:
                call = self._call_with(key.call_id or "", key.listener_id, CallState.RINGING)
                if call is None:
                    return
                missed = self._withdraw_offer(call, out, cancel_offer=True, timer_running=False)
            self._missed(missed, key.call_id or "", now, out)
            return
        listener = self._listeners.get(key.listener_id)
        if listener is None:
            return
        if key.kind == "shift" and key.call_id is None:
            # Time on duty is up: an idle listener goes on a break now, a busy one after their call.
            if listener.state is ListenerState.AVAILABLE and self._shift_over(listener, now):
                self._shift_break(listener, now, out)
            return
        # Matching the whole key tells this rest's timer from an earlier one.
        if listener.state not in _TIMED_STATES or listener.rest_timer != key:
            return
        if key.kind == "shift":
            # The break is over: a new shift starts.
            if listener.paused_reason == SHIFT_LIMIT:
                listener.paused_reason = None
            listener.on_duty_since = now
            listener.shift_calls = 0
            self._start_shift_timer(listener, now, out)
            self._settle_next(listener, now, out, presence="on")
            return
        self._settle_next(listener, now, out)

    def _drain(self, now: float, out: list[Command]) -> None:
        self._draining = True
        for call in [c for c in self._calls.values() if c.state is not CallState.CONNECTED]:
            if call.state is CallState.RINGING:
                # Not the listener's fault: straight back to available, no rest.
                self._make_available(self._withdraw_offer(call, out, cancel_offer=True), out)
            out.append(SendToFallback(call.call_id))
            self._close(call, "fallback", now, out)

    def _dispatch(self, now: float, out: list[Command]) -> None:
        if self._draining:
            return
        # A listener asking for help in a call comes before any waiting caller.
        for call in [c for c in self._calls.values() if c.help is not None and c.help.helper_id is None]:
            self._find_helper(call, now, out)
        # Each caller, in queue order, gets the best listener they may have: first rank of their reach,
        # then longest idle.
        for call in [c for c in self._queue_order() if c.state is CallState.WAITING]:
            available = [
                x for x in self._listeners.values() if x.state is ListenerState.AVAILABLE and x.reachable
            ]
            if not available:
                return
            needs = call.requirements
            waited = now - call.queued_at
            held = not needs.wanted or any(
                needs.wanted <= x.profile.skills for x in self._listeners.values() if self._is_on_duty(x)
            )
            ranked = [
                (r, x.idle_since, x.listener_id, x)
                for x in available
                if (needs.only_listener is None or x.listener_id == needs.only_listener)
                and (r := rank(needs, x.profile, waited, wanted_held=held)) is not None
            ]
            if ranked:
                best = min(ranked, key=lambda t: (t[0], t[1], t[2]))
                self._offer(call, best[3], now, out)

    # -- transitions --------------------------------------------------------------------------

    def _offer(self, call: _Call, listener: _Listener, now: float, out: list[Command]) -> None:
        call.state = CallState.RINGING
        call.listener_id = listener.listener_id
        call.offers += 1
        if call.first_offered_at is None:
            call.first_offered_at = now
        listener.state = ListenerState.RINGING
        listener.call_id = call.call_id
        timeout = call.requirements.ring_timeout or self._policy.ring_timeout
        # The timer goes first so that no phone rings without a deadline, even if the executor
        # stops half-way through this batch.
        out.append(StartTimer(self._ring_key(call.call_id, listener.listener_id), timeout))
        out.append(OfferCall(call.call_id, listener.listener_id, listener.endpoint, timeout))

    def _withdraw_offer(
        self, call: _Call, out: list[Command], *, cancel_offer: bool, timer_running: bool = True
    ) -> _Listener:
        """Put a ringing caller back in the queue, place kept; returns the freed listener."""
        assert call.listener_id is not None
        listener = self._listeners[call.listener_id]
        if timer_running:
            out.append(CancelTimer(self._ring_key(call.call_id, listener.listener_id)))
        if cancel_offer:
            out.append(CancelOffer(call.call_id, listener.listener_id))
        call.state = CallState.WAITING
        call.listener_id = None
        listener.call_id = None
        return listener

    def _finish_bridged(self, call: _Call, now: float, out: list[Command]) -> None:
        assert call.listener_id is not None
        listener = self._listeners[call.listener_id]
        out.append(EndCall(call.call_id, listener.listener_id))
        help = call.help
        self._close(call, "served", now, out)
        if help is not None and help.helper_id is not None:
            helper = self._listeners[help.helper_id]
            if help.joined:
                self._after_call(helper, call, now, out)
            else:
                # Asked in, never answered: their ringing leg ends with the call (EndCall); not their fault.
                out.append(CancelTimer(self._ring_key(call.call_id, helper.listener_id)))
                helper.call_id = None
                self._settle_next(helper, now, out)
        call.help = None
        self._after_call(listener, call, now, out)

    def _after_call(self, listener: _Listener, call: _Call, now: float, out: list[Command]) -> None:
        """The listener's part in a call is over: rest (the line's, or the policy's), longer if difficult."""
        listener.call_id = None
        listener.idle_since = now
        listener.last_call_id = call.call_id
        listener.last_call_end = now
        listener.last_call_marked = listener.listener_id in call.difficult_for
        if listener.last_call_marked:
            self._debrief_rest(listener, call.call_id, now, out)
            return
        rest = call.requirements.rest_after_call
        delay = self._policy.rest_after_call if rest is None else rest
        self._rest(listener, call.call_id, delay, "after_call", now, out)

    def _debrief_rest(self, listener: _Listener, call_id: str | None, now: float, out: list[Command]) -> None:
        """A longer rest after a difficult call, and a debrief request for the supervisors."""
        until = now + self._policy.rest_after_difficult
        if listener.until is not None and listener.state is ListenerState.RESTING:
            until = max(until, listener.until)
        self._rest(
            listener,
            call_id,
            until - now,
            "difficult_call",
            now,
            out,
            state=ListenerState.AWAITING_DEBRIEF,
        )
        out.append(RequestDebrief(listener.listener_id, call_id))

    def _rest(
        self,
        listener: _Listener,
        call_id: str | None,
        delay: float,
        reason: str,
        now: float,
        out: list[Command],
        *,
        state: ListenerState = ListenerState.RESTING,
    ) -> None:
        key = TimerKey("rest", call_id, listener.listener_id)
        listener.state = state
        listener.until = now + delay
        listener.rest_timer = key
        out.append(SetListenerState(listener.listener_id, state, None, listener.until, reason))
        out.append(StartTimer(key, delay))

    def _settle_next(
        self, listener: _Listener, now: float, out: list[Command], presence: str | None = None
    ) -> None:
        """Where a listener goes once free (after a call, a rest, a break, or on coming on duty)."""
        if not listener.online:
            self._make_offline(listener, out)
        elif listener.paused_reason is not None:
            self._pause_now(listener, listener.paused_reason, out, presence=None)
        elif self._shift_over(listener, now):
            self._shift_break(listener, now, out)
        else:
            self._settle(listener, ListenerState.AVAILABLE, out, presence)

    def _pause_now(
        self, listener: _Listener, reason: str, out: list[Command], *, presence: str | None
    ) -> None:
        listener.state = ListenerState.PAUSED
        listener.call_id = None
        listener.until = None
        listener.rest_timer = None
        out.append(SetListenerState(listener.listener_id, ListenerState.PAUSED, None, None, reason, presence))

    def _shift_over(self, listener: _Listener, now: float) -> bool:
        limit = self._policy.shift_limits.get(listener.profile.role)
        if limit is None:
            return False
        if limit.max_calls is not None and listener.shift_calls >= limit.max_calls:
            return True
        since = now if listener.on_duty_since is None else listener.on_duty_since
        return limit.max_on_duty is not None and now - since >= limit.max_on_duty

    def _start_shift_timer(self, listener: _Listener, now: float, out: list[Command]) -> None:
        limit = self._policy.shift_limits.get(listener.profile.role)
        if limit is not None and limit.max_on_duty is not None:
            since = now if listener.on_duty_since is None else listener.on_duty_since
            delay = max(0.0, since + limit.max_on_duty - now)
            out.append(StartTimer(TimerKey("shift", None, listener.listener_id), delay))

    def _shift_break(self, listener: _Listener, now: float, out: list[Command]) -> None:
        """A shift limit is reached: a break, said on the phone, recorded; a new shift after it."""
        key = TimerKey("shift", "break", listener.listener_id)
        listener.paused_reason = SHIFT_LIMIT
        listener.state = ListenerState.PAUSED
        listener.call_id = None
        listener.until = now + self._policy.shift_break
        listener.rest_timer = key
        out.append(
            SetListenerState(
                listener.listener_id, ListenerState.PAUSED, None, listener.until, SHIFT_LIMIT, "paused"
            )
        )
        out.append(StartTimer(key, self._policy.shift_break))
        out.append(NotifyListener(listener.listener_id, listener.endpoint, "shift-limit"))

    def _make_available(self, listener: _Listener, out: list[Command]) -> None:
        self._settle(listener, ListenerState.AVAILABLE, out)

    def _make_offline(self, listener: _Listener, out: list[Command]) -> None:
        self._settle(listener, ListenerState.OFFLINE, out, reason="off_duty")

    def _reachability(self, event: PhoneReachability, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None or listener.reachable == event.reachable:
            return
        listener.reachable = event.reachable
        # Available is offerable only with a registered phone: the roster says since when it really is.
        if listener.state is ListenerState.AVAILABLE:
            self._settle(listener, ListenerState.AVAILABLE, out)

    def _settle(
        self,
        listener: _Listener,
        state: ListenerState,
        out: list[Command],
        presence: str | None = None,
        reason: str | None = None,
    ) -> None:
        listener.state = state
        listener.call_id = None
        listener.until = None
        listener.rest_timer = None
        if state is ListenerState.AVAILABLE and reason is None and not listener.reachable:
            reason = PHONE_UNREACHABLE
        out.append(SetListenerState(listener.listener_id, state, None, None, reason, presence))

    def _close(self, call: _Call, outcome: Outcome, now: float, out: list[Command]) -> None:
        self._calls.pop(call.call_id, None)
        out.extend(CancelTimer(key) for key in call.escalations)
        call.escalations.clear()
        self._ended[call.call_id] = None
        if len(self._ended) > _ENDED_MEMORY:
            del self._ended[next(iter(self._ended))]
        answered = call.answered_at
        record = CallRecord(
            call_id=call.call_id,
            line=call.line,
            queued_at=call.queued_at,
            first_offered_at=call.first_offered_at,
            answered_at=answered,
            ended_at=now,
            outcome=outcome,
            listener_id=call.listener_id if outcome == "served" else None,
            offers=call.offers,
            wait_seconds=(now if answered is None else answered) - call.queued_at,
            talk_seconds=0.0 if answered is None else now - answered,
            practice=call.requirements.practice,
        )
        out.append(RecordCall(record))

    @staticmethod
    def _is_on_duty(listener: _Listener) -> bool:
        return (
            listener.online and listener.paused_reason is None and listener.state is not ListenerState.OFFLINE
        )

    # -- helpers ------------------------------------------------------------------------------

    def _call_with(self, call_id: str, listener_id: str, state: CallState) -> _Call | None:
        """The call, if it is in that state with that listener; None for a stale report."""
        call = self._calls.get(call_id)
        if call is None or call.state is not state or call.listener_id != listener_id:
            return None
        return call

    @staticmethod
    def _ring_key(call_id: str, listener_id: str) -> TimerKey:
        return TimerKey("ring", call_id, listener_id)
