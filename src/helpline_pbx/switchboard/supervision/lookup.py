"""Whom a supervisor's code names: the listener by their short code, and the call they are talking on."""

from __future__ import annotations

from helpline_pbx.core import CallQueue
from helpline_pbx.roster.errors import ListenerNotFound
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.switchboard.calls.legs import LegBook


async def listener_by_code(roster: Roster, code: str) -> ListenerSnapshot | None:
    if not code.isdigit() or len(code) > 6:
        return None
    try:
        found = await roster.get_listener(code)
    except ListenerNotFound:
        return None
    if found.code == code:
        return found
    # Another listener's id, endpoint or pseudonym looked like this code: look by code alone.
    return next((x for x in await roster.list_listeners() if x.code == code), None)


def live_call(queue: CallQueue, book: LegBook, listener_id: str) -> tuple[str, str] | None:
    """(call id, listener's channel) of the call the listener is talking on, if any."""
    view = next((v for v in queue.listeners() if v.listener_id == listener_id), None)
    if view is None or view.call_id is None:
        return None
    channel_id = book.listener_channel(view.call_id, listener_id)
    leg = book.leg(channel_id) if channel_id is not None else None
    if channel_id is None or leg is None or not leg.answered or leg.released:
        return None
    return view.call_id, channel_id
