"""The call queue: which caller is offered to which listener, and when.

Synchronous and pure: every decision is `handle(event, now) -> commands`. Events about calls,
listeners or timers the queue does not know (duplicates, late arrivals, cancelled timers) are
ignored, so the executor may report whatever it sees without filtering.

This is the front: it dispatches each event to the calls (`calls.py`), the listeners (`listeners.py`)
or help within a call (`help.py`), which share what the queue knows (`model.py`).
"""

import math
from typing import assert_never

from helpline_pbx.core.calls import Calls
from helpline_pbx.core.commands import Command, ListenerState
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
from helpline_pbx.core.help import HelpDesk
from helpline_pbx.core.listeners import Listeners
from helpline_pbx.core.model import (
    ALTERNATIVES_CONTEXT,
    HELP_ATTEMPTS,
    MISSED_OFFERS,
    PHONE_UNREACHABLE,
    SHIFT_LIMIT,
    Call,
    CallState,
    CallView,
    Floor,
    ListenerView,
)
from helpline_pbx.core.offers import withdraw
from helpline_pbx.core.policy import Policy
from helpline_pbx.core.routing import rank

__all__ = [
    "ALTERNATIVES_CONTEXT",
    "HELP_ATTEMPTS",
    "MISSED_OFFERS",
    "PHONE_UNREACHABLE",
    "SHIFT_LIMIT",
    "CallQueue",
    "CallState",
    "CallView",
    "ListenerView",
]


class CallQueue:
    """Callers in order of arrival, listeners by longest idle, one call per listener at a time."""

    def __init__(self, policy: Policy) -> None:
        self._floor = Floor(policy)
        self._listeners = Listeners(self._floor)
        self._help = HelpDesk(self._floor, self._listeners)
        self._calls = Calls(self._floor, self._listeners, self._help)

    # -- views ----------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._floor.draining

    @property
    def idle(self) -> bool:
        """True when no call is in progress in any state."""
        return not self._floor.calls

    def waiting(self) -> tuple[str, ...]:
        """Call ids still queued (waiting or being offered, not yet connected), in queue order."""
        return tuple(c.call_id for c in self._floor.calls.values() if c.state is not CallState.CONNECTED)

    def calls(self) -> tuple[CallView, ...]:
        """Every call in progress, in queue order."""
        return tuple(_view(c) for c in self._floor.calls.values())

    def call(self, call_id: str) -> CallView | None:
        """One call in progress, looked up by id (the edge asks per caller: no scan of every call)."""
        c = self._floor.calls.get(call_id)
        return (
            None if c is None else CallView(c.call_id, c.line, c.state, c.queued_at, c.listener_id, c.offers)
        )

    def listener_state(self, listener_id: str) -> ListenerState | None:
        listener = self._floor.listeners.get(listener_id)
        return None if listener is None else listener.state

    def listeners(self) -> tuple[ListenerView, ...]:
        """Every listener ever seen, by id."""
        links = self._floor.links()
        return tuple(
            ListenerView(
                x.listener_id,
                x.state,
                x.endpoint,
                x.idle_since,
                links.get(x.listener_id),
                x.until,
                x.online,
                x.reachable,
                x.paused_reason,
                x.shift_calls,
            )
            for x in sorted(self._floor.listeners.values(), key=lambda x: x.listener_id)
        )

    def position(self, call_id: str) -> int | None:
        """The caller's place among the callers of their line not yet connected (1 = next), in the order
        they are served: priority, then arrival. Callers of other lines are left out: they mostly wait for
        other listeners, and counting them would tell a caller a place that means nothing. None for a call
        that is connected or unknown."""
        call = self._floor.calls.get(call_id)
        if call is None or call.state is CallState.CONNECTED:
            return None
        same_line = [c.call_id for c in self._calls.queue_order() if c.line == call.line]
        return same_line.index(call_id) + 1

    def on_duty(self, call_id: str | None = None) -> int:
        """How many listeners are on duty, with a registered phone, and may take calls now or after their
        current call or rest (what an honest estimated wait divides by). With a call: only those who may
        ever take that call (its skills, language, training; every role its reach will widen to)."""
        call = self._floor.calls.get(call_id or "")
        # Counted by profile (the floor's index), not listener by listener: this is asked for every
        # waiting caller's announcements.
        return sum(
            count
            for profile, count in self._floor.duty.reachable.items()
            if call is None or rank(call.requirements, profile, math.inf, wanted_held=False) is not None
        )

    # -- decisions --------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        """Apply one event at time `now` (epoch seconds); return the commands to execute, in order."""
        out: list[Command] = []
        calls, listeners = self._calls, self._listeners
        match event:
            case CallerArrived():
                calls.arrived(event, now, out)
            case CallResumed():
                calls.resumed(event, out)
            case CallerLeft():
                calls.caller_left(event, now, out)
            case ListenerOnline():
                listeners.online(event, now, out)
            case ListenerUpdated():
                listeners.updated(event)
            case ListenerPaused():
                listeners.paused(event, now, out)
            case ListenerOffline():
                listeners.offline(event, out)
            case PhoneReachability():
                listeners.reachability(event, out)
            case RestExtended():
                listeners.rest_extended(event, now, out)
            case CallMarkedDifficult():
                listeners.marked_difficult(event, now, out)
            case DebriefHandled():
                listeners.debrief_handled(event, out)
            case HelpRequested():
                self._help.requested(event)
            case CallerChoseAlternatives():
                calls.chose_alternatives(event, now, out)
            case ClaimFailed():
                self._claim_failed(event, out)
            case OfferAnswered():
                self._offer_answered(event, now, out)
            case OfferFailed():
                self._offer_failed(event, now, out)
            case ConnectFailed():
                calls.connect_failed(event, now, out)
            case ListenerLeft():
                calls.listener_left(event, now, out)
            case TimerFired():
                self._timer_fired(event.key, now, out)
            case DrainRequested():
                calls.drain(now, out)
            case _:
                assert_never(event)
        # Running after every event keeps the invariant "nobody waits while a listener is free",
        # so a stale event that changed nothing can offer nothing either.
        floor = self._floor
        floor.settle(now)
        if not floor.draining:
            self._help.dispatch(out)
            calls.dispatch(now, out)
        floor.forget_news()
        return out

    # -- what a ringing phone reports: the same for a caller's offer and a help request ---------------

    def _offer_answered(self, event: OfferAnswered, now: float, out: list[Command]) -> None:
        ringing = self._floor.ringing(event.call_id, event.listener_id)
        if ringing is None:
            return
        if ringing.helper:
            self._help.answered(ringing.call, now, out)
        else:
            self._calls.answered(ringing.call, now, out)

    def _claim_failed(self, event: ClaimFailed, out: list[Command]) -> None:
        ringing = self._floor.ringing(event.call_id, event.listener_id)
        if ringing is None:
            return
        listener = withdraw(self._floor, ringing, out, cancel_offer=False)
        # The winning instance owns the roster row now: mirroring "offline" would clobber its claim.
        listener.online = False
        self._listeners.enter(listener, ListenerState.OFFLINE, out, mirror=False)

    def _offer_failed(self, event: OfferFailed, now: float, out: list[Command]) -> None:
        ringing = self._floor.ringing(event.call_id, event.listener_id)
        if ringing is None:
            return
        listener = withdraw(self._floor, ringing, out, cancel_offer=False)
        if event.reason == "busy":
            self._listeners.declined(listener, event.call_id, now, out)
        else:
            self._listeners.missed(listener, event.call_id, now, out)

    def _timer_fired(self, key: TimerKey, now: float, out: list[Command]) -> None:
        if key.kind == "escalate":
            self._calls.escalated(key)
        elif key.kind == "ring":
            ringing = self._floor.ringing(key.call_id or "", key.listener_id)
            if ringing is not None:
                # The timer has fired: nothing to cancel.
                listener = withdraw(self._floor, ringing, out, cancel_offer=True, timer_running=False)
                self._listeners.missed(listener, ringing.call.call_id, now, out)
        else:
            self._listeners.timer_fired(key, now, out)


def _view(c: Call) -> CallView:
    return CallView(c.call_id, c.line, c.state, c.queued_at, c.listener_id, c.offers)
