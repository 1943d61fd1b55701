"""Reconnects and restarts: the switchboard rebuilds its picture of live calls from what Asterisk reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fake_asterisk import EPOCH, HOLDING, LINE, caller_args, channel_json, stasis_start
from helpline_rig import Helpline

from helpline_pbx.ari.stream import Connected, Disconnected
from helpline_pbx.core import CallerArrived, CallState, OfferCall
from helpline_pbx.lines.repository import Lines

TALKING_CALL = "helpline-a1b2c3d4e5f6"
LOST_CALL = "helpline-0f0e0d0c0b0a"  # the call a listener was ringing for when the service died


async def test_fresh_switchboard_adopts_what_asterisk_holds(helpline: Helpline) -> None:
    """A restarted service finds a talk bridge, two waiting callers and a ringing leg of ours: the bridged call
    goes on (listener on_call), the waiting callers are queued oldest first and the older one is offered to
    the listener freed by the repair, the orphaned ringing leg is hung up, and a channel not ours is left be."""
    alice, bob = await helpline.add_listeners("alice", "bob")
    now = datetime.now(UTC)
    await helpline.roster.claim(alice.id, TALKING_CALL, now)
    await helpline.roster.set_state(alice.id, "on_call", call_id=TALKING_CALL, now=now)
    await helpline.roster.claim(bob.id, LOST_CALL, now)

    asterisk = helpline.asterisk
    talker = channel_json("1740800001.11", "PJSIP/trunk-00000011", state="Up", created=EPOCH)
    alice_leg = channel_json(
        f"{TALKING_CALL}-{alice.id}-1",
        "PJSIP/alice-00000012",
        state="Up",
        context="from-listeners",
        exten="s",
        created=EPOCH + timedelta(seconds=40),
    )
    older = channel_json("1740800003.13", "PJSIP/trunk-00000013", created=EPOCH + timedelta(seconds=10))
    younger = channel_json("1740800004.14", "PJSIP/trunk-00000014", created=EPOCH + timedelta(seconds=20))
    orphan = channel_json(
        f"{LOST_CALL}-{bob.id}-1", "PJSIP/bob-00000015", state="Ringing", context="from-listeners", exten="s"
    )
    stranger = channel_json("1740800006.16", "PJSIP/trunk-00000016", context="other-app")
    for channel in (talker, alice_leg, older, younger, orphan):
        asterisk.enter_stasis(channel)
    asterisk.enter_stasis(stranger)
    asterisk.in_app.discard(stranger["id"])
    asterisk.bridges[f"{TALKING_CALL}-talk"] = [talker["id"], alice_leg["id"]]
    # Bridge order is not arrival order: the younger caller is listed first.
    asterisk.bridges[HOLDING] = [younger["id"], older["id"]]

    board = await helpline.start()

    views = {view.call_id: view for view in board.queue.calls()}
    assert views[TALKING_CALL].state is CallState.CONNECTED
    assert views[TALKING_CALL].listener_id == alice.id
    snapshot = await helpline.roster.get_listener(alice.id)
    assert (snapshot.state.value, snapshot.state_call_id) == ("on_call", TALKING_CALL)

    waiting = [board.book.call(call_id) for call_id in board.queue.waiting()]
    assert [call.caller_channel for call in waiting if call] == [older["id"], younger["id"]]
    (offer,) = helpline.decisions.offers()
    assert (offer.call_id, offer.listener_id) == (helpline.call_id_of(older), bob.id)
    assert helpline.asterisk.originated() == [f"{offer.call_id}-{bob.id}-1"]
    assert (await helpline.roster.get_listener(bob.id)).state_call_id == offer.call_id

    assert orphan["id"] in asterisk.hung_up()
    touched = {call.args[0] for call in asterisk.calls if call.args}
    assert stranger["id"] not in touched
    assert talker["id"] not in asterisk.hung_up()
    assert asterisk.named("create_bridge") == []  # the holding bridge was still there

    # The resumed call is fully ours: its end is recorded as served by alice.
    helpline.hang_up(talker)
    await helpline.settled()
    (record,) = await helpline.roster.call_records()
    assert (record.call_id, record.outcome, record.listener_id) == (TALKING_CALL, "served", alice.id)
    assert alice_leg["id"] in asterisk.hung_up()


async def test_asterisk_restart_ends_every_known_call(helpline: Helpline) -> None:
    """Asterisk restarted while the socket was down (no channels, no bridges on Connected(2)): the talking,
    ringing and waiting calls are ended and recorded, no listener stays ringing or on_call, and the phones and
    holding bridge are set up again."""
    alice, bob = await helpline.add_listeners("alice", "bob")
    await helpline.start()
    talking = helpline.call()
    await helpline.settled()
    helpline.answer(helpline.asterisk.originated()[0])
    await helpline.settled()
    ringing = helpline.call()
    waiting = helpline.call()
    await helpline.settled()
    ids = {name: helpline.call_id_of(c) for name, c in (("t", talking), ("r", ringing), ("w", waiting))}
    assert {v.call_id: v.state for v in helpline.board.queue.calls()} == {
        ids["t"]: CallState.CONNECTED,
        ids["r"]: CallState.RINGING,
        ids["w"]: CallState.WAITING,
    }
    pushes = len(helpline.asterisk.named("put_config_object"))

    helpline.asterisk.restart()
    await helpline.reconnect()

    outcomes = {r.call_id: r.outcome for r in await helpline.roster.call_records()}
    assert outcomes == {ids["t"]: "served", ids["r"]: "abandoned", ids["w"]: "abandoned"}
    assert helpline.board.queue.calls() == ()
    assert helpline.board.book.calls() == []
    states = await helpline.states([alice, bob])
    assert not {"ringing", "on_call"} & set(states.values()), states
    assert len(helpline.asterisk.named("put_config_object")) == 2 * pushes
    assert HOLDING in helpline.asterisk.bridges
    assert len(helpline.asterisk.originated()) == 2  # nobody was rung for a caller Asterisk no longer has


async def test_caller_arriving_during_a_reconnect_is_one_call(helpline: Helpline) -> None:
    """A StasisStart queued behind Connected(2) for a channel the resync already adopted: still one call."""
    await helpline.add_listeners("alice", "bob")
    await helpline.start()
    caller = helpline.caller_channel()
    helpline.asterisk.enter_stasis(caller)
    helpline.events.put(Disconnected(1, "connection_lost"), Connected(2), stasis_start(caller, caller_args()))
    await helpline.settled()

    assert len(helpline.board.queue.calls()) == 1
    assert len(helpline.decisions.of(OfferCall)) == 1


async def test_a_readopted_caller_keeps_their_line_and_menu_choice(helpline: Helpline) -> None:
    """After a restart, a waiting caller of a line that needs a skill, who chose "legal" in the menu, is
    queued with the line's name and needs: the untrained listener is never offered the call."""
    lines = Lines(helpline.roster.engine)
    await lines.add(
        "adultes",
        label="Écoute Adultes",
        numbers=[LINE],
        skills=["violences"],
        support=["ecoute", "juridique"],
    )
    untrained = await helpline.roster.add_listener("Untrained", "untrained", "volunteer")
    lawyer = await helpline.roster.add_listener(
        "Lawyer", "lawyer", "volunteer", skills=["violences", "juridique"]
    )
    now = datetime.now(UTC)
    for listener in (untrained, lawyer):
        await helpline.roster.set_presence(listener.id, "on", now=now)
    waiting = channel_json("1740800021.21", "PJSIP/trunk-00000021", created=EPOCH)
    helpline.asterisk.enter_stasis(waiting)
    helpline.asterisk.bridges[HOLDING] = [waiting["id"]]
    helpline.asterisk.variables[(waiting["id"], "HELPLINE_CHOICE")] = "2"

    board = await helpline.start()

    [call_id] = board.queue.waiting()
    [arrived] = [e for e in helpline.decisions.events() if isinstance(e, CallerArrived)]
    assert arrived.line == "adultes"
    assert arrived.requirements.skills == {"violences"}
    assert arrived.requirements.wanted == {"juridique"}
    assert {o.listener_id for o in helpline.decisions.offers()} == {lawyer.id}
    call = board.book.call(call_id)
    assert call is not None
    assert call.label.startswith("Écoute Adultes")
