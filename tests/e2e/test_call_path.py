"""The call path on the real Asterisk: queue, pick a listener, ring, bridge, rest."""

from __future__ import annotations

import pytest
from tests.e2e.conftest import FAST, ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.sipp import SippProcess

from helpline_pbx.core import CallerArrived, CancelOffer, ConnectCall, ListenerState, Policy
from helpline_pbx.roster.repository import Roster


async def test_caller_hangs_up_first_after_being_bridged(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """One caller, one listener: bridged; the caller ends the call, the listener's leg is hung up."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    phone = await online_phone(svc, sipp, camille)
    caller = sipp.caller("caller_hangup", talk_ms=1500)

    [record] = await svc.decisions.wait_records(1)
    assert record.outcome == "served"
    assert record.listener_id == camille.id
    # The caller stays 1.5 s after being answered by Asterisk; part of that was the listener's ringing.
    assert 0.3 < record.talk_seconds < 2.0
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()
    # The listener's phone received the BYE: the bridge did not outlive the caller.
    await phone.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=5)
    await svc.board.executor.wait_idle()
    stored = await roster.call_record(record.call_id)
    assert stored is not None
    assert stored.outcome == "served"


async def test_listener_hangs_up_first(roster: Roster, service: ServiceFactory, sipp: Sipp) -> None:
    """The listener ends the call: the caller receives a BYE and the call is recorded as served."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=1000)
    caller = sipp.caller("caller")

    [record] = await svc.decisions.wait_records(1)
    assert record.outcome == "served"
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_five_callers_two_listeners_served_in_arrival_order(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Five callers, two listeners: every caller is served, offers follow arrival order."""
    a = await add_listener(roster, "Alex")
    b = await add_listener(roster, "Bea")
    svc = await service(
        Policy(ring_timeout=5, rest_after_call=0.2, missed_offer_delay=1, declined_offer_delay=1)
    )
    await online_phone(svc, sipp, a, "listener_answer_hangup", pause_ms=800)
    await online_phone(svc, sipp, b, "listener_answer_hangup", pause_ms=800)
    # Callers who stay until the listener ends the call, arriving one after another.
    callers = []
    for n in range(5):
        callers.append(sipp.caller("caller"))
        await svc.decisions.wait_for(
            lambda n=n: sum(type(e).__name__ == "CallerArrived" for e in svc.decisions.events()) > n, 10
        )

    records = await svc.decisions.wait_records(5, timeout=90)
    assert all(r.outcome == "served" for r in records), records
    arrivals = [e.call_id for e in svc.decisions.events() if type(e).__name__ == "CallerArrived"]
    first_offers: list[str] = []
    for offer in svc.decisions.offers():
        if offer.call_id not in first_offers:
            first_offers.append(offer.call_id)
    assert first_offers == arrivals
    assert {r.listener_id for r in records} == {a.id, b.id}
    for caller in callers:
        assert (await caller.wait_async(30)).exit_code == 0, caller.errors()


@pytest.mark.parametrize("behaviour", ["listener_noanswer", "listener_busy"])
async def test_a_missed_or_rejected_offer_goes_to_the_next_listener(
    behaviour: str, roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A listener who never answers (ring timeout) or rejects with 486: the next listener gets the call."""
    shy = await add_listener(roster, "Shy")
    svc = await service(
        Policy(ring_timeout=2, rest_after_call=1, missed_offer_delay=30, declined_offer_delay=30)
    )
    await online_phone(svc, sipp, shy, behaviour)
    # The shy listener has been idle longest, so they are offered the call first.
    ready = await add_listener(roster, "Ready")
    await online_phone(svc, sipp, ready, "listener_answer_hangup", pause_ms=500)
    caller = sipp.caller("caller")

    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    assert record.listener_id == ready.id
    offered = [o.listener_id for o in svc.decisions.offers()]
    assert offered == [shy.id, ready.id]
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_caller_hangs_up_while_waiting(roster: Roster, service: ServiceFactory, sipp: Sipp) -> None:
    """With nobody to answer, a caller who gives up is recorded as abandoned and nobody is rung."""
    svc = await service()
    caller = sipp.caller("caller_hangup", talk_ms=1000)

    [record] = await svc.decisions.wait_records(1)
    assert record.outcome == "abandoned"
    assert record.offers == 0
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_caller_hangs_up_while_the_listener_phone_rings(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """The caller gives up during ringing: the listener's phone stops ringing (CANCEL) and is free at once."""
    camille = await add_listener(roster, "Camille")
    svc = await service(
        Policy(ring_timeout=20, rest_after_call=1, missed_offer_delay=1, declined_offer_delay=1)
    )
    phone = await online_phone(svc, sipp, camille, "listener_noanswer")
    caller = sipp.caller("caller_hangup", talk_ms=2500)

    [record] = await svc.decisions.wait_records(1, timeout=20)
    assert record.outcome == "abandoned"
    assert any(isinstance(c, CancelOffer) for c in svc.decisions.commands()), svc.decisions.describe()
    await phone.wait_for_message_async(lambda m: m.startswith("CANCEL "), timeout=5)
    assert svc.board.queue.listener_state(camille.id) is ListenerState.AVAILABLE
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_rest_time_is_respected_between_calls(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A listener's next call is offered only after their rest: never during it."""
    camille = await add_listener(roster, "Camille")
    rest = 3.0
    svc = await service(
        Policy(ring_timeout=5, rest_after_call=rest, missed_offer_delay=1, declined_offer_delay=1)
    )
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=500)
    first = sipp.caller("caller")
    sipp.caller("caller")

    records = await svc.decisions.wait_records(2, timeout=40)
    assert [r.outcome for r in records] == ["served", "served"]
    first, second_record = sorted(records, key=lambda r: r.ended_at)
    assert len(svc.decisions.offers()) == 2
    assert second_record.first_offered_at is not None
    # The second caller waited through the listener's whole rest.
    assert second_record.first_offered_at - first.ended_at >= rest - 0.05
    for caller in sipp.processes[1:]:
        assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_waiting_caller_is_served_as_soon_as_a_listener_becomes_available(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """No listener at first: the caller waits with music and is offered the first listener who comes."""
    svc = await service(FAST)
    caller = sipp.caller("caller_hangup", talk_ms=8000)
    await svc.decisions.wait_for(lambda: len(svc.board.queue.waiting()) == 1, 10)

    late = await add_listener(roster, "Late")
    await online_phone(svc, sipp, late)

    await svc.decisions.wait_for(
        lambda: any(isinstance(c, ConnectCall) for c in svc.decisions.commands()), 20
    )
    [record] = await svc.decisions.wait_records(1, timeout=20)
    assert record.outcome == "served"
    assert record.listener_id == late.id
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_a_phone_behind_the_trunks_address_registers_and_answers(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """An office whose carrier box hides everything behind one address: the listener's phone comes from the
    trunk's address, still registers (found by its user name, then challenged) and answers a caller."""
    noor = await add_listener(roster, "Noor")
    svc = await service()
    phone = await online_phone(svc, sipp, noor, local_ip=sipp.asterisk.trunk_ip)
    assert phone.local_ip == sipp.asterisk.trunk_ip
    caller = sipp.caller("caller_hangup", talk_ms=1000)

    [record] = await svc.decisions.wait_records(1)
    assert (record.outcome, record.listener_id) == ("served", noor.id)
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_an_invite_from_elsewhere_naming_the_trunk_is_not_the_trunk(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """The trunk is found by its address only: an INVITE from another address whose From user is "trunk"
    is challenged like any stranger and never reaches the line."""
    svc = await service()
    stranger = SippProcess(
        "caller",
        workdir=sipp.workdir,
        local_ip="127.0.0.1",
        remote=sipp.remote,
        service=sipp.line,
        variables={"caller_user": "trunk", "caller_name": "Trunk"},
        calls=1,
        lifetime=30,
    )
    sipp.processes.append(stranger)
    stranger.start()
    answer = await stranger.wait_for_message_async(lambda m: m.startswith("SIP/2.0 4"), timeout=10)
    assert answer.split(" ", 2)[1] in {"401", "403"}, answer.splitlines()[0]
    await stranger.stop_async()
    assert not [e for e in svc.decisions.events() if isinstance(e, CallerArrived)]
