"""The roster kept in step with Asterisk and the core.

Every poll (and at once after each connect): the lines are reloaded if they changed (lines/cache.py);
listeners' phones are pushed to Asterisk as PJSIP objects; who is on duty, paused or off (what listeners
chose from their phones or the CLI) and whose phone is registered become core events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.core import (
    CallQueue,
    Event,
    ListenerOffline,
    ListenerOnline,
    ListenerPaused,
    ListenerState,
    ListenerUpdated,
    PhoneReachability,
)
from helpline_pbx.core.routing import Profile
from helpline_pbx.lines.arrivals import profile_of
from helpline_pbx.lines.cache import LineCache
from helpline_pbx.phones import listener_objects
from helpline_pbx.protocol import RING_GROUP, app_of_phone
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot, RosterVersion
from helpline_pbx.roster.states import Presence

log = structlog.get_logger(__name__)


def busy_in_roster(listener: ListenerSnapshot, now: datetime) -> bool:
    """Whether the roster says a call or a rest holds the listener (maybe with another instance)."""
    if listener.state in (ListenerState.RINGING, ListenerState.ON_CALL):
        return True
    resting = listener.state in (ListenerState.RESTING, ListenerState.AWAITING_DEBRIEF)
    return resting and listener.state_until is not None and listener.state_until > now


class RosterSync:
    def __init__(
        self,
        *,
        ari: Ari,
        roster: Roster,
        lines: LineCache,
        queue: CallQueue,
        feed: Callable[[Event], None],
        app: str,
    ) -> None:
        self._ari = ari
        self._roster = roster
        self._lines = lines
        self._queue = queue
        self._feed = feed
        self._app = app
        self._roster_version: RosterVersion | None = None
        self._pushed_phones: dict[str, str] = {}  # endpoint -> digest pushed to Asterisk
        self._profiles: dict[str, Profile] = {}  # listener id -> what the core was last told
        # listener id -> (presence, reason) last seen in the roster: a change is news for the core.
        self._presence_seen: dict[str, tuple[str, str | None]] = {}
        # endpoint -> whether Asterisk has a registration for it; listener id by endpoint and by short code.
        self._reachable: dict[str, bool] = {}
        self._listener_by_endpoint: dict[str, str] = {}
        self._listener_codes: dict[str, str] = {}
        # The active listeners as last read from the roster (the console's board names them by pseudonym).
        self.listeners: dict[str, ListenerSnapshot] = {}

    def forget_phones(self) -> None:
        """Asterisk may have restarted: its memory objects are gone, push every phone again."""
        self._pushed_phones.clear()

    def _on_endpoint_state(self, endpoint: str, state: str | None) -> None:
        reachable = state == "online"
        if self._reachable.get(endpoint) == reachable:
            return
        self._reachable[endpoint] = reachable
        listener_id = self._listener_by_endpoint.get(endpoint)
        if listener_id is not None:
            log.info("phone_reachability", listener_id=listener_id, reachable=reachable)
            self._feed(PhoneReachability(listener_id, reachable))

    async def run(self, *, force: bool) -> None:
        """One pass: lines (when they changed), phones, then who is on duty. force (after a (re)connect,
        when Asterisk forgot) pushes the phones again; the caller forces the lines itself beforehand."""
        await self._lines.sync(force=False)
        version = await self._roster.roster_version()
        active = await self._roster.list_listeners(active_only=True)
        if force or version != self._roster_version:
            await self._push_phones(active)
            # The dialplan fallback rings these phones when the service cannot take a call.
            ring_group = "&".join(f"PJSIP/{listener.endpoint}" for listener in active)
            await self._ari.set_global_variable(RING_GROUP, ring_group)
            self._roster_version = version
        await self._sync_availability(active)

    async def _push_phones(self, listeners: list[ListenerSnapshot]) -> None:
        wanted = {listener.endpoint: listener.sip_ha1 for listener in listeners}
        for endpoint, ha1 in wanted.items():
            if self._pushed_phones.get(endpoint) == ha1:
                continue
            for object_type, fields in listener_objects(endpoint, ha1):
                await self._ari.put_config_object(object_type, endpoint, fields)
            # This phone's feature codes come to this instance (several may share one Asterisk).
            await self._ari.set_global_variable(app_of_phone(endpoint), self._app)
            self._pushed_phones[endpoint] = ha1
            log.info("phone_configured", endpoint=endpoint)
        for endpoint in set(self._pushed_phones) - set(wanted):
            for object_type in ("endpoint", "aor", "auth"):
                with contextlib.suppress(AriNotFound):
                    await self._ari.delete_config_object(object_type, endpoint)
            await self._ari.set_global_variable(app_of_phone(endpoint), "")
            del self._pushed_phones[endpoint]
            log.info("phone_removed", endpoint=endpoint)

    async def _sync_availability(self, listeners: list[ListenerSnapshot]) -> None:
        """Bring the core's view of who takes calls in line with the roster and with Asterisk.

        Presence (on, paused, off) is the listener's choice, written by a phone code or the CLI: a change
        seen in the roster is news for the core. A listener on duty the core does not know, or lost to a
        claim another instance won, comes (back) once free; one removed, deactivated or off duty goes
        offline. States the core owns (ringing, on call, resting...) are left alone: it writes those.
        """
        now = datetime.now(UTC)
        active = {listener.id: listener for listener in listeners}
        self.listeners = active
        self._listener_by_endpoint = {x.endpoint: x.id for x in active.values()}
        self._listener_codes = {x.code: x.id for x in active.values() if x.code}
        for endpoint in await self._ari.list_endpoints("PJSIP"):
            if endpoint.resource in self._listener_by_endpoint:
                self._on_endpoint_state(endpoint.resource, endpoint.state)
        for listener in active.values():
            await self._sync_listener(listener, now)
        for view in self._queue.listeners():
            if view.listener_id not in active and view.online:
                self._presence_seen.pop(view.listener_id, None)
                self._feed(ListenerOffline(listener_id=view.listener_id))

    async def _sync_listener(self, listener: ListenerSnapshot, now: datetime) -> None:
        profile = profile_of(listener)
        known = self._queue.listener_state(listener.id)
        on_duty = known not in (None, ListenerState.OFFLINE)
        if on_duty and self._profiles.get(listener.id) != profile:
            # A role (or skill) changed in the roster: the core takes it, whatever they are doing.
            self._feed(ListenerUpdated(listener.id, listener.endpoint, profile))
        self._profiles[listener.id] = profile
        presence = (listener.presence.value, listener.presence_reason)
        changed = self._presence_seen.get(listener.id) != presence
        self._presence_seen[listener.id] = presence
        if listener.presence is Presence.OFF:
            if on_duty:
                self._feed(ListenerOffline(listener.id))
            return
        if not on_duty:
            # Coming on duty, or back after a claim another instance won: once no call or rest holds them.
            if busy_in_roster(listener, now):
                return
            self._feed(await self._coming_online(listener, profile))
        elif changed and listener.presence is Presence.PAUSED:
            self._feed(ListenerPaused(listener.id, listener.presence_reason or "paused"))
        elif changed:
            self._feed(
                ListenerOnline(
                    listener.id, listener.endpoint, profile=profile, reachable=self._is_reachable(listener)
                )
            )

    async def _coming_online(self, listener: ListenerSnapshot, profile: Profile) -> ListenerOnline:
        shift_start = listener.shift_started_at
        shift_calls = await self._roster.calls_since(listener.id, shift_start) if shift_start else 0
        return ListenerOnline(
            listener_id=listener.id,
            endpoint=listener.endpoint,
            idle_since=listener.idle_since.timestamp() if listener.idle_since else None,
            profile=profile,
            reachable=self._is_reachable(listener),
            on_duty_since=shift_start.timestamp() if shift_start else None,
            shift_calls=shift_calls,
            paused=(listener.presence_reason or "paused") if listener.presence is Presence.PAUSED else None,
        )

    def _is_reachable(self, listener: ListenerSnapshot) -> bool:
        return self._reachable.get(listener.endpoint, False)

    def listener_by_code(self, code: str) -> str | None:
        return self._listener_codes.get(code)
