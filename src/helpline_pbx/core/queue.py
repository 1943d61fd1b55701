"""The call queue: which caller is offered to which listener, and when.

Synchronous and pure: every decision is `handle(event, now) -> commands`. Events about calls,
listeners or timers the queue does not know (duplicates, late arrivals, cancelled timers) are
ignored, so the executor may report whatever it sees without filtering.
"""

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
    ListenerState,
    OfferCall,
    Outcome,
    RecordCall,
    SendToFallback,
    SetListenerState,
    StartTimer,
)
from helpline_pbx.core.events import (
    CallerArrived,
    CallerLeft,
    CallResumed,
    ClaimFailed,
    ConnectFailed,
    DrainRequested,
    Event,
    ListenerLeft,
    ListenerOffline,
    ListenerOnline,
    OfferAnswered,
    OfferFailed,
    TimerFired,
    TimerKey,
)
from helpline_pbx.core.policy import Policy
from helpline_pbx.core.routing import Profile, Requirements, rank

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
            ListenerView(x.listener_id, x.state, x.endpoint, x.idle_since, x.call_id, x.until, x.online)
            for x in sorted(self._listeners.values(), key=lambda x: x.listener_id)
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
            case ListenerOffline():
                self._listener_offline(event, out)
            case ClaimFailed():
                self._claim_failed(event, out)
            case OfferAnswered():
                self._offer_answered(event, now, out)
            case OfferFailed():
                self._offer_failed(event, now, out)
            case ConnectFailed():
                self._connect_failed(event, now, out)
            case ListenerLeft():
                call = self._call_with(event.call_id, event.listener_id, CallState.CONNECTED)
                if call is not None:
                    self._finish_bridged(call, now, out)
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

    def _listener_online(self, event: ListenerOnline, now: float, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            listener = _Listener(event.listener_id, event.endpoint, idle_since=now, profile=event.profile)
            self._listeners[listener.listener_id] = listener
        elif listener.state is not ListenerState.OFFLINE:
            # Skills, languages and role follow the roster, whatever the listener is doing.
            listener.profile = event.profile
            # Already registered: a busy or resting listener comes back to available on their own
            # timeline, and a duplicate must not reset anyone's place among idle listeners.
            listener.endpoint = event.endpoint
            listener.online = True
            return
        listener.profile = event.profile
        listener.endpoint = event.endpoint
        listener.idle_since = now if event.idle_since is None else event.idle_since
        listener.online = True
        self._make_available(listener, out)

    def _listener_offline(self, event: ListenerOffline, out: list[Command]) -> None:
        listener = self._listeners.get(event.listener_id)
        if listener is None:
            return
        listener.online = False
        if listener.state is ListenerState.RINGING:
            assert listener.call_id is not None
            self._withdraw_offer(self._calls[listener.call_id], out, cancel_offer=True)
        # A call or a rest in progress runs to its end; the listener goes offline after it.
        if listener.state in (ListenerState.RINGING, ListenerState.AVAILABLE):
            self._make_offline(listener, out)

    def _claim_failed(self, event: ClaimFailed, out: list[Command]) -> None:
        call = self._call_with(event.call_id, event.listener_id, CallState.RINGING)
        if call is None:
            return
        listener = self._withdraw_offer(call, out, cancel_offer=False)
        # The winning instance owns the roster row now: mirroring "offline" would clobber its claim.
        listener.online = False
        listener.state = ListenerState.OFFLINE

    def _offer_answered(self, event: OfferAnswered, now: float, out: list[Command]) -> None:
        call = self._call_with(event.call_id, event.listener_id, CallState.RINGING)
        if call is None:
            return
        listener = self._listeners[event.listener_id]
        call.state = CallState.CONNECTED
        call.answered_at = now
        listener.state = ListenerState.ON_CALL
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
        call = self._call_with(event.call_id, event.listener_id, CallState.RINGING)
        if call is None:
            return
        listener = self._withdraw_offer(call, out, cancel_offer=False)
        if event.reason == "busy":
            delay, reason = self._policy.declined_offer_delay, "declined_offer"
        else:
            delay, reason = self._policy.missed_offer_delay, "missed_offer"
        self._rest(listener, call.call_id, delay, reason, now, out)

    def _timer_fired(self, key: TimerKey, now: float, out: list[Command]) -> None:
        if key.kind == "escalate":
            call = self._calls.get(key.call_id or "")
            if call is not None and key in call.escalations:
                # Nothing else to do: the dispatch that follows every event sees the wider reach.
                call.escalations.remove(key)
            return
        if key.kind == "ring":
            call = self._call_with(key.call_id or "", key.listener_id, CallState.RINGING)
            if call is None:
                return
            missed = self._withdraw_offer(call, out, cancel_offer=True, timer_running=False)
            delay = self._policy.missed_offer_delay
            self._rest(missed, call.call_id, delay, "missed_offer", now, out)
            return
        rested = self._listeners.get(key.listener_id)
        # Matching the whole key tells this rest's timer from an earlier one.
        if rested is None or rested.state is not ListenerState.RESTING or rested.rest_timer != key:
            return
        if rested.online:
            self._make_available(rested, out)
        else:
            self._make_offline(rested, out)

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
        # Higher priority first, then arrival order (the dict's order; the sort is stable). Each caller
        # gets the best listener they may have: first rank of their reach, then longest idle.
        waiting = sorted(
            (c for c in self._calls.values() if c.state is CallState.WAITING),
            key=lambda c: -c.requirements.priority,
        )
        for call in waiting:
            available = [x for x in self._listeners.values() if x.state is ListenerState.AVAILABLE]
            if not available:
                return
            waited = now - call.queued_at
            ranked = [
                (r, x.idle_since, x.listener_id, x)
                for x in available
                if (r := rank(call.requirements, x.profile, waited)) is not None
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
        self._close(call, "served", now, out)
        listener.call_id = None
        listener.idle_since = now
        self._rest(listener, call.call_id, self._policy.rest_after_call, "after_call", now, out)

    def _rest(
        self,
        listener: _Listener,
        call_id: str,
        delay: float,
        reason: str,
        now: float,
        out: list[Command],
    ) -> None:
        key = TimerKey("rest", call_id, listener.listener_id)
        listener.state = ListenerState.RESTING
        listener.until = now + delay
        listener.rest_timer = key
        out.append(
            SetListenerState(listener.listener_id, ListenerState.RESTING, None, listener.until, reason)
        )
        out.append(StartTimer(key, delay))

    def _make_available(self, listener: _Listener, out: list[Command]) -> None:
        self._settle(listener, ListenerState.AVAILABLE, out)

    def _make_offline(self, listener: _Listener, out: list[Command]) -> None:
        self._settle(listener, ListenerState.OFFLINE, out)

    def _settle(self, listener: _Listener, state: ListenerState, out: list[Command]) -> None:
        listener.state = state
        listener.call_id = None
        listener.until = None
        listener.rest_timer = None
        out.append(SetListenerState(listener.listener_id, state, None, None, None))

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
        )
        out.append(RecordCall(record))

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
