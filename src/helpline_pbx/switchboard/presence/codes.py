"""Presence codes dialled from listeners' phones: log in, log out, pause, resume, more rest, a difficult call,
and (supervisors) a debrief handled.

Each code writes what the listener chose to the roster (so the CLI, other instances and a restart see it)
and tells the core at once, then names the confirmation the phone hears in [feature-result]. The core owns
the listener's state: a code that means nothing in that state (more rest while available) changes nothing,
and the phone hears so. A listener the line paused on its own (missed offers, a shift limit) first hears
why, the next time they dial any of these codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import Channel
from helpline_pbx.core import CallQueue, Event, ListenerState
from helpline_pbx.core.events import (
    CallMarkedDifficult,
    DebriefHandled,
    ListenerOffline,
    ListenerOnline,
    ListenerPaused,
    RestExtended,
)
from helpline_pbx.lines.arrivals import profile_of
from helpline_pbx.protocol import NOTICE
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.errors import ListenerNotFound
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import Presence, Role
from helpline_pbx.switchboard.features import Handler, dialler

log = structlog.get_logger(__name__)

# *13 alone is a break; *13 then one digit says why. Words, not digits, go to the roster and the audit.
PAUSE_REASONS = {"": "break", "1": "break", "2": "training", "3": "personal"}
# Why the line paused someone on its own, and the prompt that tells them so.
NOTICES = {"missed_offers": "paused-missed-offers", "shift_limit": "paused-shift-limit"}
# [feature-result] plays the prompt this channel variable names before the confirmation.
RESTING_STATES = frozenset({ListenerState.RESTING, ListenerState.AWAITING_DEBRIEF})

Feed = Callable[[Event], None]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PresenceCodes:
    """The handlers of the presence feature codes, for Features.handlers."""

    def __init__(
        self,
        ari: Ari,
        roster: Roster,
        debriefs: Debriefs,
        feed: Feed,
        queue: CallQueue,
        clock: Clock = _utc_now,
    ) -> None:
        self._ari = ari
        self._roster = roster
        self._debriefs = debriefs
        self._feed = feed
        self._queue = queue
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            "login": self._login,
            "logout": self._logout,
            "pause": self._pause,
            "resume": self._resume,
            "rest": self._rest,
            "difficult": self._difficult,
            "debriefed": self._debriefed,
        }

    # ---- the codes -----------------------------------------------------------------------------------

    async def _login(self, channel: Channel, _argument: str) -> str:
        who = await self._dialler(channel)
        if who is None:
            return "refused"
        await self._tell_why(channel, who)
        await self._go_on(who)
        return "logged-in"

    async def _resume(self, channel: Channel, _argument: str) -> str:
        who = await self._dialler(channel)
        if who is None:
            return "refused"
        await self._tell_why(channel, who)
        await self._go_on(who)
        # Resuming without having logged in is logging in: say what really happened.
        if who.presence is Presence.OFF:
            return "logged-in"
        # A rest in progress (after a call, or a difficult one) runs to its end before any call is offered.
        if self._queue.listener_state(who.id) in RESTING_STATES:
            return "resumed-resting"
        return "resumed"

    async def _logout(self, channel: Channel, _argument: str) -> str:
        who = await self._dialler(channel)
        if who is None:
            return "refused"
        await self._tell_why(channel, who)
        await self._roster.set_presence(who.id, Presence.OFF, now=self._clock())
        self._feed(ListenerOffline(who.id))
        log.info("presence_changed", listener_id=who.id, presence="off", by="phone")
        return "logged-out"

    async def _pause(self, channel: Channel, argument: str) -> str:
        who = await self._dialler(channel)
        if who is None:
            return "refused"
        reason = PAUSE_REASONS.get(argument)
        if reason is None:
            return "bad-reason"
        await self._tell_why(channel, who)
        await self._roster.set_presence(who.id, Presence.PAUSED, reason=reason, now=self._clock())
        self._feed(ListenerPaused(who.id, reason))
        log.info("presence_changed", listener_id=who.id, presence="paused", reason=reason, by="phone")
        return "paused"

    async def _rest(self, channel: Channel, _argument: str) -> str:
        who = await self._dialler(channel)
        if who is None:
            return "refused"
        await self._tell_why(channel, who)
        self._feed(RestExtended(who.id))
        # The core decides: it lengthens a rest in progress and ignores the request where it means nothing.
        if self._queue.listener_state(who.id) in RESTING_STATES:
            log.info("rest_extended", listener_id=who.id)
            return "rest-extended"
        return "no-rest"

    async def _difficult(self, channel: Channel, _argument: str) -> str:
        who = await self._dialler(channel)
        if who is None:
            return "refused"
        await self._tell_why(channel, who)
        before = self._queue.listener_state(who.id)
        self._feed(CallMarkedDifficult(who.id))
        after = self._queue.listener_state(who.id)
        # During the call the mark waits for its end (the listener stays on the call); right after it the
        # listener rests longer, awaiting a debrief. Anything else had no call to mark.
        if before is ListenerState.ON_CALL or after is ListenerState.AWAITING_DEBRIEF:
            supervisors = await self._supervisors_on_duty(who.id)
            log.info("call_marked_difficult", listener_id=who.id, supervisors=supervisors)
            # The request is listed either way; only a supervisor on duty is called now.
            return "difficult-noted" if supervisors else "difficult-noted-no-supervisor"
        return "no-call"

    async def _debriefed(self, channel: Channel, code: str) -> str:
        who = await self._dialler(channel)
        if who is None or who.role is not Role.SUPERVISOR:
            log.info("feature_refused", feature="debriefed", listener_id=None if who is None else who.id)
            return "refused"
        if not code:
            return "unknown-listener"
        try:
            listener_id, handled = await self._debriefs.handle_for(code, who.id, self._clock())
        except ListenerNotFound:
            return "unknown-listener"
        if handled == 0:
            return "no-debrief"
        self._feed(DebriefHandled(listener_id))
        log.info("debrief_handled", by=who.id, listener_id=listener_id, requests=handled)
        return "debrief-handled"

    # ---- helpers -------------------------------------------------------------------------------------

    async def _supervisors_on_duty(self, listener_id: str) -> int:
        """How many supervisors (logged in, or logged in and paused) the debrief request rings now; the
        executor's RequestDebrief rings the same ones."""
        listeners = await self._roster.list_listeners(active_only=True)
        return sum(
            1
            for x in listeners
            if x.role is Role.SUPERVISOR and x.presence is not Presence.OFF and x.id != listener_id
        )

    async def _dialler(self, channel: Channel) -> ListenerSnapshot | None:
        """The active listener whose authenticated endpoint placed this call, if any."""
        who = await dialler(self._roster, channel)
        return who if who is not None and who.active else None

    async def _tell_why(self, channel: Channel, who: ListenerSnapshot) -> None:
        notice = NOTICES.get(who.presence_reason or "") if who.presence is Presence.PAUSED else None
        if notice is not None:
            with contextlib.suppress(AriNotFound):
                await self._ari.set_variable(channel.id, NOTICE, notice)

    async def _go_on(self, who: ListenerSnapshot) -> None:
        on = await self._roster.set_presence(who.id, Presence.ON, now=self._clock())
        self._feed(ListenerOnline(on.id, on.endpoint, profile=profile_of(on)))
        log.info("presence_changed", listener_id=who.id, presence="on", by="phone")
