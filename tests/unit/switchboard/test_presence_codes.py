"""Presence codes against a real SQLite roster and the real core: what each code writes, tells the core, and
says back to the phone."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fake_asterisk import channel_json
from helpline_rig import new_roster

from helpline_pbx.ari.models import Channel
from helpline_pbx.core import (
    CallerArrived,
    CallerLeft,
    CallQueue,
    Command,
    Event,
    ListenerState,
    OfferAnswered,
    OfferCall,
    Policy,
    SetListenerState,
)
from helpline_pbx.core.commands import RequestDebrief
from helpline_pbx.protocol import NOTICE
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import Presence
from helpline_pbx.switchboard.features import Handler
from helpline_pbx.switchboard.presence.codes import PresenceCodes

POLICY = Policy(ring_timeout=30.0, rest_after_call=30.0, max_missed_offers=0, shift_limits={})
T0 = 1_800_000_000.0


@dataclass
class FakeAri:
    variables: dict[tuple[str, str], str] = field(default_factory=dict)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self.variables[(channel_id, name)] = value


@dataclass
class Rig:
    roster: Roster
    debriefs: Debriefs
    queue: CallQueue
    ari: FakeAri
    handlers: dict[str, Handler]
    commands: list[Command] = field(default_factory=list)
    clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    channels: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def feed(self, event: Event) -> None:
        self.commands.extend(self.queue.handle(event, T0 + next(self.clock)))

    async def dial(self, who: ListenerSnapshot | str, feature: str, argument: str = "") -> tuple[str, str]:
        """(result, channel id) of a feature code dialled from that listener's phone (or endpoint)."""
        endpoint = who if isinstance(who, str) else who.endpoint
        channel_id = f"phone-{next(self.channels)}"
        channel = Channel.model_validate(
            channel_json(channel_id, f"PJSIP/{endpoint}-0000002a", context="from-listeners", exten="*1")
        )
        result = await self.handlers[feature](channel, argument)
        assert isinstance(result, str)
        return result, channel_id

    def serve_call(self, listener_id: str, call_id: str = "c-1") -> None:
        """A caller arrives, is offered to the listener, answered, and hangs up: the listener rests."""
        self.feed(CallerArrived(call_id, "line"))
        assert any(isinstance(c, OfferCall) and c.listener_id == listener_id for c in self.commands)
        self.feed(OfferAnswered(call_id, listener_id))
        self.feed(CallerLeft(call_id))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    roster, _ = await new_roster(tmp_path / "roster.db")
    queue = CallQueue(POLICY)
    ari = FakeAri()
    debriefs = Debriefs(roster.engine)
    holder: list[Rig] = []
    codes = PresenceCodes(
        ari,  # type: ignore[arg-type]
        roster,
        debriefs,
        lambda event: holder[0].feed(event),
        queue,
        clock=lambda: datetime.now(UTC),
    )
    holder.append(Rig(roster, debriefs, queue, ari, codes.handlers()))
    yield holder[0]
    await roster.engine.dispose()


async def test_log_in_and_out_from_the_phone(rig: Rig) -> None:
    """*11 puts the listener on duty in the roster and available in the core; *12 takes both off."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    assert await rig.dial(camille, "login") == ("logged-in", "phone-1")
    assert (await rig.roster.get_listener("camille")).presence is Presence.ON
    assert rig.queue.listener_state(camille.id) is ListenerState.AVAILABLE

    assert (await rig.dial(camille, "logout"))[0] == "logged-out"
    assert (await rig.roster.get_listener("camille")).presence is Presence.OFF
    assert rig.queue.listener_state(camille.id) is ListenerState.OFFLINE


async def test_pause_with_a_reason_and_resume(rig: Rig) -> None:
    """*13 2 pauses for training (a word in the roster); a wrong digit changes nothing; *14 resumes."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    await rig.dial(camille, "login")
    assert (await rig.dial(camille, "pause", "7"))[0] == "bad-reason"
    assert rig.queue.listener_state(camille.id) is ListenerState.AVAILABLE

    assert (await rig.dial(camille, "pause", "2"))[0] == "paused"
    paused = await rig.roster.get_listener("camille")
    assert (paused.presence, paused.presence_reason) == (Presence.PAUSED, "training")
    assert rig.queue.listener_state(camille.id) is ListenerState.PAUSED
    rig.feed(CallerArrived("c-while-paused", "line"))
    assert not any(isinstance(c, OfferCall) for c in rig.commands)

    assert (await rig.dial(camille, "resume"))[0] == "resumed"
    assert rig.queue.listener_state(camille.id) is ListenerState.RINGING
    assert (await rig.roster.get_listener("camille")).presence is Presence.ON


async def test_resume_when_off_duty_is_a_log_in(rig: Rig) -> None:
    """*14 from a listener who never logged in puts them on duty, and says "logged in"."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    assert (await rig.dial(camille, "resume"))[0] == "logged-in"
    assert rig.queue.listener_state(camille.id) is ListenerState.AVAILABLE


async def test_a_listener_paused_by_the_line_hears_why_first(rig: Rig) -> None:
    """A listener paused for missed offers gets the notice with their next code; a self-paused one does not."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    await rig.roster.set_presence(camille.id, Presence.PAUSED, reason="missed_offers", now=datetime.now(UTC))
    result, channel = await rig.dial(camille, "resume")
    assert result == "resumed"
    assert rig.ari.variables[(channel, NOTICE)] == "paused-missed-offers"

    await rig.roster.set_presence(camille.id, Presence.PAUSED, reason="shift_limit", now=datetime.now(UTC))
    _, channel = await rig.dial(camille, "logout")
    assert rig.ari.variables[(channel, NOTICE)] == "paused-shift-limit"

    await rig.dial(camille, "login")
    await rig.dial(camille, "pause", "1")
    _, channel = await rig.dial(camille, "resume")
    assert (channel, NOTICE) not in rig.ari.variables


async def test_more_rest_moves_the_end_of_the_rest(rig: Rig) -> None:
    """*15 while resting after a call sets a later end; while off duty it says there is no rest."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    assert (await rig.dial(camille, "rest"))[0] == "no-rest"
    await rig.dial(camille, "login")
    rig.serve_call(camille.id)
    assert rig.queue.listener_state(camille.id) is ListenerState.RESTING
    ends = [c.until for c in rig.commands if isinstance(c, SetListenerState) and c.until is not None]

    assert (await rig.dial(camille, "rest"))[0] == "rest-extended"
    later = [c.until for c in rig.commands if isinstance(c, SetListenerState) and c.until is not None]
    assert later[-1] is not None
    assert ends[-1] is not None
    assert later[-1] > ends[-1]


async def test_a_difficult_call_brings_a_debrief_request(rig: Rig) -> None:
    """*16 right after a call moves the listener to awaiting debrief and asks the core for a debrief."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    assert (await rig.dial(camille, "difficult"))[0] == "no-call"
    await rig.dial(camille, "login")
    rig.serve_call(camille.id, "c-hard")
    # Nobody on duty to ring: the request is listed, and the phone says no supervisor is on duty now.
    assert (await rig.dial(camille, "difficult"))[0] == "difficult-noted-no-supervisor"
    assert rig.queue.listener_state(camille.id) is ListenerState.AWAITING_DEBRIEF
    assert RequestDebrief(camille.id, "c-hard") in rig.commands


async def test_a_difficult_call_says_a_supervisor_is_told_only_when_one_is_on_duty(rig: Rig) -> None:
    """*16 says a supervisor is told only when one is on duty (logged in, here paused); one logged out does
    not count."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    dom = await rig.roster.add_listener("Dom", "dom", "volunteer")
    await rig.roster.add_listener("Off", "off", "supervisor")
    await rig.dial(camille, "login")
    rig.serve_call(camille.id, "c-hard")
    assert (await rig.dial(camille, "difficult"))[0] == "difficult-noted-no-supervisor"
    sup = await rig.roster.add_listener("Sup", "sup", "supervisor")
    await rig.dial(sup, "login")
    await rig.dial(sup, "pause")
    await rig.dial(dom, "login")
    rig.serve_call(dom.id, "c-hard-2")
    assert (await rig.dial(dom, "difficult"))[0] == "difficult-noted"


async def test_resume_during_a_rest_says_the_rest_goes_on(rig: Rig) -> None:
    """*14 while resting after a call: on duty, but no call until the rest ends, and the phone says so;
    once available, *14 says calls may be offered again."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    await rig.dial(camille, "login")
    rig.serve_call(camille.id, "c-1")
    assert rig.queue.listener_state(camille.id) is ListenerState.RESTING
    assert (await rig.dial(camille, "resume"))[0] == "resumed-resting"
    assert rig.queue.listener_state(camille.id) is ListenerState.RESTING
    await rig.dial(camille, "difficult")
    assert (await rig.dial(camille, "resume"))[0] == "resumed-resting"
    assert rig.queue.listener_state(camille.id) is ListenerState.AWAITING_DEBRIEF


async def test_a_handled_debrief_ends_awaiting_debrief_but_not_the_rest(rig: Rig) -> None:
    """*41 + code: the listener no longer awaits a debrief; they rest to the same end, then calls come."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    sup = await rig.roster.add_listener("Sup", "sup", "supervisor")
    assert camille.code is not None
    await rig.dial(camille, "login")
    rig.serve_call(camille.id, "c-hard")
    await rig.dial(camille, "difficult")
    [until] = [
        c.until for c in rig.commands if isinstance(c, SetListenerState) and c.reason == "difficult_call"
    ]
    await rig.debriefs.request(camille.id, "c-hard", datetime.now(UTC))  # what the executor lists
    assert (await rig.dial(sup, "debriefed", camille.code))[0] == "debrief-handled"
    assert rig.queue.listener_state(camille.id) is ListenerState.RESTING
    assert SetListenerState(camille.id, ListenerState.RESTING, None, until, "debrief_handled") in rig.commands


async def test_a_supervisor_closes_a_debrief_by_the_listeners_code(rig: Rig) -> None:
    """*41 + code closes that listener's requests, for supervisors only; unknown codes and none open are said."""
    camille = await rig.roster.add_listener("Camille", "camille", "volunteer")
    sup = await rig.roster.add_listener("Sup", "sup", "supervisor")
    assert camille.code is not None
    await rig.debriefs.request(camille.id, "c-hard", datetime.now(UTC))

    assert (await rig.dial(camille, "debriefed", camille.code))[0] == "refused"
    assert (await rig.dial(sup, "debriefed", "999999"))[0] == "unknown-listener"
    assert (await rig.dial(sup, "debriefed", ""))[0] == "unknown-listener"
    assert len(await rig.debriefs.open()) == 1
    assert (await rig.dial(sup, "debriefed", camille.code))[0] == "debrief-handled"
    assert await rig.debriefs.open() == []
    assert (await rig.dial(sup, "debriefed", camille.code))[0] == "no-debrief"


async def test_only_a_known_active_endpoint_counts(rig: Rig) -> None:
    """A phone whose endpoint names no listener, or names one only by pseudonym, or an inactive one, is
    refused and changes nothing."""
    camille = await rig.roster.add_listener("Camille", "camille-phone", "volunteer")
    assert (await rig.dial("nobody", "login"))[0] == "refused"
    # "Camille" is a pseudonym, not the endpoint: get_listener would match it, the handler must not.
    assert (await rig.dial("Camille", "login"))[0] == "refused"
    await rig.roster.edit_listener(camille.id, active=False)
    assert (await rig.dial(camille, "login"))[0] == "refused"
    assert (await rig.roster.get_listener(camille.id)).presence is Presence.OFF
    assert rig.queue.listener_state(camille.id) is None
