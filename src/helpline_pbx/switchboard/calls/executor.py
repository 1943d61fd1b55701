"""Carries out the core's commands against Asterisk and the roster.

Each command is queued on a lane (see workers.py) and returns at once, so the event loop that feeds the
core never waits on I/O. Whatever goes wrong while carrying out a command is turned back into an event for
the core (a failed ring is an OfferFailed, a vanished caller a CallerLeft), so no call is left waiting on
something that will never happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriError, AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.core import (
    CallerLeft,
    CancelOffer,
    CancelTimer,
    ClaimFailed,
    Command,
    ConnectCall,
    ConnectFailed,
    EndCall,
    Event,
    JoinCall,
    NotifyListener,
    OfferCall,
    OfferFailed,
    RecordCall,
    ReleaseListener,
    RequestDebrief,
    SendToFallback,
    SetListenerState,
    StartTimer,
    TimerFired,
    TimerKey,
)
from helpline_pbx.protocol import (
    HOLDING_ROLE,
    RECORDS_LANE,
    call_lane,
    listener_lane,
    notice_lane,
    talk_bridge_id,
)
from helpline_pbx.roster import writes
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster
from helpline_pbx.switchboard.calls.decision_log import log_decision
from helpline_pbx.switchboard.calls.legs import Call, LegBook
from helpline_pbx.switchboard.roster_orders import RosterOrders
from helpline_pbx.switchboard.scribe import Scribe
from helpline_pbx.switchboard.workers import Lanes

log = structlog.get_logger(__name__)

Feed = Callable[[Event], None]


class Executor:
    def __init__(
        self,
        *,
        ari: Ari,
        roster: Roster,
        scribe: Scribe,
        book: LegBook,
        feed: Feed,
        app: str,
        instance: str,
        holding_bridge: str,
        fallback_context: str,
        service_grace: float,
        debriefs: Debriefs | None = None,
    ) -> None:
        self._ari = ari
        self._roster = roster
        self._scribe = scribe
        self._book = book
        self._feed = feed
        self._app = app
        self._holding = holding_bridge
        self.holding_bridge = holding_bridge
        self._fallback = fallback_context
        self.service_grace = service_grace
        self.lanes = Lanes()
        self._orders = RosterOrders(
            ari=ari,
            roster=roster,
            scribe=scribe,
            debriefs=debriefs,
            lanes=self.lanes,
            instance=instance,
            owner=book.call_id_prefix,
        )
        self._timers: dict[TimerKey, asyncio.TimerHandle] = {}
        self._last_offer: dict[str, str] = {}  # listener id -> call id, for the logs

    # ---- dispatch -------------------------------------------------------------------------------------

    def submit(self, command: Command) -> None:
        log_decision(command, self._last_offer)
        match command:
            case StartTimer(key=key, delay=delay):
                self._start_timer(key, delay)
            case CancelTimer(key=key):
                handle = self._timers.pop(key, None)
                if handle is not None:
                    handle.cancel()
            case OfferCall():
                # Which offer is current is decided here, in the core's order, not when the lanes get
                # to it: a withdrawn offer must never ring, and a new offer to the same listener must.
                # The claim, too, is queued now, in order with the listener's state writes.
                attempt = self._book.start_offer(command.call_id, command.listener_id)
                claim = self._scribe.ask(
                    functools.partial(
                        writes.claim,
                        listener_id=command.listener_id,
                        call_id=command.call_id,
                        now=datetime.now(UTC),
                    ),
                    "claim_failed",
                    call_id=command.call_id,
                    listener_id=command.listener_id,
                )
                self.lanes.submit(
                    listener_lane(command.listener_id), lambda: self._claimed(command, attempt, claim)
                )
            case CancelOffer() | ReleaseListener():
                self._book.withdraw_offer(command.call_id, command.listener_id)
                self.lanes.submit(
                    call_lane(command.call_id), lambda: self._end_leg(command.call_id, command.listener_id)
                )
            case ConnectCall():
                self.lanes.submit(call_lane(command.call_id), lambda: self._connect(command))
            case EndCall():
                self.lanes.submit(call_lane(command.call_id), lambda: self._end(command))
            case JoinCall():
                self.lanes.submit(call_lane(command.call_id), lambda: self._join(command))
            case SendToFallback():
                self.lanes.submit(
                    call_lane(command.call_id),
                    lambda: self._to_fallback(command.call_id, command.context or self._fallback),
                )
            case SetListenerState():
                self._orders.set_state(command)
            case NotifyListener():
                self.lanes.submit(
                    notice_lane(command.listener_id),
                    lambda: self._orders.notify(command.listener_id, command.endpoint, command.notice),
                )
            case RequestDebrief():
                self.lanes.submit(RECORDS_LANE, lambda: self._orders.request_debrief(command))
            case RecordCall():
                self._orders.record(command)

    async def wait_idle(self) -> None:
        """Until every command so far is carried out and its roster writes are written."""
        while True:
            await self.lanes.wait_idle()
            await self._scribe.wait_idle()
            if self._scribe.backlog == 0 and self.lanes.idle:
                return

    def admit(self, call: Call) -> None:
        """Put a new caller on hold with music, before any offer for the call runs on its lane."""
        self.lanes.submit(call_lane(call.call_id), lambda: self._admit(call))

    def _start_timer(self, key: TimerKey, delay: float) -> None:
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self._feed(TimerFired(key=key))

        self._timers[key] = asyncio.get_running_loop().call_later(max(delay, 0.0), fire)

    def cancel_all_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # ---- calls ----------------------------------------------------------------------------------------

    async def _admit(self, call: Call) -> None:
        # Independent requests, sent together: the ring that follows on this lane waits for both.
        _, joined = await asyncio.gather(
            self.keep_alive(call.caller_channel, self.service_grace),
            self._join_holding(call.caller_channel),
            return_exceptions=True,
        )
        if isinstance(joined, BaseException) and not isinstance(joined, AriNotFound):
            raise joined
        if isinstance(joined, AriNotFound):
            # Either the caller already hung up (their end may even have been handled before their
            # arrival: they are gone for good) or the holding bridge vanished: make it again, retry once.
            if not await self._channel_exists(call.caller_channel):
                self._book.release(call.caller_channel)
                self._feed(CallerLeft(call_id=call.call_id))
                return
            await self.ensure_holding_bridge()
            await self._join_holding(call.caller_channel)

    async def _join_holding(self, caller_channel: str) -> None:
        # As a holding participant with no idle mode of its own, the caller hears music by themselves
        # whenever the bridge has no announcer: Asterisk drops the bridge's music when the bridge
        # empties, and a caller who came after that would hear silence. (Stasis gives a participant
        # without a role the idle mode "none".)
        await self._ari.add_channel(self._holding, caller_channel, role=HOLDING_ROLE)

    async def keep_alive(self, caller_channel: str, grace: float) -> None:
        """Asterisk sends this caller to the fallback by itself unless we call again within `grace`."""
        try:
            await self._ari.set_variable(caller_channel, "TIMEOUT(absolute)", str(int(grace)))
        except AriNotFound:
            pass
        except AriError as exc:
            # The next heartbeat tries again; admitting the caller must not stop on this.
            log.warning("keep_alive_failed", error=exc.code)

    async def ensure_holding_bridge(self) -> None:
        # Creating a bridge whose id exists fails: after a reconnect the bridge may still be there,
        # with callers in it.
        try:
            await self._ari.get_bridge(self._holding)
        except AriNotFound:
            await self._ari.create_bridge(self._holding, type="holding", name=self._holding)
        await self._ari.start_moh(self._holding)

    async def _claimed(self, command: OfferCall, attempt: int, claim: asyncio.Future[bool]) -> None:
        try:
            claimed = await claim
        except Exception:
            # The scribe logged why (claim_failed); the core offers the call elsewhere.
            claimed = False
        if not claimed:
            self._feed(ClaimFailed(call_id=command.call_id, listener_id=command.listener_id))
            return
        # The ring itself belongs to the call's lane, after the caller was put on hold: a caller found gone
        # while being put on hold must ring nobody (ringing at once rang listeners for callers already gone).
        self.lanes.submit(call_lane(command.call_id), lambda: self._ring(command, attempt))

    async def _ring(self, command: OfferCall, attempt: int) -> None:
        call = self._book.call(command.call_id)
        if call is None or call.current_offers.get(command.listener_id) != attempt:
            # The caller left, or this offer was withdrawn while the claim ran; the core already knows.
            return
        channel_id = self._book.new_listener_channel_id(call, command.listener_id)
        self._book.add_listener_leg(call, command.listener_id, channel_id)
        try:
            await self._ari.originate(
                channel_id,
                f"PJSIP/{command.endpoint}",
                app=self._app,
                app_args=["listener", call.call_id],
                caller_id=f'"{call.label}" <{call.code}>',
                # The core's own ring timer decides; Asterisk's is only a backstop.
                timeout=int(command.ring_timeout) + 10,
            )
        except AriError as exc:
            log.info("ring_failed", call_id=call.call_id, listener_id=command.listener_id, error=exc.code)
            self._book.release(channel_id)
            self._book.forget_channel(channel_id)
            self._feed(
                OfferFailed(call_id=call.call_id, listener_id=command.listener_id, reason="unreachable")
            )

    async def _end_leg(self, call_id: str, listener_id: str) -> None:
        """An offer withdrawn, or a listener let go from a call that goes on: their leg ends."""
        channel_id = self._book.listener_channel(call_id, listener_id)
        if channel_id is not None:
            self._book.release(channel_id)
            await self._hangup(channel_id)

    async def _connect(self, command: ConnectCall) -> None:
        call = self._book.call(command.call_id)
        listener_channel = self._book.listener_channel(command.call_id, command.listener_id)
        if call is None or listener_channel is None:
            return
        bridge_id = talk_bridge_id(call.call_id)
        try:
            await self._ari.create_bridge(bridge_id, type="mixing", name=bridge_id)
            # A caller talking to a listener stays whatever happens to the service.
            await self._ari.set_variable(call.caller_channel, "TIMEOUT(absolute)", "0")
            await self._remove_from_holding(call.caller_channel)
            await self._ari.add_channel(bridge_id, [call.caller_channel, listener_channel])
        except AriError as exc:
            log.warning(
                "connect_failed", call_id=call.call_id, listener_id=command.listener_id, error=exc.code
            )
            await self._undo_connect(call, command.listener_id, listener_channel, bridge_id)

    async def _undo_connect(
        self, call: Call, listener_id: str, listener_channel: str, bridge_id: str
    ) -> None:
        """The bridge could not be made: the caller never spoke to anyone. If they are still there they go
        back on hold, place kept, and the listener's leg ends; otherwise the call is over."""
        self._book.release(listener_channel)
        await self._hangup(listener_channel)
        await self._destroy_bridge(bridge_id)
        if not await self._channel_exists(call.caller_channel):
            self._feed(CallerLeft(call_id=call.call_id))
            return
        await self.keep_alive(call.caller_channel, self.service_grace)
        with contextlib.suppress(AriError):
            await self._join_holding(call.caller_channel)
        self._feed(ConnectFailed(call_id=call.call_id, listener_id=listener_id))

    async def _end(self, command: EndCall) -> None:
        call = self._book.call(command.call_id)
        channels = [call.caller_channel, *call.listener_channels.values()] if call is not None else []
        for channel_id in channels:
            self._book.release(channel_id)
        for channel_id in channels:
            await self._hangup(channel_id)
        # Even when every leg was already gone (and the book forgot the call), the bridge may remain.
        await self._destroy_bridge(talk_bridge_id(command.call_id))

    async def _join(self, command: JoinCall) -> None:
        """A helper answered: into the conversation with the caller and the listener."""
        channel_id = self._book.listener_channel(command.call_id, command.listener_id)
        if channel_id is None:
            return
        try:
            await self._ari.add_channel(talk_bridge_id(command.call_id), channel_id)
        except AriError as exc:
            # The call ended meanwhile, or the bridge is gone: the helper's leg ends, and with it their part.
            log.warning(
                "join_failed", call_id=command.call_id, listener_id=command.listener_id, error=exc.code
            )
            await self._hangup(channel_id)

    async def _to_fallback(self, call_id: str, context: str) -> None:
        call = self._book.call(call_id)
        if call is None:
            return
        self._book.release(call.caller_channel)
        for channel_id in call.listener_channels.values():
            self._book.release(channel_id)
            await self._hangup(channel_id)
        await self._remove_from_holding(call.caller_channel)
        with contextlib.suppress(AriNotFound):
            await self._ari.continue_in_dialplan(call.caller_channel, context, "s", 1)

    # ---- listeners' phones ----------------------------------------------------------------------------

    # ---- small ARI helpers ----------------------------------------------------------------------------

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.hangup(channel_id)

    async def _destroy_bridge(self, bridge_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.destroy_bridge(bridge_id)

    async def _remove_from_holding(self, channel_id: str) -> None:
        # Not in the holding bridge (any more): nothing to undo.
        with contextlib.suppress(AriError):
            await self._ari.remove_channel(self._holding, channel_id)

    async def _channel_exists(self, channel_id: str) -> bool:
        try:
            await self._ari.get_channel(channel_id)
        except AriNotFound:
            return False
        return True
