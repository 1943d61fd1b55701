"""What runs beside the event loop while the service lives: the waiting callers' heartbeat (with the
audit behind the event stream) and the roster poll."""

from __future__ import annotations

import asyncio
import functools

import structlog

from helpline_pbx.ari.errors import AriError
from helpline_pbx.core import CallQueue, CallState
from helpline_pbx.protocol import alive_lane
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.recovery import Recovery

log = structlog.get_logger(__name__)


async def keep_waiting_callers_alive(
    *,
    grace: float,
    connected: asyncio.Event,
    recovery: Recovery,
    queue: CallQueue,
    book: LegBook,
    executor: Executor,
) -> None:
    """Push every waiting caller's absolute timeout forward while we live.

    If the service dies and does not come back within the grace time, Asterisk's own timer fires, the
    caller leaves Stasis for the dialplan's T extension and reaches the fallback: nothing depending on
    the service is needed to move them.
    """
    while True:
        if connected.is_set():
            try:
                await recovery.audit()
            except AriError as exc:
                log.warning("audit_failed", error=exc.code)
            talking = {view.call_id for view in queue.calls() if view.state is CallState.CONNECTED}
            for call in book.calls():
                if call.call_id not in talking:
                    executor.lanes.submit(
                        alive_lane(call.call_id),
                        functools.partial(executor.keep_alive, call.caller_channel, grace),
                    )
        await asyncio.sleep(grace / 4)


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
