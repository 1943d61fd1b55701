"""The calls: a caller arrives, is offered to a listener (or withdrawn), connected, and closed with
one anonymous record."""

import heapq
from typing import Final

from helpline_pbx.core.commands import (
    CallRecord,
    CancelTimer,
    Command,
    ConnectCall,
    EndCall,
    ListenerState,
    Outcome,
    RecordCall,
    SendToFallback,
    StartTimer,
)
from helpline_pbx.core.events import (
    CallerArrived,
    CallerChoseAlternatives,
    CallerLeft,
    CallResumed,
    ConnectFailed,
    ListenerLeft,
    TimerKey,
)
from helpline_pbx.core.help import HelpDesk
from helpline_pbx.core.index import Bucket, FreeGroup
from helpline_pbx.core.listeners import Listeners
from helpline_pbx.core.model import ALTERNATIVES_CONTEXT, Call, CallState, Floor, Listener, Ringing, ring_key
from helpline_pbx.core.offers import ring, withdraw
from helpline_pbx.core.routing import rank

# How a waiting call is tried: against every free listener, or only those newly free since the last time.
_EVERYONE, _NEWLY_FREE = 0, 1
_UNKNOWN: Final = -1  # not a rank: ranks are 0 and up
_RANKS_KEPT = 4096

# Ended call ids are remembered so a late duplicate CallerArrived cannot resurrect a call;
# bounded because the service runs for months.
_ENDED_MEMORY = 10_000


class Calls:
    def __init__(self, floor: Floor, listeners: Listeners, help: HelpDesk) -> None:
        self._floor = floor
        self._listeners = listeners
        self._help = help
        self._ended: dict[str, None] = {}

    def queue_order(self) -> list[Call]:
        """The calls not yet connected, in the order they are served: higher priority first, then
        arrival order (the dict's order; the sort is stable)."""
        return sorted(
            (c for c in self._floor.calls.values() if c.state is not CallState.CONNECTED),
            key=lambda c: -c.requirements.priority,
        )

    # -- a caller comes and goes ------------------------------------------------------------------

    def arrived(self, event: CallerArrived, now: float, out: list[Command]) -> None:
        if event.call_id in self._floor.calls or event.call_id in self._ended:
            return
        call = Call(
            event.call_id,
            event.line,
            queued_at=now if event.arrived_at is None else event.arrived_at,
            requirements=event.requirements,
        )
        if self._floor.draining:
            out.append(SendToFallback(call.call_id))
            self._close(call, "fallback", now, out)
            return
        self._floor.add_call(call)
        # Wake the dispatcher when the call's reach widens, so it is offered to the newly reached.
        waited = now - call.queued_at
        for step, after in enumerate(call.requirements.widenings(), start=1):
            if after > waited:
                key = TimerKey("escalate", call.call_id, f"reach-{step}")
                call.escalations.append(key)
                out.append(StartTimer(key, after - waited))

    def resumed(self, event: CallResumed, out: list[Command]) -> None:
        if event.call_id in self._floor.calls or event.call_id in self._ended:
            return
        listener = self._floor.listeners.get(event.listener_id)
        if listener is None:
            # Not known yet (the roster's word comes later): on duty (the default), since they are on a call.
            listener = Listener(event.listener_id, event.endpoint, idle_since=event.answered_at)
            self._floor.add_listener(listener)
        elif listener.state is not ListenerState.AVAILABLE and listener.state is not ListenerState.OFFLINE:
            # Asterisk says this listener is talking on a call we do not know while we have them busy
            # elsewhere: trust neither, keep our own state (the stray call ends on its own).
            return
        call = Call(
            event.call_id,
            event.line,
            queued_at=event.arrived_at,
            state=CallState.CONNECTED,
            listener_id=listener.listener_id,
            first_offered_at=event.arrived_at,
            answered_at=event.answered_at,
            offers=1,
        )
        self._floor.add_call(call)
        # A listener who signed out stays off duty: the call goes on, and they are offered no other after it.
        self._listeners.enter(listener, ListenerState.ON_CALL, out, call_id=call.call_id)

    def caller_left(self, event: CallerLeft, now: float, out: list[Command]) -> None:
        call = self._floor.calls.get(event.call_id)
        if call is None:
            return
        if call.state is CallState.CONNECTED:
            self._finish_bridged(call, now, out)
            return
        self._give_up_offer(call, out)
        out.append(EndCall(call.call_id, None))
        self._close(call, "abandoned", now, out)

    def chose_alternatives(self, event: CallerChoseAlternatives, now: float, out: list[Command]) -> None:
        call = self._floor.calls.get(event.call_id)
        if call is None or call.state is CallState.CONNECTED:
            return
        self._give_up_offer(call, out)
        out.append(SendToFallback(call.call_id, ALTERNATIVES_CONTEXT))
        self._close(call, "alternatives", now, out)

    def drain(self, now: float, out: list[Command]) -> None:
        self._floor.draining = True
        for call in [c for c in self._floor.calls.values() if c.state is not CallState.CONNECTED]:
            self._give_up_offer(call, out)
            out.append(SendToFallback(call.call_id))
            self._close(call, "fallback", now, out)

    def _give_up_offer(self, call: Call, out: list[Command]) -> None:
        """The caller is gone before an answer: not the listener's fault, straight back to available."""
        if call.state is CallState.RINGING:
            assert call.listener_id is not None
            listener = withdraw(
                self._floor, Ringing(call, call.listener_id, helper=False), out, cancel_offer=True
            )
            self._listeners.enter(listener, ListenerState.AVAILABLE, out)

    # -- offers -----------------------------------------------------------------------------------

    def dispatch(self, now: float, out: list[Command]) -> None:
        """Each caller, in queue order, gets the best listener they may have: first rank of their reach,
        then longest idle.

        After every dispatch nobody free may take anyone waiting, so only what changed since can make an
        offer: a listener newly free (for every waiting call), a call newly waiting or whose reach widened
        (for every free listener), a change in the skills held on duty (for the calls that asked for
        skills). Calls of equal requirements wait in one bucket, and a later one in it has waited no
        longer than an earlier one, so it may take no listener the earlier may not: a bucket is looked at
        from its head, and no further once its head finds nobody. The result is the same as trying every
        waiting caller against every free listener (tests/unit/core/test_dispatch_matches_reference.py)."""
        floor = self._floor
        floor.settle(now)
        flipped: set[int] = set()
        for bucket in floor.waiting.buckets.values():
            if bucket.requirements.wanted:
                held = floor.duty.hold(bucket.requirements.wanted)
                if bucket.held is not None and held != bucket.held:
                    flipped.add(id(bucket))
                bucket.held = held
        if not len(floor.free):
            return
        new_free = dict(floor.new_free)
        # (priority, place, how, number, call id, whether its bucket's next call follows, its bucket)
        entries: list[tuple[int, int, int, int, str, bool, Bucket]] = []

        def look_at(bucket: Bucket, place: tuple[int, float, str], how: int, chain: bool) -> None:
            entry = (-bucket.requirements.priority, place[0], how, len(entries), place[2], chain, bucket)
            heapq.heappush(entries, entry)

        for bucket in floor.waiting.buckets.values():
            how = _EVERYONE if id(bucket) in flipped else _NEWLY_FREE
            if how == _NEWLY_FREE and not new_free:
                continue
            for place in bucket.places[:1] if bucket.ordered else bucket.places:
                look_at(bucket, place, how, bucket.ordered)
        for call in floor.new_waiting.values():
            own = floor.waiting.bucket_of(call.call_id)
            if own is not None:
                look_at(own, (call.place, call.queued_at, call.call_id), _EVERYONE, False)
        looked: set[str] = set()
        while entries and len(floor.free):
            _, _, how, _, call_id, chain, bucket = heapq.heappop(entries)
            waiting = floor.waiting.bucket_of(call_id) is bucket
            if waiting and call_id not in looked:
                looked.add(call_id)
                call = floor.calls[call_id]
                listener = self._best(call, bucket, now, None if how == _EVERYONE else new_free)
                if listener is None:
                    continue  # and, in an ordered bucket, nobody after it may be offered either
                self._offer(call, listener, now, out)
                floor.settle(now)
            elif waiting:
                continue  # looked at already, from another entry, and nobody was found
            # It was offered: in an ordered bucket, the next call is up.
            if chain and bucket.places and bucket.places[0][2] not in looked:
                look_at(bucket, bucket.places[0], how, True)

    def _best(
        self, call: Call, bucket: Bucket, now: float, among: dict[str, Listener] | None
    ) -> Listener | None:
        """The best free listener for the call: among all (by group), or among those newly free."""
        floor = self._floor
        needs = bucket.requirements
        waited = now - call.queued_at
        held = not needs.wanted or bool(bucket.held)
        steps = bucket.steps(waited)
        best: tuple[int, float, str] | None = None
        if needs.only_listener is not None:
            candidates: list[tuple[FreeGroup, float, str]] = []
            group = floor.free.group_of(needs.only_listener)
            if group is not None and (among is None or needs.only_listener in among):
                candidates.append(
                    (group, floor.listeners[needs.only_listener].idle_since, needs.only_listener)
                )
        elif among is None:
            candidates = [(group, *floor.free.head(group)) for group in floor.free.groups.values()]
        else:
            candidates = [
                (group, x.idle_since, lid)
                for lid, x in among.items()
                if (group := floor.free.group_of(lid)) is not None
            ]
        ranks = bucket.ranks
        for group, idle, lid in candidates:
            key = (group.number, steps, held)
            r = ranks.get(key, _UNKNOWN)
            if r is _UNKNOWN:
                if len(ranks) > _RANKS_KEPT:
                    ranks.clear()
                r = ranks[key] = rank(needs, group.profile, waited, wanted_held=held)
            if r is not None and (best is None or (r, idle, lid) < best):
                best = (r, idle, lid)
        return None if best is None else floor.listeners[best[2]]

    def _offer(self, call: Call, listener: Listener, now: float, out: list[Command]) -> None:
        call.state = CallState.RINGING
        call.listener_id = listener.listener_id
        call.offers += 1
        if call.first_offered_at is None:
            call.first_offered_at = now
        self._listeners.enter(listener, ListenerState.RINGING, out, mirror=False)
        ring(self._floor, call, listener, out)

    def answered(self, call: Call, now: float, out: list[Command]) -> None:
        assert call.listener_id is not None
        listener = self._floor.listeners[call.listener_id]
        call.state = CallState.CONNECTED
        call.answered_at = now
        out.append(CancelTimer(ring_key(call.call_id, listener.listener_id)))
        out.append(ConnectCall(call.call_id, listener.listener_id))
        self._listeners.answered(listener, call.call_id, out)

    def connect_failed(self, event: ConnectFailed, now: float, out: list[Command]) -> None:
        call = self._floor.calls.get(event.call_id)
        if call is None or call.state is not CallState.CONNECTED or call.listener_id != event.listener_id:
            return
        listener = self._floor.listeners[event.listener_id]
        call.state = CallState.WAITING
        call.listener_id = None
        call.answered_at = None
        self._listeners.connect_failed(listener, call.call_id, now, out)

    # -- the end of a call ------------------------------------------------------------------------

    def listener_left(self, event: ListenerLeft, now: float, out: list[Command]) -> None:
        call = self._floor.calls.get(event.call_id)
        if call is None or call.state is not CallState.CONNECTED:
            return
        if self._help.left(call, event.listener_id, now, out):
            return
        if call.listener_id == event.listener_id:
            self._finish_bridged(call, now, out)

    def _finish_bridged(self, call: Call, now: float, out: list[Command]) -> None:
        assert call.listener_id is not None
        listener = self._floor.listeners[call.listener_id]
        out.append(EndCall(call.call_id, listener.listener_id))
        help = call.help
        self._close(call, "served", now, out)
        self._help.ended(call, help, now, out)
        call.help = None
        self._listeners.after_call(listener, call, now, out)

    def escalated(self, key: TimerKey) -> None:
        call = self._floor.calls.get(key.call_id or "")
        if call is not None and key in call.escalations:
            # Nothing else to do: the dispatch that follows every event sees the wider reach.
            call.escalations.remove(key)

    def _close(self, call: Call, outcome: Outcome, now: float, out: list[Command]) -> None:
        self._floor.remove_call(call)
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
