"""Help within a call: a professional or the supervisor on duty asked into it by its listener, to join
(three-way) or to take the call over (handover)."""

from helpline_pbx.core.commands import CancelTimer, Command, JoinCall, ListenerState, ReleaseListener
from helpline_pbx.core.events import HelpKind, HelpRequested
from helpline_pbx.core.listeners import Listeners
from helpline_pbx.core.model import (
    MISSED_OFFERS,
    SHIFT_LIMIT,
    Call,
    CallState,
    Floor,
    Help,
    Listener,
    ring_key,
)
from helpline_pbx.core.offers import ring


class HelpDesk:
    def __init__(self, floor: Floor, listeners: Listeners) -> None:
        self._floor = floor
        self._listeners = listeners

    def requested(self, event: HelpRequested) -> None:
        call = self._floor.calls.get(event.call_id)
        if call is None or call.state is not CallState.CONNECTED or call.help is not None:
            return
        if call.listener_id != event.listener_id:
            return
        # The dispatch that follows every event looks for the helper, before any waiting caller.
        call.help = Help(event.kind, event.handover, event.listener_id)

    def dispatch(self, out: list[Command]) -> None:
        """A listener asking for help in a call comes before any waiting caller."""
        for call in [
            c for c in self._floor.calls.values() if c.help is not None and c.help.helper_id is None
        ]:
            self._find_helper(call, out)

    def _find_helper(self, call: Call, out: list[Command]) -> None:
        assert call.help is not None
        language = call.requirements.language
        candidates = [
            x
            for x in self._floor.listeners.values()
            if _may_help(x, call.help.kind)
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
        self._listeners.enter(helper, ListenerState.RINGING, out, mirror=False)
        ring(self._floor, call, helper, out, helper=True)

    def answered(self, call: Call, now: float, out: list[Command]) -> None:
        """The helper answered: they join the call; after a handover its listener leaves it to them."""
        assert call.help is not None
        assert call.help.helper_id is not None
        assert call.listener_id is not None
        helper = self._floor.listeners[call.help.helper_id]
        call.help.joined = True
        out.append(CancelTimer(ring_key(call.call_id, helper.listener_id)))
        out.append(JoinCall(call.call_id, helper.listener_id))
        self._listeners.answered(helper, call.call_id, out)
        if call.help.handover:
            # The listener hands the caller over and leaves: the helper is now the call's listener.
            first = self._floor.listeners[call.listener_id]
            out.append(ReleaseListener(call.call_id, first.listener_id))
            call.listener_id = helper.listener_id
            call.help = None
            self._listeners.after_call(first, call, now, out)

    def left(self, call: Call, listener_id: str, now: float, out: list[Command]) -> bool:
        """One of the two leaves a three-way call, which goes on with the other; False if not three-way."""
        help = call.help
        if help is None or not help.joined or help.helper_id is None:
            return False
        if help.helper_id == listener_id:
            # The helper leaves; the listener goes on with the caller.
            call.help = None
            self._listeners.after_call(self._floor.listeners[listener_id], call, now, out)
            return True
        if call.listener_id != listener_id:
            return False
        # The listener leaves: the helper goes on with the caller.
        first = self._floor.listeners[listener_id]
        call.listener_id = help.helper_id
        call.help = None
        self._listeners.after_call(first, call, now, out)
        return True

    def ended(self, call: Call, help: Help | None, now: float, out: list[Command]) -> None:
        """The call ended (and is closed): the helper's part in it too."""
        if help is None or help.helper_id is None:
            return
        helper = self._floor.listeners[help.helper_id]
        if help.joined:
            self._listeners.after_call(helper, call, now, out)
        else:
            # Asked in, never answered: their ringing leg ends with the call (EndCall); not their fault.
            out.append(CancelTimer(ring_key(call.call_id, helper.listener_id)))
            self._listeners.settle_next(helper, now, out)


def _may_help(listener: Listener, kind: HelpKind) -> bool:
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
