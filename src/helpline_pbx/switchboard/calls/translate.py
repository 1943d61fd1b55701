"""ARI events in, core events out: a pure function of the event and the leg book."""

from __future__ import annotations

from helpline_pbx.ari.models import ChannelDestroyed, StasisEnd, StasisStart
from helpline_pbx.core import (
    CallerLeft,
    Event,
    ListenerLeft,
    OfferAnswered,
    OfferFailed,
)
from helpline_pbx.core.events import OfferFailure
from helpline_pbx.switchboard.calls.legs import LegBook

# Q.850 causes as Asterisk reports them when a listener's phone did not take the call.
_BUSY_CAUSES = frozenset({17, 21})  # user busy (486), call rejected (603)
_NO_ANSWER_CAUSES = frozenset({16, 18, 19})  # cleared before answer, no user responding, no answer


def offer_failure(cause: int) -> OfferFailure:
    if cause in _BUSY_CAUSES:
        return "busy"
    if cause in _NO_ANSWER_CAUSES:
        return "no_answer"
    return "unreachable"


def listener_answered(event: StasisStart, book: LegBook) -> list[Event]:
    leg = book.leg(event.channel.id)
    if leg is None or leg.role != "listener" or leg.listener_id is None or leg.released:
        return []
    leg.answered = True
    return [OfferAnswered(call_id=leg.call_id, listener_id=leg.listener_id)]


def channel_gone(event: ChannelDestroyed | StasisEnd, book: LegBook) -> list[Event]:
    """A leg ended (hung up, destroyed, or left the application)."""
    cause = event.cause if isinstance(event, ChannelDestroyed) else None
    return leg_gone(event.channel.id, cause, book)


def leg_gone(channel_id: str, cause: int | None, book: LegBook) -> list[Event]:
    """A leg is no more (cause None: we only know it is gone, e.g. Asterisk restarted meanwhile)."""
    leg = book.leg(channel_id)
    if leg is None or leg.released:
        return []
    # Only the first of StasisEnd / ChannelDestroyed is news; the second finds the leg released.
    leg.released = True
    if leg.role == "caller":
        return [CallerLeft(call_id=leg.call_id)]
    assert leg.listener_id is not None
    if leg.answered:
        return [ListenerLeft(call_id=leg.call_id, listener_id=leg.listener_id)]
    reason = offer_failure(cause) if cause is not None else "no_answer"
    return [OfferFailed(call_id=leg.call_id, listener_id=leg.listener_id, reason=reason)]
