"""Help within a call: a professional or the supervisor on duty asked into it by its listener, to join
(three-way) or to take the call over (handover)."""

from helpline_pbx.core.commands import CancelTimer, Command, JoinCall, ListenerState, ReleaseListener
from helpline_pbx.core.events import HelpRequested
from helpline_pbx.core.listeners import Listeners
from helpline_pbx.core.model import (
    Call,
    CallState,
    Floor,
    Help,
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
        open_requests = [
            c for c in self._floor.with_help.values() if c.help is not None and c.help.helper_id is None
        ]
        # In queue order, as the calls came.
        for call in sorted(open_requests, key=lambda c: c.place):
            self._find_helper(call, out)

    def _find_helper(self, call: Call, out: list[Command]) -> None:
        """The longest idle listener of the role asked for who speaks the caller's language: free now, or
        (for the supervisor) paused by choice. Free listeners are compared by group (index.py)."""
        assert call.help is not None
        kind, language = call.help.kind, call.requirements.language
        floor = self._floor
        best: tuple[float, str] | None = None
        for group in floor.free.groups.values():
            profile = group.profile
            if (
                profile.role == kind
                and not profile.trainee
                and (language is None or language in profile.languages)
            ):
                head = floor.free.head(group)
                best = head if best is None or head < best else best
        if kind == "supervisor":
            for x in floor.paused_supervisors.values():
                if language is None or language in x.profile.languages:
                    best = (
                        min(best, (x.idle_since, x.listener_id))
                        if best is not None
                        else (x.idle_since, x.listener_id)
                    )
        if best is None:
            return
        helper = floor.listeners[best[1]]
        call.help.helper_id = helper.listener_id
        call.help.attempts += 1
        self._listeners.enter(helper, ListenerState.RINGING, out, mirror=False)
        ring(self._floor, call, helper, out, helper=True)
        # The next request looks at the floor as this one left it.
        floor.settle_listeners()

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
