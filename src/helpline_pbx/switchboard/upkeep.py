"""What runs beside the event loop while the service lives: the waiting callers' heartbeat (with the
audit behind the event stream) and the roster poll."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable

import structlog

from helpline_pbx.ari.errors import AriError
from helpline_pbx.core import CallQueue, CallState
from helpline_pbx.protocol import alive_lane
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.phases import Round
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.recovery import Recovery

log = structlog.get_logger(__name__)

# Seconds between two ticks of the keep-alive: each tick refreshes the callers whose phase it is.
KEEP_ALIVE_TICK = 0.5


async def keep_waiting_callers_alive(
    *,
    grace: float,
    connected: asyncio.Event,
    recovery: Recovery,
    queue: CallQueue,
    book: LegBook,
    executor: Executor,
    prompt_playing: Callable[[str], bool] = lambda call_id: False,
) -> None:
    """Push every waiting caller's absolute timeout forward while we live.

    If the service dies and does not come back within the grace time, Asterisk's own timer fires, the
    caller leaves Stasis for the dialplan's T extension and reaches the fallback: nothing depending on
    the service is needed to move them.

    Each caller is refreshed once a round (a quarter of the grace: three rounds may fail before the timer
    fires), at their own phase in it: with 1,000 waiting and a 15 s round, about 33 requests every half
    second instead of 1,000 at once every 15 s, which overran Asterisk's HTTP sessions. The audit runs once
    a round. A caller hearing one of our prompts when their turn comes is refreshed once it is over (tried
    again each tick, but never later than one round after their turn: a prompt whose end we never heard of
    must not let their timer run out): Asterisk holds up a request about a channel in a bridge until its
    playback ends, and each such request held one of Asterisk's HTTP sessions for the prompt's length.
    """
    round_ = Round(max(1, math.floor(grace / 4 / KEEP_ALIVE_TICK)))

    while True:
        if connected.is_set():
            if round_.tick % round_.slots == 0:
                try:
                    await recovery.audit()
                except AriError as exc:
                    log.warning("audit_failed", error=exc.code)
            talking = _talking(queue, book)
            for call_id in round_.due(
                (c.call_id for c in book.calls() if c.call_id not in talking), prompt_playing
            ):
                call = book.call(call_id)
                if call is not None:
                    executor.lanes.submit(
                        alive_lane(call_id),
                        functools.partial(executor.keep_alive, call.caller_channel, grace),
                    )
        await asyncio.sleep(KEEP_ALIVE_TICK)


def _talking(queue: CallQueue, book: LegBook) -> set[str]:
    """The calls bridged with a listener: out of Stasis's timer's reach, nothing to keep alive."""
    talking = set()
    for call in book.calls():
        view = queue.call(call.call_id)
        if view is not None and view.state is CallState.CONNECTED:
            talking.add(call.call_id)
    return talking


async def poll_roster(*, interval: float, connected: asyncio.Event, sync: RosterSync) -> None:
    """Bring the core and the phones in step with the roster's changes (CLI edits, other instances)."""
    while True:
        await asyncio.sleep(interval)
        if not connected.is_set():
            continue
        try:
            await sync.run(force=False)
        except (AriError, RosterError) as exc:
            log.warning("roster_sync_failed", error=exc.code)
