"""The service's life on the real Asterisk: roster changes while running, and the drain on SIGTERM."""

from __future__ import annotations

import pytest
from tests.e2e.conftest import ServiceFactory, Sipp, add_listener, online_phone

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.core import ListenerState, Policy
from helpline_pbx.roster.repository import Roster


async def test_listener_changes_reach_asterisk_while_running(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Adding a listener creates their SIP account; deactivating removes it and they get no more calls."""
    svc = await service()
    camille = await add_listener(roster, "Camille")
    await online_phone(svc, sipp, camille)
    assert svc.board.queue.listener_state(camille.id) is ListenerState.AVAILABLE

    await roster.edit_listener(camille.id, active=False)
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) in (None, ListenerState.OFFLINE),
        10,
        "listener offline",
    )
    # The account goes in the same roster poll that took the listener offline.
    await svc.board.executor.wait_idle()
    with pytest.raises(AriNotFound):
        await svc.ari.get_endpoint("PJSIP", camille.endpoint)

    caller = sipp.caller("caller_hangup", talk_ms=1500)
    [record] = await svc.decisions.wait_records(1)
    assert record.outcome == "abandoned"
    assert record.offers == 0
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_drain_sends_waiting_callers_to_the_fallback_and_lets_calls_finish(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """On SIGTERM: the waiting caller reaches the fallback message, the bridged call goes on to its end."""
    camille = await add_listener(roster, "Camille")
    svc = await service(
        Policy(ring_timeout=5, rest_after_call=1, missed_offer_delay=1, declined_offer_delay=1)
    )
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=3000)
    talking = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) is ListenerState.ON_CALL, 10
    )
    waiting = sipp.caller("caller")
    await svc.decisions.wait_for(lambda: len(svc.board.queue.waiting()) == 1, 10, "a waiting caller")
    waiting_channel = next(c.caller_channel for c in svc.board.book.calls() if c.listener_channels == {})

    svc.board.request_drain()

    records = await svc.decisions.wait_records(1, timeout=10)
    assert records[0].outcome == "fallback"
    await svc.board.executor.wait_idle()
    channel = await svc.ari.get_channel(waiting_channel)
    assert channel.dialplan is not None
    assert channel.dialplan.context == "helpline-fallback"
    # A new caller during the drain goes straight to the fallback too.
    late = sipp.caller("caller")
    # The call in progress ends normally, then the service stops by itself.
    await svc.decisions.wait_records(2, timeout=15)
    assert sorted(r.outcome for r in svc.decisions.records()) == ["fallback", "served"]
    await svc.task
    assert (await talking.wait_async(15)).exit_code == 0, talking.errors()
    for proc in (waiting, late):
        await proc.stop_async()
