"""Ringing a listener's phone for a call, and stopping it: the call's own offer and a request for help
share one deadline (the ring timer) and one way back."""

from helpline_pbx.core.commands import CancelOffer, CancelTimer, Command, OfferCall, StartTimer
from helpline_pbx.core.model import HELP_ATTEMPTS, Call, CallState, Floor, Listener, Ringing, ring_key


def ring(floor: Floor, call: Call, listener: Listener, out: list[Command], *, helper: bool = False) -> None:
    """Ring the listener for the call. The roster claim moves them to ringing, so no state is mirrored."""
    timeout = floor.ring_timeout(call)
    # The timer goes first so that no phone rings without a deadline, even if the executor
    # stops half-way through this batch.
    out.append(StartTimer(ring_key(call.call_id, listener.listener_id), timeout))
    out.append(OfferCall(call.call_id, listener.listener_id, listener.endpoint, timeout, helper=helper))


def withdraw(
    floor: Floor, ringing: Ringing, out: list[Command], *, cancel_offer: bool, timer_running: bool = True
) -> Listener:
    """Stop that offer; returns the listener it rang, whose state the caller decides. A caller goes back
    to the queue, place kept; a help request stays open for another helper, a few times."""
    call = ringing.call
    if timer_running:
        out.append(CancelTimer(ring_key(call.call_id, ringing.listener_id)))
    if cancel_offer:
        out.append(CancelOffer(call.call_id, ringing.listener_id))
    if ringing.helper:
        assert call.help is not None
        call.help.helper_id = None
        if call.help.attempts >= HELP_ATTEMPTS:
            call.help = None
    else:
        call.state = CallState.WAITING
        call.listener_id = None
    return floor.listeners[ringing.listener_id]


def withdraw_from(floor: Floor, listener: Listener, out: list[Command]) -> None:
    """Withdraw whatever offer is ringing this listener's phone (a caller's or a help request)."""
    call = floor.call_of(listener.listener_id)
    ringing = None if call is None else floor.ringing(call.call_id, listener.listener_id)
    if ringing is not None:
        withdraw(floor, ringing, out, cancel_offer=True)
