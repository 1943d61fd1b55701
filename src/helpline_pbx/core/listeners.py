"""The listeners: presence, rest, pauses, shifts and debriefs.

Every change of a listener's state goes through `Listeners.enter`, which sets the state and its end
(until, and the timer that ends it) together and mirrors them in the roster.
"""

from helpline_pbx.core.commands import (
    Command,
    ListenerState,
    NotifyListener,
    Presence,
    RequestDebrief,
    SetListenerState,
    StartTimer,
)
from helpline_pbx.core.events import (
    CallMarkedDifficult,
    DebriefHandled,
    ListenerOffline,
    ListenerOnline,
    ListenerPaused,
    ListenerUpdated,
    PhoneReachability,
    RestExtended,
    TimerKey,
)
from helpline_pbx.core.model import MISSED_OFFERS, PHONE_UNREACHABLE, SHIFT_LIMIT, Call, Floor, Listener
from helpline_pbx.core.offers import withdraw_from

# The states in which a listener is resting one way or another, with a timer that ends it.
_TIMED_STATES = frozenset({ListenerState.RESTING, ListenerState.AWAITING_DEBRIEF, ListenerState.PAUSED})
_RESTING = (ListenerState.RESTING, ListenerState.AWAITING_DEBRIEF)


class Listeners:
    def __init__(self, floor: Floor) -> None:
        self._floor = floor
        self._policy = floor.policy

    def enter(
        self,
        listener: Listener,
        state: ListenerState,
        out: list[Command],
        *,
        until: float | None = None,
        timer: TimerKey | None = None,
        reason: str | None = None,
        presence: Presence | None = None,
        call_id: str | None = None,
        mirror: bool = True,
    ) -> None:
        """The listener is now in that state, until then (ended by that timer). mirror=False when the
        roster already knows (an offer's claim moved them to ringing; another instance holds them)."""
        listener.state = state
        listener.until = until
        listener.rest_timer = timer
        if not mirror:
            return
        if state is ListenerState.AVAILABLE and reason is None and not listener.reachable:
            # Available is offerable only with a registered phone: the roster says since when it really is.
            reason = PHONE_UNREACHABLE
        out.append(
            SetListenerState(
                listener.listener_id, state, call_id=call_id, until=until, reason=reason, presence=presence
            )
        )

    # -- presence ---------------------------------------------------------------------------------

    def online(self, event: ListenerOnline, now: float, out: list[Command]) -> None:
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None:
            listener = Listener(
                event.listener_id, event.endpoint, idle_since=now, state=ListenerState.OFFLINE
            )
            self._floor.add_listener(listener)
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
            self.settle_next(listener, now, out)
            return
        if listener.on_duty_since is None:
            # Known from a call resumed after a restart: the roster now tells when their shift began.
            listener.on_duty_since = now if event.on_duty_since is None else event.on_duty_since
            listener.shift_calls = max(listener.shift_calls, event.shift_calls)
            self._start_shift_timer(listener, now, out)
        if not listener.online:
            # Signed out during a rest or a call, back before it ended: what they chose now stands once it
            # is over, a pause included (they were offered a call at the rest's end, paused or not).
            listener.online = True
            listener.paused_reason = event.paused
            listener.missed = 0
            return
        # Already on duty: a duplicate must not reset anyone's place among idle listeners. A pause ends
        # (their own, after missed offers, or a shift break that outlived a restart); a timed shift break
        # runs to its end.
        listener.online = True
        on_break = listener.state is ListenerState.PAUSED and listener.until is not None
        if listener.paused_reason is not None and not on_break:
            listener.paused_reason = None
            listener.missed = 0
            if listener.state is ListenerState.PAUSED:
                self.enter(listener, ListenerState.AVAILABLE, out)

    def updated(self, event: ListenerUpdated) -> None:
        listener = self._floor.listeners.get(event.listener_id)
        if listener is not None:
            listener.profile = event.profile
            listener.endpoint = event.endpoint

    def paused(self, event: ListenerPaused, now: float, out: list[Command]) -> None:
        listener = self._floor.listeners.get(event.listener_id)
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
            withdraw_from(self._floor, listener, out)
        if listener.state in (ListenerState.AVAILABLE, ListenerState.RINGING, ListenerState.OFFLINE) or (
            listener.state is ListenerState.PAUSED and listener.until is None
        ):
            self.enter(listener, ListenerState.PAUSED, out, reason=event.reason)
        # On a call or resting: paused when it ends.

    def offline(self, event: ListenerOffline, out: list[Command]) -> None:
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None:
            return
        listener.online = False
        listener.paused_reason = None
        if listener.state is ListenerState.RINGING:
            withdraw_from(self._floor, listener, out)
        # A call or a rest in progress runs to its end; the listener goes offline after it.
        if listener.state in (ListenerState.RINGING, ListenerState.AVAILABLE, ListenerState.PAUSED):
            self.enter(listener, ListenerState.OFFLINE, out, reason="off_duty")

    def reachability(self, event: PhoneReachability, out: list[Command]) -> None:
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None or listener.reachable == event.reachable:
            return
        listener.reachable = event.reachable
        if listener.state is ListenerState.AVAILABLE:
            self.enter(listener, ListenerState.AVAILABLE, out)

    # -- rest and debriefs ------------------------------------------------------------------------

    def rest_extended(self, event: RestExtended, now: float, out: list[Command]) -> None:
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None:
            return
        extension = self._policy.rest_extension
        timer, until = listener.rest_timer, listener.until
        if listener.state in _RESTING and timer is not None and until is not None:
            until = max(until, now) + extension
            self.enter(listener, listener.state, out, until=until, timer=timer, reason="rest_extended")
            out.append(StartTimer(timer, until - now))
        elif listener.state is ListenerState.AVAILABLE:
            self._rest(listener, None, extension, "rest_extended", now, out)

    def debrief_handled(self, event: DebriefHandled, out: list[Command]) -> None:
        """The debrief took place: no longer awaiting one. The rest runs to its end all the same (a
        supervisor closing the request must not send calls to someone who still needs the rest)."""
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None or listener.state is not ListenerState.AWAITING_DEBRIEF:
            return
        self.enter(
            listener,
            ListenerState.RESTING,
            out,
            until=listener.until,
            timer=listener.rest_timer,
            reason="debrief_handled",
        )

    def marked_difficult(self, event: CallMarkedDifficult, now: float, out: list[Command]) -> None:
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None:
            return
        call = self._floor.call_of(listener.listener_id)
        if listener.state is ListenerState.ON_CALL and call is not None:
            call.difficult_for.add(listener.listener_id)
            return
        recent = (
            listener.last_call_end is not None
            and now - listener.last_call_end <= self._policy.difficult_window
            and not listener.last_call_marked
        )
        if recent and listener.state in (ListenerState.RESTING, ListenerState.AVAILABLE):
            listener.last_call_marked = True
            self._debrief_rest(listener, listener.last_call_id, now, out)

    # -- a call's part in it ------------------------------------------------------------------------

    def answered(self, listener: Listener, call_id: str, out: list[Command]) -> None:
        """They answered an offer (a caller's, or to help in a call): on the call, a call of their shift."""
        listener.missed = 0
        listener.shift_calls += 1
        self.enter(listener, ListenerState.ON_CALL, out, call_id=call_id)

    def missed(self, listener: Listener, call_id: str, now: float, out: list[Command]) -> None:
        """An offer rang out or could not reach the phone: a short rest, or a pause after too many."""
        listener.missed += 1
        if self._policy.max_missed_offers and listener.missed >= self._policy.max_missed_offers:
            listener.paused_reason = MISSED_OFFERS
            self.enter(listener, ListenerState.PAUSED, out, reason=MISSED_OFFERS, presence=Presence.PAUSED)
            return
        self._rest(listener, call_id, self._policy.missed_offer_delay, "missed_offer", now, out)

    def declined(self, listener: Listener, call_id: str, now: float, out: list[Command]) -> None:
        self._rest(listener, call_id, self._policy.declined_offer_delay, "declined_offer", now, out)

    def connect_failed(self, listener: Listener, call_id: str, now: float, out: list[Command]) -> None:
        self._rest(listener, call_id, self._policy.missed_offer_delay, "connect_failed", now, out)

    def after_call(self, listener: Listener, call: Call, now: float, out: list[Command]) -> None:
        """The listener's part in a call is over: rest (the line's, or the policy's), longer if difficult."""
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

    def _debrief_rest(self, listener: Listener, call_id: str | None, now: float, out: list[Command]) -> None:
        """A longer rest after a difficult call, and a debrief request for the supervisors."""
        until = now + self._policy.rest_after_difficult
        if listener.until is not None and listener.state is ListenerState.RESTING:
            until = max(until, listener.until)
        self._rest(
            listener, call_id, until - now, "difficult_call", now, out, state=ListenerState.AWAITING_DEBRIEF
        )
        out.append(RequestDebrief(listener.listener_id, call_id))

    def _rest(
        self,
        listener: Listener,
        call_id: str | None,
        delay: float,
        reason: str,
        now: float,
        out: list[Command],
        *,
        state: ListenerState = ListenerState.RESTING,
    ) -> None:
        key = TimerKey("rest", call_id, listener.listener_id)
        self.enter(listener, state, out, until=now + delay, timer=key, reason=reason)
        out.append(StartTimer(key, delay))

    def settle_next(
        self, listener: Listener, now: float, out: list[Command], presence: Presence | None = None
    ) -> None:
        """Where a listener goes once free (after a call, a rest, a break, or on coming on duty)."""
        if not listener.online:
            self.enter(listener, ListenerState.OFFLINE, out, reason="off_duty")
        elif listener.paused_reason is not None:
            self.enter(listener, ListenerState.PAUSED, out, reason=listener.paused_reason)
        elif self._shift_over(listener, now):
            self._shift_break(listener, now, out)
        else:
            self.enter(listener, ListenerState.AVAILABLE, out, presence=presence)

    # -- shifts and timers --------------------------------------------------------------------------

    def timer_fired(self, key: TimerKey, now: float, out: list[Command]) -> None:
        """A rest, a break or a shift's time on duty is over."""
        listener = self._floor.listeners.get(key.listener_id)
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
            self.settle_next(listener, now, out, presence=Presence.ON)
            return
        self.settle_next(listener, now, out)

    def _shift_over(self, listener: Listener, now: float) -> bool:
        limit = self._policy.shift_limits.get(listener.profile.role)
        if limit is None:
            return False
        if limit.max_calls is not None and listener.shift_calls >= limit.max_calls:
            return True
        since = now if listener.on_duty_since is None else listener.on_duty_since
        return limit.max_on_duty is not None and now - since >= limit.max_on_duty

    def _start_shift_timer(self, listener: Listener, now: float, out: list[Command]) -> None:
        limit = self._policy.shift_limits.get(listener.profile.role)
        if limit is not None and limit.max_on_duty is not None:
            since = now if listener.on_duty_since is None else listener.on_duty_since
            delay = max(0.0, since + limit.max_on_duty - now)
            out.append(StartTimer(TimerKey("shift", None, listener.listener_id), delay))

    def _shift_break(self, listener: Listener, now: float, out: list[Command]) -> None:
        """A shift limit is reached: a break, said on the phone, recorded; a new shift after it."""
        key = TimerKey("shift", "break", listener.listener_id)
        listener.paused_reason = SHIFT_LIMIT
        until = now + self._policy.shift_break
        self.enter(
            listener,
            ListenerState.PAUSED,
            out,
            until=until,
            timer=key,
            reason=SHIFT_LIMIT,
            presence=Presence.PAUSED,
        )
        out.append(StartTimer(key, self._policy.shift_break))
        out.append(NotifyListener(listener.listener_id, listener.endpoint, "shift-limit"))
