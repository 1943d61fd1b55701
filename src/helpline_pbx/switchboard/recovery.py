"""After a (re)connection, and as a safety net while connected: Asterisk's live calls are the truth.

The reconcile rebuilds the queue from our application's channels and bridges (it never lists every
channel), re-adopting talking calls and waiting callers; the audit ends what the core knows but Asterisk
no longer has.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import Channel
from helpline_pbx.core import CallerArrived, CallResumed, Event
from helpline_pbx.lines.arrivals import requirements_of
from helpline_pbx.lines.cache import LineCache
from helpline_pbx.lines.snapshots import LineSnapshot
from helpline_pbx.protocol import (
    CHOICE,
    FEATURE_APP,
    agi_of_number,
    app_of_number,
    call_of_talk_bridge,
    channel_lane,
    endpoint_of,
)
from helpline_pbx.roster.repository import Roster
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.calls.translate import leg_gone
from helpline_pbx.switchboard.inventory import (
    READ_CONCURRENCY,
    is_caller,
    live_among,
    own_channels,
    read_channels,
)
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.supervision.model import is_supervision_channel

log = structlog.get_logger(__name__)


def arrival(channel: Channel) -> float:
    return channel.creationtime.timestamp() if channel.creationtime else time.time()


class Recovery:
    def __init__(
        self,
        *,
        ari: Ari,
        app: str,
        line_name: str,
        dids: tuple[str, ...],
        agi_url: str | None,
        roster: Roster,
        book: LegBook,
        executor: Executor,
        lines: LineCache,
        sync: RosterSync,
        feed: Callable[[Event], None],
    ) -> None:
        self._ari = ari
        self._app = app
        self._line_name = line_name
        self._dids = dids
        self._agi_url = agi_url
        self._roster = roster
        self._book = book
        self._executor = executor
        self._lines = lines
        self._sync = sync
        self._feed = feed

    async def claim_numbers(self) -> None:
        """Tell the dialplan which numbers come to this instance (globals survive the service)."""
        await self._ari.set_global_variable(FEATURE_APP, self._app)
        for did in self._dids:
            await self._ari.set_global_variable(app_of_number(did), self._app)
            if self._agi_url:
                await self._ari.set_global_variable(agi_of_number(did), self._agi_url)

    async def reconcile(self) -> None:
        """Rebuild the picture of live calls from Asterisk, before any new event is handled.

        After a restart of the service the core is empty; after a restart of Asterisk the calls the core
        knows are gone. Asterisk owns the live calls: calls bridged with a listener go on, callers waiting in
        the holding bridge are re-adopted in their order of arrival, legs of ours that vanished are reported
        gone, and channels left in our application that are none of these go to the fallback.
        """
        bridges = await self._ari.list_bridges()
        channels = await own_channels(self._ari, self._app)
        ours = set(channels)
        # Legs the book knows that left our application (none, unless events were lost) are read too.
        channels.update(await read_channels(self._ari, self._book.channel_ids() - ours))
        self._forget_vanished(set(channels))

        handled: set[str] = set()
        resumed = 0
        for bridge in bridges:
            call_id = call_of_talk_bridge(bridge.id)
            if (
                call_id is None
                # Another instance's call on this Asterisk: not ours to resume, and above all not ours to end.
                or not self._book.owns_call_id(call_id)
                or self._book.call(call_id)
            ):
                handled.update(bridge.channels)
                continue
            handled.update(bridge.channels)
            if await self._resume(call_id, bridge.channels, channels):
                resumed += 1

        holding = next((b for b in bridges if b.id == self._executor.holding_bridge), None)
        waiting = [
            channels[c]
            for c in (holding.channels if holding else [])
            if c in channels and not self._book.leg(c)
        ]
        # Callers in our application but in no bridge were being admitted when we stopped: they wait too.
        unbridged = [
            channels[c]
            for c in ours - handled
            if c in channels
            and not self._book.leg(c)
            and self._book.parse_listener_channel(c) is None
            and is_caller(channels[c])
        ]
        # What each caller chose in the menu, read for all of them at once (the pool bounds the requests), and
        # their keep-alive pushed forward with it: their timer kept running while we were away, and the
        # keep-alive's round would reach the last of them only a round later.
        callers = sorted([*waiting, *unbridged], key=arrival)
        choices = await self._read_choices([c.id for c in callers])
        admitting = {c.id for c in unbridged}
        for channel in callers:
            line, label, snapshot = self._line_of(channel)
            # The menu choice the dialplan stored on the channel: the caller keeps what they asked for.
            call = self._book.open_call(channel.id, line, label)
            if channel.id in admitting:
                self._executor.admit(call)
            self._feed(
                CallerArrived(
                    call_id=call.call_id,
                    line=line,
                    arrived_at=arrival(channel),
                    requirements=requirements_of(
                        snapshot, choices.get(channel.id, ""), self._sync.listener_by_code
                    ),
                )
            )
        handled.update(c.id for c in waiting)
        handled.update(c.id for c in unbridged)

        orphans = [c for c in ours - handled if c in channels and not self._book.leg(c)]
        for channel_id in orphans:
            # A ringing leg whose offer we lost, or a phone in a feature code: end it. The core offers
            # the caller again.
            self._executor.lanes.submit(channel_lane(channel_id), functools.partial(self._hangup, channel_id))
        live = {call.call_id for call in self._book.calls()}
        repaired = await self._roster.repair(
            live, now=datetime.now(UTC), call_id_prefix=self._book.call_id_prefix
        )
        log.info(
            "reconciled",
            resumed=resumed,
            waiting=len(waiting) + len(unbridged),
            orphans=len(orphans),
            listeners_repaired=repaired,
        )

    def _line_of(self, channel: Channel) -> tuple[str, str, LineSnapshot | None]:
        """(line name, label for phones, the line) of a caller found in Asterisk, from the number dialled."""
        number = channel.dialplan.exten if channel.dialplan else "s"
        snapshot = self._lines.line_by_number.get(number)
        if snapshot is None:
            return number, self._line_name, None
        return snapshot.name, snapshot.label, snapshot

    async def _read_choices(self, channel_ids: list[str]) -> dict[str, str]:
        """Each caller's menu choice, by channel id, read in parallel; a caller gone meanwhile has none."""
        gate = asyncio.Semaphore(READ_CONCURRENCY)

        async def one(channel_id: str) -> tuple[str, str]:
            async with gate:
                choice, _ = await asyncio.gather(
                    self._channel_variable(channel_id, CHOICE),
                    self._executor.keep_alive(channel_id, self._executor.service_grace),
                )
                return channel_id, choice

        return dict(await asyncio.gather(*(one(c) for c in channel_ids)))

    async def _channel_variable(self, channel_id: str, name: str) -> str:
        try:
            return await self._ari.get_variable(channel_id, name)
        except AriNotFound:
            return ""

    def _forget_vanished(self, live_channels: set[str]) -> int:
        """End what the core knows but Asterisk no longer has (an event we never got): no ghost calls."""
        vanished = 0
        for call in self._book.calls():
            for channel_id in [call.caller_channel, *call.listener_channels.values()]:
                if channel_id not in live_channels:
                    vanished += 1
                    for event in leg_gone(channel_id, None, self._book):
                        self._feed(event)
                    self._book.forget_channel(channel_id)
        return vanished

    async def audit(self) -> None:
        """The safety net behind the event stream: compare our calls with Asterisk's channels."""
        snapshot = {c.call_id for c in self._book.calls()}
        if not snapshot:
            return
        live = await live_among(self._ari, self._app, self._book.channel_ids())
        # Calls that started while we listed channels are not ghosts: only judge those seen before.
        for call in self._book.calls():
            if call.call_id not in snapshot:
                live.update([call.caller_channel, *call.listener_channels.values()])
        if vanished := self._forget_vanished(live):
            log.warning("vanished_legs_ended", legs=vanished)

    async def _resume(self, call_id: str, members: list[str], channels: dict[str, Channel]) -> bool:
        """Re-adopt a talk bridge of ours: caller and listener go on talking; otherwise end what is left."""
        listener_legs = [(c, self._book.parse_listener_channel(c)) for c in members]
        listener = next(((c, p) for c, p in listener_legs if p is not None and p[0] == call_id), None)
        # A supervisor who joined is no second caller: the call goes on (supervision/ lets them go).
        callers = [
            c
            for c in members
            if self._book.parse_listener_channel(c) is None
            and c in channels
            and not is_supervision_channel(channels[c])
        ]
        if listener is None or len(callers) != 1 or listener[0] not in channels:
            for channel_id in members:
                self._executor.lanes.submit(
                    channel_lane(channel_id), functools.partial(self._hangup, channel_id)
                )
            return False
        listener_channel, (_, listener_id) = listener[0], listener[1]
        caller = channels[callers[0]]
        line, label, _ = self._line_of(caller)
        call = self._book.open_call(caller.id, line, label, call_id=call_id)
        self._book.add_listener_leg(call, listener_id, listener_channel, answered=True)
        endpoint = endpoint_of(channels[listener_channel].name) or ""
        self._feed(
            CallResumed(
                call_id=call_id,
                line=line,
                listener_id=listener_id,
                endpoint=endpoint,
                arrived_at=arrival(caller),
                answered_at=arrival(channels[listener_channel]),
            )
        )
        return True

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.hangup(channel_id)
