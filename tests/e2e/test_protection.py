"""Listeners protected and helped, on the real Asterisk: a phone that misses offers is paused, an
unregistered phone is never rung, a chosen skill nobody holds widens, the line's rest applies, shift limits
bring a spoken break, codes keyed during a call bring a professional in (three-way or handover) or mark the
call difficult, and practice calls reach trainees only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tests.e2e.conftest import FAST, ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.harness import RunningService, wait_configured, wait_registered
from tests.e2e.keys import keying_caller, keying_listener

from helpline_pbx.core import (
    JoinCall,
    ListenerState,
    NotifyListener,
    OfferCall,
    Policy,
    ReleaseListener,
    RequestDebrief,
    SetListenerState,
    ShiftLimit,
)
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll what SIPp received: a notice rings a phone outside Stasis, so no ARI event tells of it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)


def _states(svc: RunningService, listener_id: str) -> list[SetListenerState]:
    return [
        c
        for c in svc.decisions.commands()
        if isinstance(c, SetListenerState) and c.listener_id == listener_id
    ]


async def test_a_listener_who_misses_offers_in_a_row_is_paused_and_the_caller_served_by_another(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Two offers rung out in a row: the listener is paused (their presence says why); a colleague who
    comes on duty serves the caller, who kept their place."""
    absent = await add_listener(roster, "Absent")
    svc = await service(
        Policy(ring_timeout=3, rest_after_call=1, missed_offer_delay=0.5, max_missed_offers=2)
    )
    await online_phone(svc, sipp, absent, "listener_noanswer")
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(absent.id) is ListenerState.PAUSED, 30, "the listener paused"
    )
    assert [o.listener_id for o in svc.decisions.offers()] == [absent.id, absent.id]
    await svc.board.executor.wait_idle()
    snapshot = await roster.get_listener(absent.id)
    assert (snapshot.presence.value, snapshot.presence_reason) == ("paused", "missed_offers")
    assert snapshot.state is ListenerState.PAUSED

    colleague = await add_listener(roster, "Colleague")
    await online_phone(svc, sipp, colleague, "listener_answer_hangup", pause_ms=500)
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert (record.outcome, record.listener_id) == ("served", colleague.id)
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_an_unregistered_phone_is_never_rung(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A listener on duty whose phone is not registered is skipped, though idle longest; once the phone
    registers, the next caller rings it."""
    unplugged = await add_listener(roster, "Unplugged")
    other = await add_listener(roster, "Other")
    svc = await service(Policy(ring_timeout=4, rest_after_call=60, max_missed_offers=0, shift_limits={}))
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(unplugged.id) is ListenerState.AVAILABLE, 10, "on duty"
    )
    await online_phone(svc, sipp, other, "listener_answer_hangup", pause_ms=300)
    first = sipp.caller("caller")
    await svc.decisions.wait_records(1, timeout=20)
    assert {o.listener_id for o in svc.decisions.offers()} == {other.id}
    assert (await first.wait_async(15)).exit_code == 0, first.errors()

    await wait_configured(svc.ari, unplugged.endpoint)
    sipp.softphone(unplugged, "listener_answer_hangup", pause_ms=300)
    await wait_registered(svc.ari, unplugged.endpoint)
    second = sipp.caller("caller")
    records = await svc.decisions.wait_records(2, timeout=20)
    assert records[1].listener_id == unplugged.id
    assert (await second.wait_async(15)).exit_code == 0, second.errors()


async def test_a_chosen_kind_of_support_nobody_on_duty_holds_widens_to_the_line(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Pressing 2 (legal) when no listener on duty has that skill: the caller is not left waiting, any
    listener of the line answers."""
    lines = Lines(roster.engine)
    await lines.add("adultes", label="Écoute", numbers=[sipp.line], support=["ecoute", "juridique"])
    anyone = await add_listener(roster, "Anyone")
    svc = await service()
    await online_phone(svc, sipp, anyone, "listener_answer_hangup", pause_ms=300)
    caller = keying_caller(sipp, "2")
    [record] = await svc.decisions.wait_records(1, timeout=40)
    assert record.listener_id == anyone.id
    [arrived] = [e for e in svc.decisions.events() if type(e).__name__ == "CallerArrived"]
    assert arrived.requirements.wanted == {"juridique"}  # type: ignore[attr-defined]
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_the_line_sets_the_rest_after_its_calls(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A line with a 90 s minimum rest: the listener rests 90 s after its call, not the service's 1 s."""
    lines = Lines(roster.engine)
    await lines.add("jeunes", label="Écoute Jeunes", numbers=[sipp.line], rest_after_call=90)
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    caller = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=20)
    rest = next(s for s in _states(svc, camille.id) if s.reason == "after_call")
    assert rest.until is not None
    assert abs(rest.until - record.ended_at - 90) < 1
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_a_shift_limit_brings_a_break_said_on_the_phone(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """One call per shift: after it (and its rest) the listener is on a break, recorded, and their phone
    rings with a short notice saying so."""
    camille = await add_listener(roster, "Camille")
    policy = Policy(
        ring_timeout=4,
        rest_after_call=0.5,
        shift_break=600,
        shift_limits={"volunteer": ShiftLimit(max_calls=1)},
    )
    svc = await service(policy)
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    caller = sipp.caller("caller")
    await svc.decisions.wait_records(1, timeout=20)
    await svc.decisions.wait_for(
        lambda: any(isinstance(c, NotifyListener) for c in svc.decisions.commands()), 15, "a notice"
    )
    assert svc.board.queue.listener_state(camille.id) is ListenerState.PAUSED
    await _until(lambda: len([m for m in phone.messages() if m.startswith("INVITE ")]) >= 2)
    invites = [m for m in phone.messages() if m.startswith("INVITE ")]
    assert len(invites) == 2, "the phone never rang with the notice"
    assert "notice" in invites[1]
    await svc.board.executor.wait_idle()
    events = await roster.listener_events(camille.id)
    assert any(e.state is ListenerState.PAUSED and e.reason == "shift_limit" for e in events)
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_a_listener_brings_a_professional_into_the_call(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*1 keyed during a call: the professional on duty is rung and joins; caller, listener and professional
    share one conversation, and the caller still talks to anonymity only."""
    camille = await add_listener(roster, "Camille")
    pro = await add_listener(roster, "Pro", role="professional")
    svc = await service(Policy(ring_timeout=5, rest_after_call=1, max_missed_offers=0, shift_limits={}))
    # The volunteer is tried first (idle longest); the professional only joins.
    await online_phone(svc, sipp, camille, keying_listener(sipp, "*1", "keys_help"), pause_ms=10000)
    # The professional hangs up first: the listener goes on with the caller, then ends the call.
    pro_phone = await online_phone(svc, sipp, pro, "listener_answer_hangup", pause_ms=5000)
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: any(isinstance(c, JoinCall) for c in svc.decisions.commands()), 30, "the professional joining"
    )
    helper_offers = [o for o in svc.decisions.offers() if o.helper]
    assert [o.listener_id for o in helper_offers] == [pro.id]
    bridge_id = f"{helper_offers[0].call_id}-talk"
    deadline = time.monotonic() + 10
    members: list[str] = []
    while time.monotonic() < deadline:
        members = (await svc.ari.get_bridge(bridge_id)).channels
        if len(members) == 3:
            break
        await asyncio.sleep(0.1)  # bridge membership changes reach only subscribed apps: polled
    assert len(members) == 3, members
    [record] = await svc.decisions.wait_records(1, timeout=40)
    assert record.listener_id == camille.id
    assert svc.board.queue.listener_state(pro.id) is not ListenerState.ON_CALL
    invite = next(m for m in pro_phone.messages() if m.startswith("INVITE "))
    assert "0639981234" not in invite
    assert "Jeanne" not in invite
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_a_listener_hands_the_call_over_to_a_professional(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*3 keyed during a call: once the professional answers, the listener's leg ends and the professional
    goes on alone with the caller, who never lost the line."""
    camille = await add_listener(roster, "Camille")
    pro = await add_listener(roster, "Pro", role="professional")
    svc = await service(Policy(ring_timeout=5, rest_after_call=1, max_missed_offers=0, shift_limits={}))
    await online_phone(svc, sipp, camille, keying_listener(sipp, "*3", "keys_handover"), pause_ms=30000)
    await online_phone(svc, sipp, pro, "listener_answer_hangup", pause_ms=3000)
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: any(isinstance(c, ReleaseListener) for c in svc.decisions.commands()), 30, "the handover"
    )
    assert svc.board.queue.listener_state(camille.id) is ListenerState.RESTING
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert (record.outcome, record.listener_id) == ("served", pro.id)
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_a_call_marked_difficult_during_it_brings_a_debrief_request_to_the_supervisor(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*9 keyed during a call: after it the listener awaits a debrief on a longer rest, the request is
    listed, and the supervisor on duty's phone rings with a short message."""
    camille = await add_listener(roster, "Camille")
    sup = await add_listener(roster, "Sup", role="supervisor")
    svc = await service(Policy(ring_timeout=5, rest_after_call=1, max_missed_offers=0, shift_limits={}))
    await online_phone(svc, sipp, camille, keying_listener(sipp, "*9", "keys_difficult"), pause_ms=3000)
    await roster.set_presence(sup.id, "paused", reason="supervising", now=datetime.now(UTC))
    await wait_configured(svc.ari, sup.endpoint)
    sup_phone = sipp.softphone(sup, "listener_answer_hangup", pause_ms=300)
    await wait_registered(svc.ari, sup.endpoint)
    caller = sipp.caller("caller")
    await svc.decisions.wait_records(1, timeout=30)
    await svc.decisions.wait_for(
        lambda: any(isinstance(c, RequestDebrief) for c in svc.decisions.commands()), 15, "a debrief request"
    )
    assert svc.board.queue.listener_state(camille.id) is ListenerState.AWAITING_DEBRIEF
    await svc.board.executor.wait_idle()
    [request] = await Debriefs(roster.engine).open()
    assert request.listener_id == camille.id
    await _until(lambda: any(m.startswith("INVITE ") for m in sup_phone.messages()))
    assert any(m.startswith("INVITE ") for m in sup_phone.messages()), "the supervisor was never called"
    await caller.wait_async(15)


async def test_practice_calls_reach_trainees_only_and_are_marked_practice(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A trainer calls the training line: the trainee answers although a trained listener was idle longer;
    the record, in the core and in the database, says practice."""
    lines = Lines(roster.engine)
    await lines.add("formation", label="Mise en situation", numbers=[sipp.line], practice=True)
    trained = await add_listener(roster, "Trained")
    trainee = await add_listener(roster, "Trainee", trainee=True)
    svc = await service()
    await online_phone(svc, sipp, trained)
    await online_phone(svc, sipp, trainee, "listener_answer_hangup", pause_ms=300)
    caller = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=20)
    assert record.listener_id == trainee.id
    assert record.practice
    assert {o.listener_id for o in svc.decisions.offers() if isinstance(o, OfferCall)} == {trainee.id}
    await svc.board.executor.wait_idle()
    stored = await roster.call_record(record.call_id)
    assert stored is not None
    assert stored.practice
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_a_trainer_reaches_the_trainee_they_chose_by_code(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """On the training line, the trainer keys a trainee's short code then #: that trainee is rung, not the
    one idle longer."""
    lines = Lines(roster.engine)
    await lines.add("formation", label="Mise en situation", numbers=[sipp.line], practice=True)
    first = await add_listener(roster, "First", trainee=True)
    chosen = await add_listener(roster, "Chosen", trainee=True)
    assert chosen.code is not None
    svc = await service()
    await online_phone(svc, sipp, first)
    await online_phone(svc, sipp, chosen, "listener_answer_hangup", pause_ms=300)
    caller = keying_caller(sipp, chosen.code + "#")
    [record] = await svc.decisions.wait_records(1, timeout=40)
    assert record.listener_id == chosen.id
    assert record.practice
    assert {o.listener_id for o in svc.decisions.offers()} == {chosen.id}
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_a_real_call_never_reaches_a_trainee(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """On a line that does not allow trainees, a trainee idle longest is never offered the real caller."""
    trainee = await add_listener(roster, "Trainee", trainee=True)
    trained = await add_listener(roster, "Trained")
    svc = await service(FAST)
    await online_phone(svc, sipp, trainee)
    await online_phone(svc, sipp, trained, "listener_answer_hangup", pause_ms=300)
    caller = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=20)
    assert record.listener_id == trained.id
    assert not record.practice
    assert {o.listener_id for o in svc.decisions.offers()} == {trained.id}
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()
