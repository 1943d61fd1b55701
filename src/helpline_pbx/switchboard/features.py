"""Feature codes dialled from listeners' and supervisors' phones.

The dialplan hands the call to the service (`Stasis(app, feature, <name>, <argument>)`); the service acts,
then sends the phone to [feature-result] to hear how it went. Who dialled is known from the authenticated
SIP endpoint of the channel, never from anything the phone claims.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import Channel
from helpline_pbx.protocol import endpoint_of
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.errors import CallNotFound, ListenerNotFound, RosterError
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import Role

log = structlog.get_logger(__name__)

Result = Literal["done", "refused", "unknown", "unavailable"]
RESULT_CONTEXT = "feature-result"
# A feature's handler gets the phone's channel and the code's argument. It returns how it went (the phone
# then hears it in [feature-result]), or None when it keeps the channel itself (e.g. a supervisor listening).
Handler = Callable[[Channel, str], Awaitable[Result | str | None]]


async def dialler(roster: Roster, channel: Channel) -> ListenerSnapshot | None:
    """The listener whose authenticated endpoint placed this call (active or not), if any.

    get_listener also matches ids, pseudonyms and short codes: only the endpoint itself proves who dialled.
    """
    endpoint = endpoint_of(channel.name)
    if endpoint is None:
        return None
    try:
        who = await roster.get_listener(endpoint)
    except ListenerNotFound:
        return None
    return who if who.endpoint == endpoint else None


class Features:
    def __init__(self, ari: Ari, roster: Roster, callers: Callers | None, bar_days: float) -> None:
        self._ari = ari
        self._roster = roster
        self._callers = callers
        self._bar_for = timedelta(days=bar_days)
        self.handlers: dict[str, Handler] = {"bar": self._bar}

    async def run(self, channel: Channel, args: list[str]) -> None:
        name = args[1] if len(args) > 1 else ""
        argument = args[2] if len(args) > 2 else ""
        handler = self.handlers.get(name)
        result: Result | str | None
        try:
            result = "refused" if handler is None else await handler(channel, argument)
        except RosterError as exc:
            log.warning("feature_failed", feature=name, error=exc.code)
            result = "unavailable"
        if result is None:
            return
        with contextlib.suppress(AriNotFound):
            await self._ari.continue_in_dialplan(channel.id, RESULT_CONTEXT, result, 1)

    async def _bar(self, channel: Channel, code: str) -> Result:
        who = await dialler(self._roster, channel)
        if who is None or self._callers is None:
            return "refused"
        if not who.active or who.role is not Role.SUPERVISOR:
            log.info("feature_refused", feature="bar", listener_id=who.id)
            return "refused"
        now = datetime.now(UTC)
        try:
            bar = await self._callers.bar_call(
                code,
                until=now + self._bar_for,
                reason="barred by a supervisor from their phone",
                created_by=who.id,
                now=now,
            )
        except CallNotFound:
            return "unknown"
        log.info("caller_barred", bar_id=bar.id, by=who.id)
        return "done"
