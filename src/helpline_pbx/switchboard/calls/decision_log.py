"""The log lines a decision leaves: offers, offers missed or declined, and the line's own pauses."""

from __future__ import annotations

import time

import structlog

from helpline_pbx.core import CancelOffer, Command, ListenerState, OfferCall, SetListenerState

log = structlog.get_logger(__name__)

# Why the core rested a listener after an offer, as the log names it.
_OFFER_OUTCOMES = {
    "missed_offer": "offer_missed",
    "declined_offer": "offer_declined",
    "connect_failed": "offer_not_connected",
}
# Why the line pauses a listener on its own.
_LINE_PAUSES = frozenset({"missed_offers", "shift_limit"})


def log_decision(command: Command, last_offer: dict[str, str]) -> None:
    """Offers, offers missed or declined, and the line's own pauses: what an ops engineer asks about a
    listener's phone, by ids only (a call id is the service's own, never a number). `last_offer`: the call
    last offered to each listener (a rest after an offer names no call)."""
    match command:
        case OfferCall():
            last_offer[command.listener_id] = command.call_id
            log.info(
                "call_offered",
                call_id=command.call_id,
                listener_id=command.listener_id,
                ring_timeout=command.ring_timeout,
                helper=command.helper,
            )
        case CancelOffer():
            log.info("offer_withdrawn", call_id=command.call_id, listener_id=command.listener_id)
        case SetListenerState(reason=reason) if reason in _OFFER_OUTCOMES:
            rest = None if command.until is None else round(command.until - time.time(), 1)
            log.info(
                _OFFER_OUTCOMES[reason],
                call_id=last_offer.get(command.listener_id),
                listener_id=command.listener_id,
                rest=rest,
            )
        case SetListenerState(state=ListenerState.PAUSED, reason=reason) if reason in _LINE_PAUSES:
            # After missed offers, the call they last missed.
            missed = last_offer.get(command.listener_id) if reason == "missed_offers" else None
            log.warning(
                "listener_paused_by_line", listener_id=command.listener_id, reason=reason, call_id=missed
            )
        case _:
            pass
