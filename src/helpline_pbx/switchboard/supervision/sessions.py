"""Supervisors listening to, coaching or joining a listener's call from their own phone.

The supervisor dials *31 (listen), *32 (coach) or *33 (join) and the listener's short code; the dialplan
hands the phone to the service as a feature. Listening and coaching go through a snoop channel on the
listener's leg, bridged with the supervisor's phone in a bridge of our own: the supervisor hears both
sides; when coaching, only the listener hears the supervisor (the snoop whispers into what the listener's
phone is sent, never into the caller's). Joining puts the supervisor in the call's talk bridge.

Only what the policy allows (core/supervision.py), and never without a trace: the audit row is written
before any audio flows, and closed when the supervision ends. The caller's call is never touched: we add
and remove only our own channels, and whatever fails, the caller and the listener go on talking.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Literal

import structlog

from helpline_pbx.ari.errors import AriError, AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import Channel, ChannelDestroyed, StasisEnd, StasisStart
from helpline_pbx.ari.stream import Connected, StreamItem
from helpline_pbx.core import CallQueue
from helpline_pbx.core.supervision import (
    DEFAULT_POLICY,
    SupervisionPolicy,
    Verdict,
    is_supervisor,
    may_supervise,
)
from helpline_pbx.protocol import (
    SUPERVISION_LANE,
    StasisRole,
    call_of_talk_bridge,
    talk_bridge_id,
)
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.states import SupervisionMode
from helpline_pbx.roster.supervisions import Supervisions
from helpline_pbx.switchboard.calls.legs import LegBook, readable_token
from helpline_pbx.switchboard.features import Handler, dialler
from helpline_pbx.switchboard.inventory import own_channels, read_channels
from helpline_pbx.switchboard.retry import with_retry
from helpline_pbx.switchboard.supervision.lookup import listener_by_code, live_call
from helpline_pbx.switchboard.supervision.model import (
    SPY_WHISPER,
    Interrupted,
    Session,
    is_supervision_channel,
)
from helpline_pbx.switchboard.workers import Lanes

log = structlog.get_logger(__name__)

# The Stasis role of snoop channels (their arguments: "snoop,<session token>").
# What the supervisor's phone hears in [feature-result] when the listener may not be supervised, or is on
# no call right now.
REFUSED = "supervision-refused"
NO_CALL = "supervision-no-call"
# A snoop channel enters Stasis at once; if it has not within this time, the supervision is given up.
SNOOP_START_TIMEOUT = 5.0
TONE = "sound:beep"
_REMEMBERED_ENDS = 512


class Supervision:
    def __init__(
        self,
        *,
        ari: Ari,
        roster: Roster,
        supervisions: Supervisions,
        queue: CallQueue,
        book: LegBook,
        lanes: Lanes,
        app: str,
        tone: bool = False,
        policy: SupervisionPolicy = DEFAULT_POLICY,
    ) -> None:
        self._ari = ari
        self._roster = roster
        self._supervisions = supervisions
        self._queue = queue
        self._book = book
        self._lanes = lanes
        self.app = app
        # Read at each start, so it may be switched while the service runs.
        self.tone = tone
        self._policy = policy
        self.bridge_prefix = f"{app}-sup-"
        self._sessions: dict[str, Session] = {}
        self._by_channel: dict[str, Session] = {}
        # Channels that ended lately: one that ends while its supervision is being looked up is noticed.
        self._ended: OrderedDict[str, None] = OrderedDict()

    def handlers(self) -> dict[str, Handler]:
        """Feature handlers by name, for Features.handlers."""
        return {"listen": self._listen, "coach": self._coach, "join": self._join}

    @property
    def active(self) -> int:
        return len(self._sessions)

    async def _listen(self, channel: Channel, code: str) -> str | None:
        return await self.start(SupervisionMode.LISTEN, channel, code)

    async def _coach(self, channel: Channel, code: str) -> str | None:
        return await self.start(SupervisionMode.COACH, channel, code)

    async def _join(self, channel: Channel, code: str) -> str | None:
        return await self.start(SupervisionMode.JOIN, channel, code)

    # ---- starting --------------------------------------------------------------------------------------

    async def start(self, mode: SupervisionMode, channel: Channel, code: str) -> str | None:
        """Supervise the call of the listener whose short code is `code`; None once it runs (the phone
        stays in Stasis), otherwise the [feature-result] the phone hears."""
        # Who dials is known from the authenticated endpoint of the channel, never from what the phone says.
        supervisor = await dialler(self._roster, channel)
        if supervisor is None or not is_supervisor(supervisor):
            log.info("supervision_refused", mode=mode.value, reason=Verdict.NOT_SUPERVISOR.value)
            return "refused"
        listener = await listener_by_code(self._roster, code)
        if listener is None:
            log.info("supervision_no_call", mode=mode.value, supervisor_id=supervisor.id)
            return NO_CALL
        verdict = may_supervise(supervisor, listener, mode.value, self._policy)
        if verdict is not Verdict.ALLOWED:
            log.info(
                "supervision_refused",
                mode=mode.value,
                supervisor_id=supervisor.id,
                listener_id=listener.id,
                reason=verdict.value,
            )
            return "refused" if verdict is Verdict.NOT_SUPERVISOR else REFUSED
        live = live_call(self._queue, self._book, listener.id)
        if live is None:
            log.info(
                "supervision_no_call", mode=mode.value, supervisor_id=supervisor.id, listener_id=listener.id
            )
            return NO_CALL
        call_id, listener_channel = live
        session = Session(
            token=readable_token(),
            mode=mode,
            supervisor_id=supervisor.id,
            listener_id=listener.id,
            call_id=call_id,
            supervisor_channel=channel.id,
            listener_channel=listener_channel,
        )
        # Written before any audio flows: a supervision the audit cannot record does not happen (a
        # RosterError here makes the phone hear "unavailable").
        session.record_id = await self._supervisions.start(
            supervisor.id, listener.id, call_id, mode, datetime.now(UTC)
        )
        self._register(session)
        try:
            # One of them ended while we looked the call up: its event found no session then.
            session.gone.update(c for c in (channel.id, listener_channel) if c in self._ended)
            if session.gone:
                raise Interrupted
            if channel.state != "Up":
                await self._ari.answer(channel.id)
            if mode is SupervisionMode.JOIN:
                await self._ari.add_channel(talk_bridge_id(call_id), channel.id)
                session.in_talk = True
            else:
                await self._snoop(session)
        except (AriError, Interrupted) as exc:
            log.warning(
                "supervision_failed",
                supervision_id=session.record_id,
                call_id=call_id,
                mode=mode.value,
                error=exc.code if isinstance(exc, AriError) else "interrupted",
            )
            await self._end(session, "setup_failed", supervisor="keep")
            # The phone hears why (if it hung up meanwhile, Features finds it gone and that is all).
            return NO_CALL if session.listener_channel in session.gone else "unavailable"
        log.info(
            "supervision_started",
            supervision_id=session.record_id,
            call_id=call_id,
            supervisor_id=supervisor.id,
            listener_id=listener.id,
            mode=mode.value,
        )
        if session.gone:
            # A channel ended while we set up: its event found the session closing, the end is ours.
            await self._end(session, "ended_during_setup")
            return None
        if self.tone:
            await self._play_tone(session)
        return None

    async def _snoop(self, session: Session) -> None:
        bridge_id = session.bridge_id = f"{self.bridge_prefix}{session.token}"
        snoop_id = session.snoop_channel = f"{bridge_id}-snoop"
        self._by_channel[snoop_id] = session
        await self._ari.create_bridge(bridge_id, type="mixing", name=bridge_id)
        await self._ari.add_channel(bridge_id, session.supervisor_channel)
        spy, whisper = SPY_WHISPER[session.mode]
        await self._ari.snoop(
            session.listener_channel,
            snoop_id,
            app=self.app,
            spy=spy,
            whisper=whisper,
            app_args=[StasisRole.SNOOP, session.token],
        )
        # A channel joins a bridge only once it is in Stasis: wait for the snoop's StasisStart.
        try:
            async with asyncio.timeout(SNOOP_START_TIMEOUT):
                while not (session.snoop_started or session.gone):
                    session.changed.clear()
                    await session.changed.wait()
        except TimeoutError:
            raise Interrupted from None
        if session.gone:
            raise Interrupted
        await self._ari.add_channel(bridge_id, snoop_id)

    async def _play_tone(self, session: Session) -> None:
        # A join is announced to everyone in the call; listening and coaching to the listener only.
        playback_id = f"{self.bridge_prefix}{session.token}-tone"
        try:
            if session.mode is SupervisionMode.JOIN:
                await self._ari.play_on_bridge(talk_bridge_id(session.call_id), TONE, playback_id)
            else:
                await self._ari.play(session.listener_channel, TONE, playback_id)
        except AriError as exc:
            log.info("supervision_tone_failed", supervision_id=session.record_id, error=exc.code)

    # ---- events and ending -----------------------------------------------------------------------------

    def on_event(self, item: StreamItem) -> None:
        """Every ARI event (Switchboard.ari_observers): runs on the reader loop, so it only submits work."""
        match item:
            case StasisStart(args=[role, token, *_]) if role == StasisRole.SNOOP:
                session = self._sessions.get(token)
                if session is not None and item.channel.id == session.snoop_channel:
                    session.snoop_started = True
                    session.changed.set()
            case StasisEnd() | ChannelDestroyed():
                self._channel_ended(item.channel.id)
            case Connected():
                self._lanes.submit(SUPERVISION_LANE, self._resync)
            case _:
                pass

    def _channel_ended(self, channel_id: str) -> None:
        self._ended[channel_id] = None
        while len(self._ended) > _REMEMBERED_ENDS:
            self._ended.popitem(last=False)
        session = self._by_channel.get(channel_id)
        if session is None or session.ended:
            return
        session.gone.add(channel_id)
        session.changed.set()
        if not session.closing:
            session.closing = True
            reason = "supervisor_left" if channel_id == session.supervisor_channel else "call_ended"
            self._lanes.submit(session.lane, lambda: self._end(session, reason))

    async def _end(
        self, session: Session, reason: str, *, supervisor: Literal["hangup", "keep"] = "hangup"
    ) -> None:
        """Undo what the supervision added, and close its audit row. The caller's call is not touched."""
        if session.ended:
            return
        session.ended = session.closing = True
        self._unregister(session)
        if session.snoop_channel is not None:
            await self._quietly(self._ari.hangup(session.snoop_channel))
        if session.bridge_id is not None:
            await self._quietly(self._ari.destroy_bridge(session.bridge_id))
        if supervisor == "hangup" and session.supervisor_channel not in session.gone:
            await self._quietly(self._ari.hangup(session.supervisor_channel))
        elif session.in_talk and session.supervisor_channel not in session.gone:
            # Kept to hear why the supervision failed: it must not stay in the call meanwhile.
            await self._quietly(
                self._ari.remove_channel(talk_bridge_id(session.call_id), session.supervisor_channel)
            )
        if session.record_id is not None:
            record_id = session.record_id
            try:
                await with_retry(lambda: self._supervisions.end(record_id, datetime.now(UTC)))
            except RosterError as exc:
                log.warning("supervision_end_not_saved", supervision_id=record_id, error=exc.code)
        log.info(
            "supervision_ended", supervision_id=session.record_id, call_id=session.call_id, reason=reason
        )

    def _is_ours(self, bridge_id: str) -> bool:
        """A supervision bridge of ours, or a talk bridge of one of our calls (the book knows our call ids'
        shape; other instances' are not ours to touch)."""
        call_id = call_of_talk_bridge(bridge_id)
        return bridge_id.startswith(self.bridge_prefix) or (
            call_id is not None and self._book.owns_call_id(call_id)
        )

    async def _resync(self) -> None:
        """After a (re)connection: end supervisions whose channels are gone, clear what a previous run of
        the service left (its bridges, snoops and supervisors' phones), and close its audit rows."""
        try:
            bridges = [bridge for bridge in await self._ari.list_bridges() if self._is_ours(bridge.id)]
            # Our application's channels and the members of our bridges: never every channel (inventory.py).
            members = {c for bridge in bridges for c in bridge.channels}
            live = await own_channels(self._ari, self.app)
            live.update(await read_channels(self._ari, members - set(live)))
        except AriError as exc:
            log.warning("supervision_resync_failed", error=exc.code)
            return
        for session in list(self._sessions.values()):
            missing = [c for c in session.channels() if c not in live]
            if missing and not session.closing:
                session.closing = True
                session.gone.update(missing)
                self._lanes.submit(session.lane, functools.partial(self._end, session, "vanished"))
        known = set(self._by_channel)
        for bridge in bridges:
            strays = [
                c for c in bridge.channels if c in live and c not in known and is_supervision_channel(live[c])
            ]
            for channel_id in strays:
                log.info("supervision_stray_ended", bridge=bridge.id)
                await self._quietly(self._ari.hangup(channel_id))
            if bridge.id.startswith(self.bridge_prefix) and bridge.id not in {
                s.bridge_id for s in self._sessions.values()
            }:
                await self._quietly(self._ari.destroy_bridge(bridge.id))
        keep = [s.record_id for s in self._sessions.values() if s.record_id is not None]
        try:
            closed = await self._supervisions.end_open(
                self._book.call_id_prefix, datetime.now(UTC), keep=keep
            )
        except RosterError as exc:
            log.warning("supervision_resync_not_saved", error=exc.code)
            return
        if closed:
            log.info("supervisions_closed_after_restart", count=closed)

    # ---- helpers ---------------------------------------------------------------------------------------

    def _register(self, session: Session) -> None:
        self._sessions[session.token] = session
        for channel_id in session.channels():
            self._by_channel[channel_id] = session

    def _unregister(self, session: Session) -> None:
        self._sessions.pop(session.token, None)
        for channel_id in session.channels():
            if self._by_channel.get(channel_id) is session:
                del self._by_channel[channel_id]

    async def _quietly(self, request: Awaitable[object]) -> None:
        """An undo step: a channel or bridge already gone is fine, and no failure stops the next step."""
        try:
            await request
        except AriNotFound:
            pass
        except AriError as exc:
            log.warning("supervision_cleanup_failed", error=exc.code)


__all__ = ["NO_CALL", "REFUSED", "Supervision"]
