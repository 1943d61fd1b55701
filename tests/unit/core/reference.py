"""The dispatch rules in their plainest form, as they were written before the floor had indexes: every
waiting caller, in queue order, against every listener. The indexed dispatch must decide exactly the same
(test_dispatch_matches_reference.py); this is the specification, kept to prove it."""

from __future__ import annotations

import math
from types import MethodType

from helpline_pbx.core import CallQueue, Policy
from helpline_pbx.core.calls import Calls
from helpline_pbx.core.commands import Command, ListenerState
from helpline_pbx.core.help import HelpDesk
from helpline_pbx.core.model import MISSED_OFFERS, SHIFT_LIMIT, CallState, Listener
from helpline_pbx.core.offers import ring
from helpline_pbx.core.routing import rank


def _calls_dispatch(self: Calls, now: float, out: list[Command]) -> None:
    floor = self._floor
    listeners = floor.listeners.values()
    for call in [c for c in self.queue_order() if c.state is CallState.WAITING]:
        available = [x for x in listeners if x.state is ListenerState.AVAILABLE and x.reachable]
        if not available:
            return
        needs = call.requirements
        waited = now - call.queued_at
        held = not needs.wanted or any(needs.wanted <= x.profile.skills for x in listeners if x.on_duty)
        ranked = [
            (r, x.idle_since, x.listener_id, x)
            for x in available
            if (needs.only_listener is None or x.listener_id == needs.only_listener)
            and (r := rank(needs, x.profile, waited, wanted_held=held)) is not None
        ]
        if ranked:
            best = min(ranked, key=lambda t: (t[0], t[1], t[2]))
            self._offer(call, best[3], now, out)


def _may_help(listener: Listener, kind: str) -> bool:
    if listener.state is ListenerState.AVAILABLE:
        return True
    return (
        kind == "supervisor"
        and listener.state is ListenerState.PAUSED
        and listener.until is None
        and listener.online
        and listener.paused_reason not in (None, MISSED_OFFERS, SHIFT_LIMIT)
    )


def _help_dispatch(self: HelpDesk, out: list[Command]) -> None:
    floor = self._floor
    for call in [c for c in floor.calls.values() if c.help is not None and c.help.helper_id is None]:
        assert call.help is not None
        language = call.requirements.language
        candidates = [
            x
            for x in floor.listeners.values()
            if _may_help(x, call.help.kind)
            and x.reachable
            and x.profile.role == call.help.kind
            and not x.profile.trainee
            and x.listener_id != call.listener_id
            and (language is None or language in x.profile.languages)
        ]
        if not candidates:
            continue
        helper = min(candidates, key=lambda x: (x.idle_since, x.listener_id))
        call.help.helper_id = helper.listener_id
        call.help.attempts += 1
        self._listeners.enter(helper, ListenerState.RINGING, out, mirror=False)
        ring(floor, call, helper, out, helper=True)


def reference_queue(policy: Policy) -> CallQueue:
    """A call queue deciding by the plain rules (its indexes are kept, and not used)."""
    queue = CallQueue(policy)
    calls: Calls = queue._calls
    help_desk: HelpDesk = queue._help
    calls.dispatch = MethodType(_calls_dispatch, calls)  # type: ignore[method-assign]
    help_desk.dispatch = MethodType(_help_dispatch, help_desk)  # type: ignore[method-assign]
    return queue


class Twins:
    """Two queues fed the same events: the indexed one and the reference. Every decision must agree."""

    def __init__(self, policy: Policy) -> None:
        self.indexed = CallQueue(policy)
        self.reference = reference_queue(policy)

    def handle(self, event: object, now: float) -> list[Command]:
        got = self.indexed.handle(event, now)  # type: ignore[arg-type]
        expected = self.reference.handle(event, now)  # type: ignore[arg-type]
        assert got == expected, f"after {event} at {now}:\n indexed   {got}\n reference {expected}"
        floor = self.indexed._floor
        for call_id in [None, *floor.calls]:
            call = floor.calls.get(call_id or "")
            plain = sum(
                1
                for x in floor.listeners.values()
                if x.on_duty
                and x.reachable
                and (
                    call is None
                    or rank(call.requirements, x.profile, math.inf, wanted_held=False) is not None
                )
            )
            assert self.indexed.on_duty(call_id) == plain, f"on duty for {call_id} after {event}"
        return got

    def __getattr__(self, name: str) -> object:
        return getattr(self.indexed, name)
