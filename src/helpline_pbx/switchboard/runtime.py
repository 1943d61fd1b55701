"""The service's main loop: ARI events in, core decisions out.

One task reads the event stream (whose socket reader never waits for us) and, for each event, asks the
core synchronously what to do; the executor carries the commands out on lanes. The core is only ever
touched from this loop, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from helpline_pbx.ari.errors import AriError, AriNotFound, AriUnavailable
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import (
    ApplicationReplaced,
    ChannelDestroyed,
    ChannelDtmfReceived,
    StasisEnd,
    StasisStart,
)
from helpline_pbx.ari.stream import Connected, Disconnected, EventStream, StreamItem
from helpline_pbx.core import (
    Command,
    DrainRequested,
    Event,
    Policy,
)
from helpline_pbx.core.supervision import DEFAULT_POLICY, SupervisionPolicy
from helpline_pbx.lines.cache import LineCache
from helpline_pbx.protocol import (
    StasisRole,
    channel_lane,
    grace_of_app,
)
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.settings import default_of
from helpline_pbx.switchboard.calls.admission import Admission
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.in_call import InCallCodes, help_event
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.calls.translate import channel_gone, listener_answered
from helpline_pbx.switchboard.core_loop import CoreLoop
from helpline_pbx.switchboard.features import Features
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.recovery import Recovery
from helpline_pbx.switchboard.supervision.sessions import Supervision
from helpline_pbx.switchboard.upkeep import keep_waiting_callers_alive, poll_roster
from helpline_pbx.switchboard.waiting_room.room import WaitingRoom

log = structlog.get_logger(__name__)

# Tries at the resync after a (re)connect while Asterisk does not answer in time, with a pause growing by
# this many seconds each time (2, 4, 6, 8 s).
RESYNC_ATTEMPTS = 5
RESYNC_BACKOFF = 2.0


@dataclass(frozen=True, slots=True)
class SwitchboardConfig:
    app: str
    line_name: str
    fallback_context: str
    roster_poll_interval: float
    drain_timeout: float
    policy: Policy
    # Show listeners "2e appel" when a (pseudonymous) caller called before within the key period.
    repeat_hint: bool = False
    # How long a supervisor's bar from their phone lasts.
    bar_days: float = default_of("bar_days")
    # A waiting caller whose service is gone this long leaves for the fallback (Asterisk's own timer).
    service_grace: float = default_of("service_grace")
    # The numbers this instance takes, and where the dialplan asks it to screen their callers.
    dids: tuple[str, ...] = ()
    agi_url: str | None = None
    # The listener hears a tone when a supervisor starts listening, coaching or joins (then everyone does).
    supervision_tone: bool = False
    supervision: SupervisionPolicy = DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class SwitchboardParts:
    """What the switchboard drives, each made once (app.build_switchboard)."""

    core: CoreLoop
    book: LegBook
    executor: Executor
    line_cache: LineCache
    sync: RosterSync
    features: Features
    admission: Admission
    recovery: Recovery
    supervision: Supervision
    waiting_room: WaitingRoom
    # Called with every ARI event, after the switchboard handled it (supervision, waiting room). They run
    # on the event loop's reader: they must not block (submit work to a lane instead).
    ari_observers: list[Callable[[StreamItem], None]]


class Switchboard:
    def __init__(
        self, config: SwitchboardConfig, ari: Ari, stream: EventStream, parts: SwitchboardParts
    ) -> None:
        self._config = config
        self._ari = ari
        self._stream = stream
        self._core = parts.core
        self.queue = parts.core.queue
        # Called after each decision with the event and the commands it produced (live view, tests).
        self.observers = parts.core.observers
        self.book = parts.book
        self.executor = parts.executor
        self.line_cache = parts.line_cache
        self.sync = parts.sync
        self._features = parts.features
        self._admission = parts.admission
        self._recovery = parts.recovery
        self.supervision = parts.supervision
        self.waiting_room = parts.waiting_room
        self.ari_observers = parts.ari_observers
        self._in_call_codes = InCallCodes()
        self._draining = False
        self._reconciled = False
        self._stopped = asyncio.Event()
        self._drained = asyncio.Event()
        self.connected = asyncio.Event()
        self.resyncs = 0
        self.replaced = False
        self._resync_changed = asyncio.Condition()
        self.handled_events = 0
        self.observers.append(self._note_drained)

    @property
    def connections(self) -> int:
        """How many times the events WebSocket opened (1 + reconnections)."""
        return self._stream.connections

    async def wait_resynced(self, times: int) -> None:
        """Until the service has connected and resynced `times` times since it started."""
        async with self._resync_changed:
            await self._resync_changed.wait_for(lambda: self.resyncs >= times)

    # ---- the core ------------------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        self._core.feed(event)

    def _note_drained(self, _event: Event, _commands: list[Command]) -> None:
        if self._draining and self.queue.idle:
            self._drained.set()

    # ---- main loop -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until drained (after request_drain) or stopped."""
        poller = asyncio.create_task(
            poll_roster(interval=self._config.roster_poll_interval, connected=self.connected, sync=self.sync)
        )
        heartbeat = asyncio.create_task(
            keep_waiting_callers_alive(
                grace=self._config.service_grace,
                connected=self.connected,
                recovery=self._recovery,
                queue=self.queue,
                book=self.book,
                executor=self.executor,
                prompt_playing=self.waiting_room.prompt_playing,
            )
        )
        try:
            async for item in self._stream:
                await self._on_item(item)
                if self._draining and self.queue.idle:
                    break
        finally:
            for task in (poller, heartbeat):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.executor.cancel_all_timers()
            await self.executor.wait_idle()
            await self.executor.lanes.close()
            self._stopped.set()

    async def _on_item(self, item: StreamItem) -> None:
        match item:
            case Connected():
                # Rebuild what Asterisk forgot before handling anything new: the stream keeps queuing.
                await self._on_connected()
            case Disconnected():
                self.connected.clear()
                if item.reason == "stopped":
                    log.info("ari_disconnected", reason=item.reason)
                else:
                    log.warning("ari_disconnected", reason=item.reason)
            case ApplicationReplaced():
                # Another process took our application name: two services would fight over every call.
                log.error("application_replaced", app=self._config.app)
                self.replaced = True
                await self._stream.close()
            case StasisStart():
                self._on_stasis_start(item)
            case ChannelDtmfReceived():
                self._on_dtmf(item.channel.id, item.digit)
            case ChannelDestroyed() | StasisEnd():
                for event in channel_gone(item, self.book):
                    self.feed(event)
                # After StasisEnd the channel is no longer ours (Asterisk may send no ChannelDestroyed).
                self.book.forget_channel(item.channel.id)
            case _:
                pass
        for observer in self.ari_observers:
            observer(item)
        self.handled_events += 1

    def _on_stasis_start(self, event: StasisStart) -> None:
        role = event.args[0] if event.args else ""
        if role == StasisRole.CALLER:
            self._admission.caller_entered(event, draining=self._draining)
        elif role == StasisRole.FEATURE:
            self.executor.lanes.submit(
                channel_lane(event.channel.id), lambda: self._features.run(event.channel, event.args)
            )
        elif role == StasisRole.SNOOP:
            pass  # a supervision's snoop channel: supervision/sessions.py bridges it (it sees this event too)
        elif role == StasisRole.LISTENER:
            for core_event in listener_answered(event, self.book):
                self.feed(core_event)
            leg = self.book.leg(event.channel.id)
            if leg is None or leg.released:
                # An answer for an offer we already withdrew: that phone must not stay off-hook.
                self.executor.lanes.submit(
                    channel_lane(event.channel.id), lambda: self._hangup(event.channel.id)
                )

    def _on_dtmf(self, channel_id: str, digit: str) -> None:
        """Codes a listener keys during a call: ask for help, hand over, mark the call difficult."""
        leg = self.book.leg(channel_id)
        if leg is None or leg.role != "listener" or not leg.answered or leg.listener_id is None:
            return
        action = self._in_call_codes.key(channel_id, digit, time.monotonic())
        if action is None:
            return
        log.info("in_call_code", call_id=leg.call_id, listener_id=leg.listener_id, action=action)
        self.feed(help_event(action, leg.call_id, leg.listener_id))

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.hangup(channel_id)

    # ---- connection and roster -----------------------------------------------------------------------

    async def _on_connected(self) -> None:
        self._reconciled = False
        for attempt in range(1, RESYNC_ATTEMPTS + 1):
            try:
                await self._resync()
                break
            except AriUnavailable as exc:
                # Asterisk overloaded (a request timed out). Before the reconcile, going on would send new
                # callers to the fallback (no lines) and leave the waiting ones to their timers: again, a
                # little later (the reconcile re-adopts only callers not adopted yet). After it, the roster
                # poll catches up with the rest, and new events must not wait longer.
                log.error("resync_failed", error=exc.code, attempt=attempt)
                if self._reconciled:
                    break
                if attempt < RESYNC_ATTEMPTS:
                    await asyncio.sleep(RESYNC_BACKOFF * attempt)
            except (AriError, RosterError) as exc:
                log.error("resync_failed", error=exc.code, attempt=attempt)
                break
        self.connected.set()
        self.resyncs += 1
        async with self._resync_changed:
            self._resync_changed.notify_all()
        log.info("ari_connected", app=self._config.app)

    async def _resync(self) -> None:
        await self._ari.set_global_variable(
            grace_of_app(self._config.app), str(int(self._config.service_grace))
        )
        await self.executor.ensure_holding_bridge()
        await self._recovery.claim_numbers()
        # Callers re-adopted by the reconcile get their line's needs: the lines must be known first.
        await self.line_cache.sync(force=True)
        await self._recovery.reconcile()
        self._reconciled = True
        self.sync.forget_phones()
        await self.sync.run(force=True)

    # ---- stopping ------------------------------------------------------------------------------------

    def request_drain(self) -> None:
        """Take no new callers; waiting ones go to the fallback; calls in progress finish.

        A second request stops at once: bridged calls live on in Asterisk, and the next start resumes them.
        """
        if self._draining:
            log.warning("stopping_without_waiting", calls=len(self.book.calls()))
            self._drained.set()
            return
        self._draining = True
        log.info("draining", calls=len(self.book.calls()))
        self.feed(DrainRequested())
        asyncio.get_running_loop().create_task(self._finish_drain())

    async def _finish_drain(self) -> None:
        if self.queue.idle:
            self._drained.set()
        try:
            await asyncio.wait_for(self._drained.wait(), self._config.drain_timeout)
        except TimeoutError:
            log.warning("drain_timeout", calls=len(self.book.calls()))
        await self._stream.close()

    async def stop(self) -> None:
        await self._stream.close()
        await self._stopped.wait()
