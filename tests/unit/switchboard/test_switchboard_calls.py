"""One call at a time through the real Switchboard, with Asterisk misbehaving in the ways it does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fake_asterisk import (
    CAUSE_BUSY,
    CAUSE_NO_ANSWER,
    CAUSE_NORMAL,
    HOLDING,
    AriCall,
    FakeAsterisk,
    caller_args,
    channel_destroyed,
    stasis_start,
)
from helpline_rig import QUIET, Helpline

from helpline_pbx.ari.errors import AriError, AriNotFound, AriServerError
from helpline_pbx.core import (
    CallerLeft,
    ConnectCall,
    ConnectFailed,
    ListenerLeft,
    OfferAnswered,
    OfferFailed,
    Policy,
    RecordCall,
)


def vanishing(asterisk: FakeAsterisk, channel_id: str) -> Callable[[AriCall], AriError]:
    """A 404 for a request that raced the channel's hang-up: the channel is gone when Asterisk answers."""

    def error(call: AriCall) -> AriError:
        asterisk.vanish(channel_id)
        return AriNotFound("POST", f"/channels/{channel_id}", status=404, detail="Channel not found")

    return error


async def test_a_call_is_offered_bridged_and_recorded_as_served(helpline: Helpline) -> None:
    """Baseline: caller held with music, listener rung, answer bridges both, hang-up records one served call."""
    (alice,) = await helpline.add_listeners("alice")
    await helpline.start()
    caller = helpline.call()
    await helpline.settled()

    assert helpline.asterisk.bridges[HOLDING] == [caller["id"]]
    (leg,) = helpline.asterisk.originated()
    call_id = helpline.call_id_of(caller)
    assert leg == f"{call_id}-{alice.id}-1"
    assert await helpline.states([alice]) == {"alice": "ringing"}

    helpline.answer(leg)
    await helpline.settled()
    assert helpline.asterisk.bridges[f"{call_id}-talk"] == [caller["id"], leg]
    assert await helpline.states([alice]) == {"alice": "on_call"}

    helpline.hang_up(caller)
    await helpline.settled()
    (record,) = await helpline.roster.call_records()
    assert (record.call_id, record.outcome, record.listener_id) == (call_id, "served", alice.id)
    assert leg in helpline.asterisk.hung_up()
    assert f"{call_id}-talk" not in helpline.asterisk.bridges
    assert await helpline.states([alice]) == {"alice": "resting"}


# ---- 1. events out of order ---------------------------------------------------------------------------


async def test_caller_gone_before_the_admission_ran_leaves_nothing_waiting(helpline: Helpline) -> None:
    """StasisStart, StasisEnd and ChannelDestroyed all queued before the caller's admission ran: the call ends
    abandoned, no listener is rung, and the listener the core chose meanwhile is free again."""
    (alice,) = await helpline.add_listeners("alice")
    await helpline.start()
    caller = helpline.call()
    helpline.hang_up(caller)
    await helpline.settled()

    assert helpline.board.queue.calls() == ()
    assert helpline.asterisk.originated() == []
    assert [r.outcome for r in await helpline.roster.call_records()] == ["abandoned"]
    assert await helpline.states([alice]) == {"alice": "available"}
    assert helpline.board.book.calls() == []


async def test_caller_destroyed_before_their_stasis_start_is_handled(helpline: Helpline) -> None:
    """ChannelDestroyed of a caller handled before their StasisStart: no call is left waiting, nobody is rung."""
    (alice,) = await helpline.add_listeners("alice")
    await helpline.start()
    caller = helpline.caller_channel()  # never in the fake: Asterisk already forgot it
    helpline.events.put(channel_destroyed(caller, CAUSE_NORMAL), stasis_start(caller, caller_args()))
    await helpline.settled()

    assert helpline.board.queue.calls() == ()
    assert helpline.asterisk.originated() == []
    assert await helpline.states([alice]) == {"alice": "available"}


# ---- 2. duplicates --------------------------------------------------------------------------------------


async def test_duplicate_stasis_start_makes_one_call(helpline: Helpline) -> None:
    """The same caller's StasisStart twice: one call, one listener rung."""
    await helpline.add_listeners("alice", "bob")
    await helpline.start()
    caller = helpline.call()
    helpline.events.put(stasis_start(caller, caller_args()))
    await helpline.settled()

    assert len(helpline.board.queue.calls()) == 1
    assert len(helpline.asterisk.originated()) == 1


async def test_double_caller_left_and_replayed_record_write_one_record(helpline: Helpline) -> None:
    """StasisEnd, ChannelDestroyed, a repeated CallerLeft and a replayed RecordCall store one record."""
    await helpline.start()  # nobody on duty: the caller waits
    caller = helpline.call()
    await helpline.settled()
    call_id = helpline.call_id_of(caller)

    helpline.hang_up(caller)
    await helpline.settled()
    helpline.board.feed(CallerLeft(call_id=call_id))
    (decided,) = helpline.decisions.records()
    helpline.board.executor.submit(RecordCall(decided))
    helpline.board.executor.submit(RecordCall(decided))
    await helpline.settled()

    (stored,) = await helpline.roster.call_records()
    assert (stored.call_id, stored.outcome) == (call_id, "abandoned")
    assert len(helpline.decisions.records()) == 1


# ---- 3. the caller leaves while their listener is being rung -------------------------------------------


async def test_caller_leaves_during_origination(helpline: Helpline) -> None:
    """StasisEnd while the listener's originate is in flight: that leg is hung up once it exists, the listener
    is free again (and takes the next caller), one abandoned record."""
    (alice,) = await helpline.add_listeners("alice")
    await helpline.start()
    gate = helpline.asterisk.hold("originate")
    caller = helpline.call()
    leg = (await helpline.asterisk.wait_call("originate")).args[0]

    helpline.hang_up(caller)
    await helpline.events.drained()
    assert helpline.decisions.of(CallerLeft)
    gate.set()
    await helpline.settled()

    assert leg in helpline.asterisk.hung_up()
    assert leg not in helpline.asterisk.channels
    assert await helpline.states([alice]) == {"alice": "available"}
    assert [r.outcome for r in await helpline.roster.call_records()] == ["abandoned"]

    # Asterisk reports the leg we hung up: old news.
    helpline.destroyed(leg, CAUSE_NORMAL)
    next_caller = helpline.call()
    await helpline.settled()
    assert helpline.decisions.of(OfferFailed) == []
    assert helpline.asterisk.originated()[-1].startswith(helpline.call_id_of(next_caller))
    assert len(await helpline.roster.call_records()) == 1


# ---- 4 and 5. late news about a withdrawn offer --------------------------------------------------------


async def test_late_destroyed_for_a_cancelled_leg_is_ignored(helpline: Helpline) -> None:
    """Ring timeout withdraws the first listener's leg and rings the next; the withdrawn leg's late
    ChannelDestroyed reaches the core as nothing (no second OfferFailed), and the next listener still connects."""
    policy = Policy(
        ring_timeout=1.0, rest_after_call=30.0, missed_offer_delay=30.0, declined_offer_delay=30.0
    )
    await helpline.add_listeners("alice", "bob")
    await helpline.start(policy)
    helpline.call()
    first = (await helpline.asterisk.wait_call("originate")).args[0]
    second = (await helpline.asterisk.wait_call("originate", count=2)).args[0]
    assert first in helpline.asterisk.hung_up()
    events_before = len(helpline.decisions.log)

    helpline.destroyed(first, CAUSE_NO_ANSWER)
    await helpline.settled()
    assert len(helpline.decisions.log) == events_before
    helpline.answer(second)
    await helpline.settled()

    assert helpline.decisions.of(OfferFailed) == []
    assert len(helpline.decisions.of(ConnectCall)) == 1
    assert second in next(m for b, m in helpline.asterisk.bridges.items() if b.endswith("-talk"))
    missed = helpline.decisions.offers()[0].listener_id
    assert [e.reason for e in await helpline.roster.listener_events(missed)][-1] == "missed_offer"


async def test_listener_who_missed_an_offer_is_rung_again_for_that_caller(helpline: Helpline) -> None:
    """Ring timeout, short rest, the same call offered to the same (only) listener again: their phone rings
    again (leg 2), and answering it connects the call."""
    policy = Policy(
        ring_timeout=0.5, rest_after_call=30.0, missed_offer_delay=0.05, declined_offer_delay=30.0
    )
    await helpline.add_listeners("alice")
    await helpline.start(policy)
    helpline.call()
    await helpline.decisions.wait_for(lambda: len(helpline.decisions.offers()) == 2, "the second offer")
    await helpline.settled()

    legs = helpline.asterisk.originated()
    assert [leg[-2:] for leg in legs] == ["-1", "-2"]
    helpline.answer(legs[1])
    await helpline.settled()
    assert len(helpline.decisions.of(ConnectCall)) == 1


async def test_answer_after_the_offer_was_withdrawn_is_hung_up(helpline: Helpline) -> None:
    """The listener's phone answers just after the ring timeout withdrew the offer: that leg is hung up, the
    call is not bridged, and the listener rests for the missed offer."""
    policy = Policy(
        ring_timeout=0.2, rest_after_call=30.0, missed_offer_delay=30.0, declined_offer_delay=30.0
    )
    (alice,) = await helpline.add_listeners("alice")
    await helpline.start(policy)
    caller = helpline.call()
    leg = (await helpline.asterisk.wait_call("originate")).args[0]
    await helpline.asterisk.wait_call("hangup", lambda c: c.args[0] == leg)
    hangups = len(helpline.asterisk.hung_up())

    helpline.answer(leg)
    await helpline.settled()

    assert helpline.asterisk.hung_up()[hangups:] == [leg]
    assert helpline.decisions.of(OfferAnswered) == []
    assert helpline.decisions.of(ConnectCall) == []
    assert helpline.asterisk.bridges[HOLDING] == [caller["id"]]
    snapshot = await helpline.roster.get_listener(alice.id)
    assert (snapshot.state.value, snapshot.state_reason) == ("resting", "missed_offer")


async def test_busy_listener_rests_and_the_next_one_is_rung(helpline: Helpline) -> None:
    """A listener's leg destroyed with cause 17 (busy) rests them as declined; the next listener is rung."""
    alice, bob = await helpline.add_listeners("alice", "bob")
    await helpline.start()
    helpline.call()
    first = (await helpline.asterisk.wait_call("originate")).args[0]
    helpline.destroyed(first, CAUSE_BUSY)
    second = (await helpline.asterisk.wait_call("originate", count=2)).args[0]
    await helpline.settled()

    (failed,) = helpline.decisions.of(OfferFailed)
    assert failed.reason == "busy"
    assert first.split("-")[-2] != second.split("-")[-2]
    states = await helpline.states([alice, bob])
    assert sorted(states.values()) == ["resting", "ringing"]


# ---- 6. the caller vanishes while being bridged ----------------------------------------------------------


@pytest.mark.parametrize("failing", ["create_bridge", "add_channel"])
async def test_caller_vanishing_while_bridged_ends_the_call(helpline: Helpline, failing: str) -> None:
    """A 404 from create_bridge/add_channel because the caller hung up at the answer: the call ends served
    (by the listener who answered), their leg is hung up, they rest rather than stay on_call; the caller's
    own late StasisEnd/ChannelDestroyed add nothing."""
    (alice,) = await helpline.add_listeners("alice")
    await helpline.start()
    caller = helpline.call()
    await helpline.settled()
    (leg,) = helpline.asterisk.originated()
    helpline.asterisk.fail(failing, vanishing(helpline.asterisk, caller["id"]))

    helpline.answer(leg)
    await helpline.settled()

    assert helpline.decisions.of(CallerLeft)
    (record,) = await helpline.roster.call_records()
    assert (record.outcome, record.listener_id) == ("served", alice.id)
    assert leg in helpline.asterisk.hung_up()
    snapshot = await helpline.roster.get_listener(alice.id)
    assert (snapshot.state.value, snapshot.state_reason) == ("resting", "after_call")
    assert helpline.board.queue.calls() == ()

    helpline.hang_up(caller)
    await helpline.settled()
    assert len(await helpline.roster.call_records()) == 1
    assert helpline.board.executor.lanes.failures == 0


async def test_listener_vanishing_before_the_bridge_does_not_hang_up_the_caller(helpline: Helpline) -> None:
    """The listener's leg 404s when being bridged: the caller is not hung up and is offered again."""
    await helpline.add_listeners("alice", "bob")
    await helpline.start()
    caller = helpline.call()
    await helpline.settled()
    (leg,) = helpline.asterisk.originated()
    helpline.asterisk.fail("add_channel", vanishing(helpline.asterisk, leg))

    helpline.answer(leg)
    await helpline.settled()

    # The core hears the bridge failed (not that a talking listener left): the caller waits again.
    assert helpline.decisions.of(ConnectFailed)
    assert not helpline.decisions.of(ListenerLeft)
    assert caller["id"] not in helpline.asterisk.hung_up()
    assert len(helpline.asterisk.originated()) == 2


# ---- 7. Asterisk fails to originate ----------------------------------------------------------------------


async def test_originate_server_error_rests_that_listener_and_rings_the_next(helpline: Helpline) -> None:
    """originate raising AriServerError: OfferFailed(unreachable), that listener rests (not stuck ringing in
    the roster), the next listener is rung."""
    listeners = await helpline.add_listeners("alice", "bob")
    await helpline.start(QUIET)
    helpline.asterisk.fail(
        "originate",
        lambda call: AriServerError(
            "POST", f"/channels/{call.args[0]}", status=500, detail="Allocation failed"
        ),
    )
    caller = helpline.call()
    await helpline.settled()

    first, second = helpline.decisions.offers()
    assert first.listener_id != second.listener_id
    (failed,) = helpline.decisions.of(OfferFailed)
    assert (failed.listener_id, failed.reason) == (first.listener_id, "unreachable")
    by_id = {x.id: x for x in listeners}
    resting = await helpline.roster.get_listener(first.listener_id)
    assert (resting.state.value, resting.state_reason) == ("resting", "missed_offer")
    ringing = await helpline.roster.get_listener(second.listener_id)
    assert (ringing.state.value, ringing.state_call_id) == ("ringing", helpline.call_id_of(caller))
    failed_leg, live_leg = helpline.asterisk.originated()
    assert helpline.board.book.leg(failed_leg) is None
    assert live_leg in helpline.asterisk.channels
    assert by_id[second.listener_id].id in live_leg
