"""The service's main loop: ARI events in, core decisions out.

One task reads the event stream (whose socket reader never waits for us) and, for each event, asks the
core synchronously what to do; the executor carries the commands out on lanes. The core is only ever
touched from this loop, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriError, AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import (
    ApplicationReplaced,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    StasisEnd,
    StasisStart,
)
from helpline_pbx.ari.stream import Connected, Disconnected, EventStream, StreamItem
from helpline_pbx.core import (
    CallerArrived,
    CallMarkedDifficult,
    CallQueue,
    CallResumed,
    CallState,
    Command,
    DrainRequested,
    Event,
    HelpRequested,
    Policy,
)
from helpline_pbx.core.supervision import DEFAULT_POLICY, SupervisionPolicy
from helpline_pbx.lines.arrivals import line_verdict, requirements_of
from helpline_pbx.lines.repository import Lines
from helpline_pbx.lines.snapshots import LineSnapshot
from helpline_pbx.protocol import (
    CHOICE,
    FEATURE_APP,
    LINE_PROMPT,
    RECORDS_LANE,
    StasisRole,
    agi_of_number,
    alive_lane,
    app_of_number,
    call_of_talk_bridge,
    caller_args,
    channel_lane,
    endpoint_of,
)
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.supervisions import Supervisions
from helpline_pbx.settings import default_of
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.in_call import InCallCodes
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.calls.translate import channel_gone, leg_gone, listener_answered
from helpline_pbx.switchboard.features import Features
from helpline_pbx.switchboard.inventory import is_caller, live_among, own_channels, read_channels
from helpline_pbx.switchboard.presence.codes import PresenceCodes
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.supervision.sessions import Supervision, is_supervision_channel
from helpline_pbx.switchboard.waiting_room.room import WaitingRoom

log = structlog.get_logger(__name__)


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


def _arrival(channel: Channel) -> float:
    return channel.creationtime.timestamp() if channel.creationtime else time.time()


class Switchboard:
    def __init__(
        self,
        config: SwitchboardConfig,
        ari: Ari,
        stream: EventStream,
        roster: Roster,
        callers: Callers | None = None,
        lines: Lines | None = None,
    ) -> None:
        self._config = config
        self._ari = ari
        self._stream = stream
        self._roster = roster
        self._callers = callers
        self._lines = lines
        self._features = Features(ari, roster, callers, config.bar_days)
        self.queue = CallQueue(config.policy)
        debriefs = Debriefs(roster.engine)
        # Presence codes tell the core at once; the roster poll would see them only later.
        self._features.handlers.update(PresenceCodes(ari, roster, debriefs, self.feed, self.queue).handlers())
        self.book = LegBook(call_id_prefix=f"{config.app}-")
        self.executor = Executor(
            ari=ari,
            roster=roster,
            book=self.book,
            feed=self.feed,
            app=config.app,
            instance=config.app,
            holding_bridge=f"{config.app}-waiting",
            fallback_context=config.fallback_context,
            service_grace=config.service_grace,
            debriefs=debriefs,
        )
        self.sync = RosterSync(
            ari=ari, roster=roster, lines=lines, queue=self.queue, feed=self.feed, app=config.app
        )
        self._in_call_codes = InCallCodes()
        self._draining = False
        self._stopped = asyncio.Event()
        self._drained = asyncio.Event()
        self.connected = asyncio.Event()
        self.resyncs = 0
        self.replaced = False
        self._resync_changed = asyncio.Condition()
        self.handled_events = 0
        # Called after each decision with the event and the commands it produced (live view, tests).
        self.observers: list[Callable[[Event, list[Command]], None]] = []
        # Called with every ARI event, after the switchboard handled it (supervision, waiting room). They
        # run on the event loop's reader: they must not block (submit work to a lane instead).
        self.ari_observers: list[Callable[[StreamItem], None]] = []
        self.supervision = Supervision(
            ari=ari,
            roster=roster,
            supervisions=Supervisions(roster.engine),
            queue=self.queue,
            book=self.book,
            lanes=self.executor.lanes,
            app=config.app,
            tone=config.supervision_tone,
            policy=config.supervision,
        )
        self._features.handlers.update(self.supervision.handlers())
        self.ari_observers.append(self.supervision.on_event)
        self.waiting_room = WaitingRoom(
            ari=ari,
            queue=self.queue,
            book=self.book,
            lanes=self.executor.lanes,
            feed=self.feed,
            line_named=self.line_named,
            rest_after_call=config.policy.rest_after_call,
        )
        self.observers.append(self.waiting_room.on_decision)
        self.ari_observers.append(self.waiting_room.on_event)

    def line_named(self, name: str) -> LineSnapshot | None:
        """The line a call is on, by the name the core knows it by, or by the number dialled (what a caller
        re-adopted after a restart is known by); None when no lines are set up."""
        found = next((line for line in self.sync.line_by_number.values() if line.name == name), None)
        return found or self.sync.line_by_number.get(name)

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
        commands = self.queue.handle(event, time.time())
        for command in commands:
            self.executor.submit(command)
        for observer in self.observers:
            observer(event, commands)
        if self._draining and self.queue.idle:
            self._drained.set()

    # ---- main loop -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until drained (after request_drain) or stopped."""
        poller = asyncio.create_task(self._poll_roster())
        heartbeat = asyncio.create_task(self._keep_waiting_callers_alive())
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
            await self.executor.lanes.wait_idle()
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
            if self.book.leg(event.channel.id) is not None:
                # A duplicate, or a caller the reconcile already adopted: one call per channel.
                return
            number, token, repeat, choice = caller_args(event.args)
            if self._draining:
                self.executor.lanes.submit(
                    channel_lane(event.channel.id), lambda: self._refuse(event.channel.id)
                )
                return
            verdict = line_verdict(self.sync.line_by_number, number, datetime.now(UTC))
            if isinstance(verdict, str):
                # Closed, inactive or unknown: a message with alternatives, never silence.
                channel_id = event.channel.id
                prompt = self.sync.line_by_number[number].messages.closed if verdict == "closed" else ""
                log.info("caller_turned_away", reason=verdict)
                self.executor.lanes.submit(
                    channel_lane(channel_id), lambda: self._turn_away(channel_id, verdict, prompt)
                )
                return
            line = verdict.name if verdict else number
            if verdict is None:
                self.sync.served_number(number)
            requirements = requirements_of(verdict, choice, self.sync.listener_by_code)
            label = verdict.label if verdict else self._config.line_name
            call = self.book.open_call(event.channel.id, line, label)
            show_repeats = verdict.repeat_hint if verdict else self._config.repeat_hint
            if show_repeats and repeat > 1:
                call.label = f"{call.label} · {repeat}e appel"
            log.info("caller_arrived", call_id=call.call_id, line=line)
            self.executor.admit(call)
            if self._callers is not None:
                self.executor.lanes.submit(
                    RECORDS_LANE, lambda: self._remember(call.call_id, call.code, line, token)
                )
            self.feed(CallerArrived(call_id=call.call_id, line=line, requirements=requirements))
        elif role == StasisRole.FEATURE:
            self.executor.lanes.submit(
                channel_lane(event.channel.id), lambda: self._features.run(event.channel, event.args)
            )
        elif role == StasisRole.SNOOP:
            pass  # a supervision's snoop channel: supervision.py bridges it (it sees this event too)
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
        if action == "difficult":
            self.feed(CallMarkedDifficult(leg.listener_id))
        elif action == "professional":
            self.feed(HelpRequested(leg.call_id, leg.listener_id, "professional"))
        elif action == "supervisor":
            self.feed(HelpRequested(leg.call_id, leg.listener_id, "supervisor"))
        elif action == "handover":
            self.feed(HelpRequested(leg.call_id, leg.listener_id, "professional", handover=True))

    async def _remember(self, call_id: str, code: str, line: str, token: str | None) -> None:
        assert self._callers is not None
        try:
            await self._callers.remember_call(call_id, code, line, token, datetime.now(UTC))
        except RosterError as exc:
            log.warning("call_code_not_saved", call_id=call_id, error=exc.code)

    async def _turn_away(self, channel_id: str, verdict: str, prompt: str) -> None:
        with contextlib.suppress(AriNotFound):
            if prompt:
                await self._ari.set_variable(channel_id, LINE_PROMPT, prompt)
            await self._ari.continue_in_dialplan(channel_id, f"helpline-{verdict}", "s", 1)

    async def _refuse(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.continue_in_dialplan(channel_id, self._config.fallback_context, "s", 1)

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.hangup(channel_id)

    # ---- connection and roster -----------------------------------------------------------------------

    async def _on_connected(self) -> None:
        try:
            await self.executor.ensure_holding_bridge()
            await self._claim_numbers()
            # Callers re-adopted by the reconcile get their line's needs: the lines must be known first.
            await self.sync.sync_lines(force=True)
            await self._reconcile()
            self.sync.forget_phones()
            await self.sync.run(force=True)
        except (AriError, RosterError) as exc:
            log.error("resync_failed", error=exc.code)
        self.connected.set()
        self.resyncs += 1
        async with self._resync_changed:
            self._resync_changed.notify_all()
        log.info("ari_connected", app=self._config.app)

    async def _claim_numbers(self) -> None:
        """Tell the dialplan which numbers come to this instance (globals survive the service)."""
        await self._ari.set_global_variable(FEATURE_APP, self._config.app)
        for did in self._config.dids:
            await self._ari.set_global_variable(app_of_number(did), self._config.app)
            if self._config.agi_url:
                await self._ari.set_global_variable(agi_of_number(did), self._config.agi_url)

    async def _reconcile(self) -> None:
        """Rebuild the picture of live calls from Asterisk, before any new event is handled.

        After a restart of the service the core is empty; after a restart of Asterisk the calls the core
        knows are gone. Asterisk owns the live calls: calls bridged with a listener go on, callers waiting in
        the holding bridge are re-adopted in their order of arrival, legs of ours that vanished are reported
        gone, and channels left in our application that are none of these go to the fallback.
        """
        bridges = await self._ari.list_bridges()
        channels = await own_channels(self._ari, self._config.app)
        ours = set(channels)
        # Legs the book knows that left our application (none, unless events were lost) are read too.
        channels.update(await read_channels(self._ari, self.book.channel_ids() - ours))
        self._forget_vanished(set(channels))

        handled: set[str] = set()
        resumed = 0
        for bridge in bridges:
            call_id = call_of_talk_bridge(bridge.id)
            if (
                call_id is None
                # Another instance's call on this Asterisk: not ours to resume, and above all not ours to end.
                or not self.book.owns_call_id(call_id)
                or self.book.call(call_id)
            ):
                handled.update(bridge.channels)
                continue
            handled.update(bridge.channels)
            if await self._resume(call_id, bridge.channels, channels):
                resumed += 1

        holding = next((b for b in bridges if b.id == self.executor.holding_bridge), None)
        waiting = [
            channels[c]
            for c in (holding.channels if holding else [])
            if c in channels and not self.book.leg(c)
        ]
        # Callers in our application but in no bridge were being admitted when we stopped: they wait too.
        unbridged = [
            channels[c]
            for c in ours - handled
            if c in channels
            and not self.book.leg(c)
            and self.book.parse_listener_channel(c) is None
            and is_caller(channels[c])
        ]
        for channel in sorted([*waiting, *unbridged], key=_arrival):
            line, label, snapshot = self._line_of(channel)
            # The menu choice the dialplan stored on the channel: the caller keeps what they asked for.
            choice = await self._channel_variable(channel.id, CHOICE)
            call = self.book.open_call(channel.id, line, label)
            if channel in unbridged:
                self.executor.admit(call)
            self.feed(
                CallerArrived(
                    call_id=call.call_id,
                    line=line,
                    arrived_at=_arrival(channel),
                    requirements=requirements_of(snapshot, choice, self.sync.listener_by_code),
                )
            )
        handled.update(c.id for c in waiting)
        handled.update(c.id for c in unbridged)

        orphans = [c for c in ours - handled if c in channels and not self.book.leg(c)]
        for channel_id in orphans:
            # A ringing leg whose offer we lost, or a phone in a feature code: end it. The core offers
            # the caller again.
            self.executor.lanes.submit(channel_lane(channel_id), functools.partial(self._hangup, channel_id))
        live = {call.call_id for call in self.book.calls()}
        repaired = await self._roster.repair(
            live, now=datetime.now(UTC), call_id_prefix=self.book.call_id_prefix
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
        snapshot = self.sync.line_by_number.get(number)
        if snapshot is None:
            return number, self._config.line_name, None
        return snapshot.name, snapshot.label, snapshot

    async def _channel_variable(self, channel_id: str, name: str) -> str:
        try:
            return await self._ari.get_variable(channel_id, name)
        except AriNotFound:
            return ""

    def _forget_vanished(self, live_channels: set[str]) -> int:
        """End what the core knows but Asterisk no longer has (an event we never got): no ghost calls."""
        vanished = 0
        for call in self.book.calls():
            for channel_id in [call.caller_channel, *call.listener_channels.values()]:
                if channel_id not in live_channels:
                    vanished += 1
                    for event in leg_gone(channel_id, None, self.book):
                        self.feed(event)
                    self.book.forget_channel(channel_id)
        return vanished

    async def _audit(self) -> None:
        """The safety net behind the event stream: compare our calls with Asterisk's channels."""
        snapshot = {c.call_id for c in self.book.calls()}
        if not snapshot:
            return
        live = await live_among(self._ari, self._config.app, self.book.channel_ids())
        # Calls that started while we listed channels are not ghosts: only judge those seen before.
        for call in self.book.calls():
            if call.call_id not in snapshot:
                live.update([call.caller_channel, *call.listener_channels.values()])
        if vanished := self._forget_vanished(live):
            log.warning("vanished_legs_ended", legs=vanished)

    async def _resume(self, call_id: str, members: list[str], channels: dict[str, Channel]) -> bool:
        """Re-adopt a talk bridge of ours: caller and listener go on talking; otherwise end what is left."""
        listener_legs = [(c, self.book.parse_listener_channel(c)) for c in members]
        listener = next(((c, p) for c, p in listener_legs if p is not None and p[0] == call_id), None)
        # A supervisor who joined is no second caller: the call goes on (supervision.py lets them go).
        callers = [
            c
            for c in members
            if self.book.parse_listener_channel(c) is None
            and c in channels
            and not is_supervision_channel(channels[c])
        ]
        if listener is None or len(callers) != 1 or listener[0] not in channels:
            for channel_id in members:
                self.executor.lanes.submit(
                    channel_lane(channel_id), functools.partial(self._hangup, channel_id)
                )
            return False
        listener_channel, (_, listener_id) = listener[0], listener[1]
        caller = channels[callers[0]]
        line, label, _ = self._line_of(caller)
        call = self.book.open_call(caller.id, line, label, call_id=call_id)
        self.book.add_listener_leg(call, listener_id, listener_channel, answered=True)
        endpoint = endpoint_of(channels[listener_channel].name) or ""
        self.feed(
            CallResumed(
                call_id=call_id,
                line=line,
                listener_id=listener_id,
                endpoint=endpoint,
                arrived_at=_arrival(caller),
                answered_at=_arrival(channels[listener_channel]),
            )
        )
        return True

    async def _keep_waiting_callers_alive(self) -> None:
        """Push every waiting caller's absolute timeout forward while we live.

        If the service dies and does not come back within the grace time, Asterisk's own timer fires, the
        caller leaves Stasis for the dialplan's T extension and reaches the fallback: nothing depending on
        the service is needed to move them.
        """
        grace = self._config.service_grace
        while True:
            if self.connected.is_set():
                try:
                    await self._audit()
                except AriError as exc:
                    log.warning("audit_failed", error=exc.code)
                connected = {view.call_id for view in self.queue.calls() if view.state is CallState.CONNECTED}
                for call in self.book.calls():
                    if call.call_id not in connected:
                        self.executor.lanes.submit(
                            alive_lane(call.call_id),
                            functools.partial(self.executor.keep_alive, call.caller_channel, grace),
                        )
            await asyncio.sleep(grace / 4)

    async def _poll_roster(self) -> None:
        while True:
            await asyncio.sleep(self._config.roster_poll_interval)
            if not self.connected.is_set():
                continue
            try:
                await self.sync.run(force=False)
            except (AriError, RosterError) as exc:
                log.warning("roster_sync_failed", error=exc.code)

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
