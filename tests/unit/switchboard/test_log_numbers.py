"""The logs learn the line's own numbers from the switchboard, and keep them; callers' numbers still go."""

from __future__ import annotations

import structlog
from fake_asterisk import LINE, caller_args, stasis_start
from helpline_rig import Helpline

from helpline_pbx.core import ListenerState, Policy
from helpline_pbx.lines.repository import Lines
from helpline_pbx.logs import REDACTED, Redactor


async def test_the_logs_keep_the_number_dialled_without_lines_then_the_lines_numbers(
    helpline: Helpline,
) -> None:
    """Without lines, the number a caller dialled (the line's) is logged as it is; once lines exist, theirs
    are, and any other number is redacted again."""
    redactor = Redactor()
    board = await helpline.start()
    board.line_cache.numbers_changed = redactor.keep_numbers
    assert redactor.text(f"line {LINE}") == f"line {REDACTED}"

    caller = helpline.caller_channel()
    helpline.asterisk.enter_stasis(caller)
    helpline.events.put(stasis_start(caller, caller_args()))
    await helpline.settled()
    assert redactor.text(f"line {LINE}") == f"line {LINE}"

    await Lines(helpline.roster.engine).add("jeunes", label="Écoute Jeunes", numbers=["0800111111"])
    await board.line_cache.sync(force=True)
    assert redactor.text("line 0800111111") == "line 0800111111"
    assert redactor.text(f"line {LINE}") == f"line {REDACTED}"


async def test_offers_missed_offers_and_the_lines_pause_are_logged_by_ids(helpline: Helpline) -> None:
    """A listener rung twice who never answers: each offer, its withdrawal at the ring timeout, the first
    miss (a short rest) and the pause after the second are logged, with the call's and listener's ids."""
    policy = Policy(
        ring_timeout=0.3,
        rest_after_call=30.0,
        missed_offer_delay=0.05,
        declined_offer_delay=30.0,
        max_missed_offers=2,
        shift_limits={},
    )
    [alice] = await helpline.add_listeners("alice")
    await helpline.start(policy)
    with structlog.testing.capture_logs() as logs:
        caller = helpline.call()
        await helpline.asterisk.wait_call("originate", count=2)
        await helpline.decisions.wait_for(
            lambda: helpline.board.queue.listener_state(alice.id) is ListenerState.PAUSED, "alice paused"
        )
        await helpline.settled()
    call_id = helpline.call_id_of(caller)
    seen = [(e["event"], e.get("call_id"), e["listener_id"]) for e in logs if "listener_id" in e]
    assert seen.count(("call_offered", call_id, alice.id)) == 2
    assert seen.count(("offer_withdrawn", call_id, alice.id)) == 2
    assert ("offer_missed", call_id, alice.id) in seen
    [paused] = [e for e in logs if e["event"] == "listener_paused_by_line"]
    assert (paused["listener_id"], paused["reason"]) == (alice.id, "missed_offers")
