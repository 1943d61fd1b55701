"""Lines on the real Asterisk: a number reaches its line, a closed line and an unknown number get a message
with alternatives, and a line's required skills choose who is offered its calls."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select
from tests.e2e.conftest import ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.keys import keying_caller

from helpline_pbx.ari.client import AriClient
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.tables import TurnedAway


async def _reaches_context(ari: AriClient, context: str, timeout: float = 10.0) -> bool:
    """Whether a trunk channel reaches that dialplan context (out of Stasis, no app hears of it: polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.dialplan is not None and c.dialplan.context == context for c in await ari.list_channels()):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_closed_line_plays_its_message_and_never_queues_the_caller(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Outside its opening hours, a line's callers hear it is closed and where else to turn."""
    lines = Lines(roster.engine)
    await lines.add("nuit", label="Écoute Nuit", numbers=[sipp.line], hours="mon-sun closed")
    svc = await service()
    caller = sipp.caller("caller")
    assert await _reaches_context(svc.ari, "helpline-closed")
    assert not [e for e in svc.decisions.events() if type(e).__name__ == "CallerArrived"]
    await caller.stop_async()
    # Counted for the statistics (the line and when, nothing of the caller), written behind the call.
    await svc.board.executor.wait_idle()
    async with roster.engine.connect() as connection:
        rows = (await connection.execute(select(TurnedAway.line, TurnedAway.reason))).all()
    assert [tuple(r) for r in rows] == [("nuit", "closed")]


async def test_a_number_of_no_line_gets_a_message(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Once lines are set up, a number that belongs to none is told so, not left in silence."""
    lines = Lines(roster.engine)
    await lines.add("autre", label="Écoute", numbers=["0800000001"])
    svc = await service()
    caller = sipp.caller("caller")
    assert await _reaches_context(svc.ari, "helpline-unknown")
    await caller.stop_async()


async def test_a_line_offers_its_calls_only_to_listeners_with_its_skills(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A youth line requiring a skill: the untrained listener, though idle longer, is never offered the call;
    the record names the line, and the phone shows the line's label."""
    lines = Lines(roster.engine)
    await lines.add("jeunes", label="Écoute Jeunes", numbers=[sipp.line], skills=["harcelement"])
    untrained = await add_listener(roster, "Untrained")
    trained = await add_listener(roster, "Trained", skills=("harcelement",))
    svc = await service()
    await online_phone(svc, sipp, untrained)
    phone = await online_phone(svc, sipp, trained, "listener_answer_hangup", pause_ms=500)
    caller = sipp.caller("caller")

    [record] = await svc.decisions.wait_records(1, timeout=20)
    assert record.outcome == "served"
    assert record.listener_id == trained.id
    assert record.line == "jeunes"
    assert {o.listener_id for o in svc.decisions.offers()} == {trained.id}
    invite = next(m for m in phone.messages() if m.startswith("INVITE "))
    assert "Écoute Jeunes" in invite
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_the_menu_sends_a_legal_question_to_a_listener_trained_for_it(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Pressing 3 (legal) on a line offering three kinds of support: the call needs the "juridique" skill."""
    lines = Lines(roster.engine)
    await lines.add("adultes", label="Écoute", numbers=[sipp.line], support=["ecoute", "social", "juridique"])
    anyone = await add_listener(roster, "Anyone")
    lawyer = await add_listener(roster, "Lawyer", role="professional", skills=("juridique",))
    svc = await service()
    await online_phone(svc, sipp, anyone)
    await online_phone(svc, sipp, lawyer, "listener_answer_hangup", pause_ms=500)
    caller = keying_caller(sipp, "3")

    [record] = await svc.decisions.wait_records(1, timeout=40)
    assert record.listener_id == lawyer.id
    [arrived] = [e for e in svc.decisions.events() if type(e).__name__ == "CallerArrived"]
    assert "juridique" in arrived.requirements.wanted  # type: ignore[attr-defined]
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_urgent_goes_to_a_professional_first(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Pressing 9: a professional is offered the call although a volunteer has been idle longer."""
    lines = Lines(roster.engine)
    await lines.add("adultes", label="Écoute", numbers=[sipp.line], support=["ecoute", "social"])
    volunteer = await add_listener(roster, "Volunteer")
    pro = await add_listener(roster, "Pro", role="professional")
    svc = await service()
    await online_phone(svc, sipp, volunteer)
    await online_phone(svc, sipp, pro, "listener_answer_hangup", pause_ms=500)
    caller = keying_caller(sipp, "9")

    [record] = await svc.decisions.wait_records(1, timeout=40)
    assert record.listener_id == pro.id
    assert [o.listener_id for o in svc.decisions.offers()] == [pro.id]
    assert (await caller.wait_async(20)).exit_code == 0, caller.errors()


async def test_a_line_can_show_listeners_a_returning_caller(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """On a line with the repeat hint on, the listener's display shows a caller's second call this period."""
    lines = Lines(roster.engine)
    await lines.add("suivi", label="Écoute Suivi", numbers=[sipp.line], repeat_hint=True)
    camille = await add_listener(roster, "Camille")
    svc = await service()
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    for n in range(2):
        caller = sipp.caller("caller", number="0639985801")
        await svc.decisions.wait_records(n + 1)
        assert (await caller.wait_async(15)).exit_code == 0, caller.errors()
    invites = [m for m in phone.messages() if m.startswith("INVITE ")]
    assert "e appel" not in invites[0]
    assert "Écoute Suivi" in invites[1]
    assert "2e appel" in invites[1]


async def test_an_english_line_speaks_english(roster: Roster, service: ServiceFactory, sipp: Sipp) -> None:
    """A line whose language is English: its caller's channel speaks English (prompts from sounds/en), and
    only English-speaking listeners are offered the call."""
    lines = Lines(roster.engine)
    await lines.add("english", label="Listening", numbers=[sipp.line], language="en")
    speaker = await add_listener(roster, "Speaker")
    await roster.edit_listener(speaker.id, languages=["fr", "en"])
    svc = await service()
    await online_phone(svc, sipp, speaker, "listener_answer_hangup", pause_ms=1500)
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(lambda: bool(svc.decisions.offers()), 20, "an offer")
    call = svc.board.book.call(svc.decisions.offers()[0].call_id)
    assert call is not None
    assert await svc.ari.get_variable(call.caller_channel, "CHANNEL(language)") == "en"
    [record] = await svc.decisions.wait_records(1, timeout=20)
    assert record.listener_id == speaker.id
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()
