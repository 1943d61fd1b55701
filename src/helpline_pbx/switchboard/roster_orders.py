"""The core's orders about listeners and records: states written to the roster, call records, debrief
requests, and the short notices a listener's phone is rung to hear. States and records are handed to the
scribe (scribe.py) in the core's order and written behind; the rest runs on its lane, retried while the
database is unavailable. A failure is logged, never raised into the event loop."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriError
from helpline_pbx.ari.interface import Ari
from helpline_pbx.core import ListenerState, RecordCall, RequestDebrief, SetListenerState
from helpline_pbx.protocol import NOTICE_CODE, notice_lane
from helpline_pbx.roster import writes
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import CallRecordData
from helpline_pbx.roster.states import Presence, Role
from helpline_pbx.switchboard.retry import with_retry
from helpline_pbx.switchboard.scribe import Scribe
from helpline_pbx.switchboard.workers import Lanes

log = structlog.get_logger(__name__)

# Where a phone called to hear a short notice lands (the notice's name is the extension).
NOTICE_CONTEXT = "listener-notice"
NOTICE_RING_SECONDS = 30


def _at(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class RosterOrders:
    def __init__(
        self,
        *,
        ari: Ari,
        roster: Roster,
        scribe: Scribe,
        debriefs: Debriefs | None,
        lanes: Lanes,
        instance: str,
        owner: str,
    ) -> None:
        self._ari = ari
        self._roster = roster
        self._scribe = scribe
        self._debriefs = debriefs
        self.lanes = lanes
        self._instance = instance
        # The call-id prefix of this instance: another instance's claim on a listener stands.
        self._owner = owner

    async def notify(self, listener_id: str, endpoint: str, notice: str, about: str | None = None) -> None:
        """Ring the phone; once answered it hears the notice from the dialplan (and the short code of the
        listener it is about, if any) and hangs up."""
        try:
            await self._ari.originate_to_dialplan(
                f"notice-{listener_id}-{notice}-{int(time.time())}",
                f"PJSIP/{endpoint}",
                context=NOTICE_CONTEXT,
                extension=notice,
                caller_id='"Écoute" <notice>',
                timeout=NOTICE_RING_SECONDS,
                variables={NOTICE_CODE: about} if about else None,
            )
        except AriError as exc:
            log.warning("notice_failed", listener_id=listener_id, notice=notice, error=exc.code)
            return
        log.info("listener_notified", listener_id=listener_id, notice=notice)

    async def request_debrief(self, command: RequestDebrief) -> None:
        """List the request until a supervisor handles it, and tell the supervisors on duty now."""
        now = datetime.now(UTC)
        debriefs = self._debriefs
        if debriefs is not None:
            try:
                await with_retry(lambda: debriefs.request(command.listener_id, command.call_id, now))
            except RosterError as exc:
                log.warning("debrief_not_saved", listener_id=command.listener_id, error=exc.code)
        try:
            listeners = await with_retry(lambda: self._roster.list_listeners(active_only=True))
        except RosterError as exc:
            log.warning("supervisors_not_found", error=exc.code)
            return
        supervisors = [
            x
            for x in listeners
            if x.role is Role.SUPERVISOR and x.presence is not Presence.OFF and x.id != command.listener_id
        ]
        # The supervisor hears whose request it is by the listener's short code, never a name on the line.
        code = next((x.code for x in listeners if x.id == command.listener_id), None)
        log.info("debrief_requested", listener_id=command.listener_id, supervisors=len(supervisors))
        for supervisor in supervisors:
            self.lanes.submit(
                notice_lane(supervisor.id),
                functools.partial(self.notify, supervisor.id, supervisor.endpoint, "debrief-request", code),
            )

    def set_state(self, command: SetListenerState) -> None:
        now = datetime.now(UTC)
        # A listener's idle time starts when their last call ended, which is when their rest begins.
        idle_since = (
            now if command.state is ListenerState.RESTING and command.reason == "after_call" else None
        )
        self._scribe.write(
            functools.partial(
                writes.set_state,
                listener_id=command.listener_id,
                state=command.state.value,
                call_id=command.call_id,
                until=_at(command.until),
                reason=command.reason,
                now=now,
                idle_since=idle_since,
                presence=command.presence,
                owner=self._owner,
            ),
            "listener_state_not_saved",
            listener_id=command.listener_id,
        )

    def record(self, command: RecordCall) -> None:
        r = command.record
        data = CallRecordData(
            call_id=r.call_id,
            line=r.line,
            queued_at=datetime.fromtimestamp(r.queued_at, UTC),
            ended_at=datetime.fromtimestamp(r.ended_at, UTC),
            outcome=r.outcome,
            instance=self._instance,
            first_offered_at=_at(r.first_offered_at),
            answered_at=_at(r.answered_at),
            listener_id=r.listener_id,
            offers=r.offers,
            wait_seconds=r.wait_seconds,
            talk_seconds=r.talk_seconds,
            practice=r.practice,
        )
        self._scribe.write(
            functools.partial(writes.record_call, record=data), "call_record_not_saved", call_id=r.call_id
        )
        log.info(
            "call_ended",
            call_id=r.call_id,
            line=r.line,
            outcome=r.outcome,
            listener_id=r.listener_id,
            offers=r.offers,
            wait_seconds=round(r.wait_seconds, 3),
            talk_seconds=round(r.talk_seconds, 3),
        )
