"""Presence from the phone on the real Asterisk: log in, pause, resume, log out, more rest, a difficult call
that calls the supervisor on duty, and the supervisor closing the debrief; each code confirmed by a prompt."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

from tests.e2e.conftest import FAST, ServiceFactory, Sipp, add_listener
from tests.e2e.harness import RunningService, wait_configured, wait_registered
from tests.e2e.sipp import SippProcess

from helpline_pbx.ari.client import AriClient
from helpline_pbx.core import CallerArrived, ListenerState, SetListenerState
from helpline_pbx.core.commands import RequestDebrief
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import Presence

# Rests long enough to dial a code during them.
RESTFUL = replace(FAST, rest_after_call=30.0, rest_extension=60.0)


async def _phone(
    svc: RunningService,
    sipp: Sipp,
    app: str,
    who: ListenerSnapshot,
    answer: str = "listener_answer",
    pause_ms: int | None = None,
) -> SippProcess:
    """Register a softphone for a listener the service has pushed to Asterisk (whatever their presence)."""
    # Other tests' services share this Asterisk, and the last to connect takes the codes of phones with no
    # route of their own ([feature-code]): this phone's codes go to this test's service.
    await svc.ari.set_global_variable(f"HELPLINE_PHONE_APP_{who.endpoint}", app)
    await wait_configured(svc.ari, who.endpoint)
    phone = sipp.softphone(who, answer, pause_ms=pause_ms)
    await wait_registered(svc.ari, who.endpoint)
    return phone


async def _plays(ari: AriClient, prompt: str, timeout: float = 15.0) -> bool:
    """Whether some channel plays helpline/<prompt> (a phone in [feature-result]: no app hears it, polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for channel in await ari.list_channels():
            if channel.dialplan is not None and channel.dialplan.app_data == f"helpline/{prompt}":
                return True
        await asyncio.sleep(0.05)
    return False


async def _dial(svc: RunningService, sipp: Sipp, who: ListenerSnapshot, code: str, prompt: str) -> None:
    """Dial a code from the listener's phone: they hear `prompt`, then the line hangs up."""
    dial = sipp.dial(who, code)
    assert await _plays(svc.ari, prompt), f"{code} never played {prompt}"
    assert (await dial.wait_async(30)).exit_code == 0, dial.errors()


async def _state(
    svc: RunningService, who: ListenerSnapshot, state: ListenerState, timeout: float = 15
) -> None:
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(who.id) is state, timeout, f"{who.pseudonym} {state.value}"
    )


def _rest_ends(svc: RunningService, who: ListenerSnapshot) -> list[float]:
    return [
        c.until
        for c in svc.decisions.commands()
        if isinstance(c, SetListenerState) and c.listener_id == who.id and c.until is not None
    ]


async def test_log_in_pause_resume_and_log_out_from_the_phone(
    roster: Roster, service: ServiceFactory, sipp: Sipp, app_name: str
) -> None:
    """*11 makes the listener available; *13 2 pauses them (a caller then waits, not offered to them); *14
    makes them available and they get the call; *12 takes them off duty. Each code plays its confirmation."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await _phone(svc, sipp, app_name, camille, "listener_answer_hangup", pause_ms=500)

    await _dial(svc, sipp, camille, "*11", "feature-logged-in")
    await _state(svc, camille, ListenerState.AVAILABLE)
    assert (await roster.get_listener(camille.id)).presence is Presence.ON

    await _dial(svc, sipp, camille, "*132", "feature-paused")
    await _state(svc, camille, ListenerState.PAUSED)
    paused = await roster.get_listener(camille.id)
    assert (paused.presence, paused.presence_reason) == (Presence.PAUSED, "training")

    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: any(isinstance(e, CallerArrived) for e in svc.decisions.events()), 15, "the caller queued"
    )
    # The core dispatches on every event: had she been offerable, the arrival itself would have offered her.
    assert svc.decisions.offers() == []
    assert svc.board.queue.listener_state(camille.id) is ListenerState.PAUSED

    await _dial(svc, sipp, camille, "*14", "feature-resumed")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert (record.outcome, record.listener_id) == ("served", camille.id)
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()

    await _dial(svc, sipp, camille, "*12", "feature-logged-out")
    await _state(svc, camille, ListenerState.OFFLINE)
    assert (await roster.get_listener(camille.id)).presence is Presence.OFF


async def test_a_listener_paused_by_the_line_hears_why_before_the_confirmation(
    roster: Roster, service: ServiceFactory, sipp: Sipp, app_name: str
) -> None:
    """A listener the line paused for missed offers hears so when they next dial a code, then its confirmation."""
    camille = await add_listener(roster, "Camille")
    await roster.set_presence(camille.id, Presence.PAUSED, reason="missed_offers", now=datetime.now(UTC))
    svc = await service()
    await _phone(svc, sipp, app_name, camille)

    dial = sipp.dial(camille, "*14")
    assert await _plays(svc.ari, "paused-missed-offers")
    assert await _plays(svc.ari, "feature-resumed")
    assert (await dial.wait_async(30)).exit_code == 0, dial.errors()
    await _state(svc, camille, ListenerState.AVAILABLE)


async def test_more_rest_moves_the_end_of_the_rest_later(
    roster: Roster, service: ServiceFactory, sipp: Sipp, app_name: str
) -> None:
    """*15 during the rest after a call: the core sets a later end to the rest, and the phone hears so."""
    camille = await add_listener(roster, "Camille")
    svc = await service(RESTFUL)
    await _phone(svc, sipp, app_name, camille, "listener_answer_hangup", pause_ms=300)
    await _dial(svc, sipp, camille, "*11", "feature-logged-in")
    await _state(svc, camille, ListenerState.AVAILABLE)

    caller = sipp.caller("caller")
    await svc.decisions.wait_records(1, timeout=30)
    await _state(svc, camille, ListenerState.RESTING)
    first_end = _rest_ends(svc, camille)[-1]

    await _dial(svc, sipp, camille, "*15", "feature-rest-extended")
    await svc.decisions.wait_for(
        lambda: _rest_ends(svc, camille)[-1] > first_end, 10, "a later end of the rest"
    )
    assert _rest_ends(svc, camille)[-1] - first_end >= RESTFUL.rest_extension - 1
    assert svc.board.queue.listener_state(camille.id) is ListenerState.RESTING
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_a_difficult_call_calls_the_supervisor_and_stays_listed_until_handled(
    roster: Roster, service: ServiceFactory, sipp: Sipp, app_name: str
) -> None:
    """*16 right after a call: the listener awaits a debrief, a request is listed and the supervisor on duty's
    phone is called; *41 + the listener's code from the supervisor's phone closes the request."""
    camille = await add_listener(roster, "Camille")
    sup = await add_listener(roster, "Sup", role="supervisor")
    # On duty to support the others, taking no calls.
    await roster.set_presence(sup.id, Presence.PAUSED, reason="supervising", now=datetime.now(UTC))
    svc = await service(RESTFUL)
    await _phone(svc, sipp, app_name, camille, "listener_answer_hangup", pause_ms=300)
    sup_phone = await _phone(svc, sipp, app_name, sup)
    await _dial(svc, sipp, camille, "*11", "feature-logged-in")
    await _state(svc, camille, ListenerState.AVAILABLE)

    caller = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.listener_id == camille.id
    assert {o.listener_id for o in svc.decisions.offers()} == {camille.id}

    await _dial(svc, sipp, camille, "*16", "feature-difficult-noted")
    await _state(svc, camille, ListenerState.AWAITING_DEBRIEF)
    assert RequestDebrief(camille.id, record.call_id) in svc.decisions.commands()
    invite = await sup_phone.wait_for_message_async(lambda m: m.startswith("INVITE "), 20)
    assert sup.endpoint in invite.splitlines()[0]
    await svc.board.executor.wait_idle()
    debriefs = Debriefs(roster.engine)
    [request] = await debriefs.open()
    assert (request.listener_id, request.call_id) == (camille.id, record.call_id)

    await _dial(svc, sipp, sup, f"*41{camille.code}", "feature-debrief-handled")
    assert await debriefs.open() == []
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_with_no_supervisor_on_duty_the_phone_says_so_and_resume_says_the_rest_goes_on(
    roster: Roster, service: ServiceFactory, sipp: Sipp, app_name: str
) -> None:
    """*16 after a call with no supervisor on duty: the request is listed and the phone hears that no
    supervisor is on duty now; *14 during that rest hears the rest goes on (no call offered until it ends)."""
    camille = await add_listener(roster, "Camille")
    await add_listener(roster, "Sup", role="supervisor", on_duty=False)  # nobody to ring
    svc = await service(RESTFUL)
    await _phone(svc, sipp, app_name, camille, "listener_answer_hangup", pause_ms=300)
    await _dial(svc, sipp, camille, "*11", "feature-logged-in")
    await _state(svc, camille, ListenerState.AVAILABLE)

    caller = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    await _dial(svc, sipp, camille, "*16", "feature-difficult-noted-no-supervisor")
    await _state(svc, camille, ListenerState.AWAITING_DEBRIEF)
    await svc.board.executor.wait_idle()
    [request] = await Debriefs(roster.engine).open()
    assert (request.listener_id, request.call_id) == (camille.id, record.call_id)

    await _dial(svc, sipp, camille, "*14", "feature-resumed-resting")
    assert svc.board.queue.listener_state(camille.id) is ListenerState.AWAITING_DEBRIEF
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()
