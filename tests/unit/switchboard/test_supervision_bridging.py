"""Supervision against a fake Asterisk: the steps of listening, coaching and joining, their undoing, and
above all that nothing a supervision does or fails to do ever touches the caller's channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_asterisk import (
    CAUSE_NORMAL,
    FakeAsterisk,
    channel_destroyed,
    channel_json,
    stasis_end,
    stasis_start,
)
from helpline_rig import Helpline, new_roster

import helpline_pbx.switchboard.supervision.sessions as supervision_module
from helpline_pbx.ari.errors import AriServerError
from helpline_pbx.ari.models import Channel, Playback
from helpline_pbx.ari.stream import Connected
from helpline_pbx.core import CallState, ListenerState
from helpline_pbx.roster.errors import DatabaseUnavailable
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import SupervisionMode
from helpline_pbx.roster.supervisions import Supervisions
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.supervision.sessions import NO_CALL, REFUSED, Supervision
from helpline_pbx.switchboard.workers import Lanes

APP = "helpline"
CALL_ID = "helpline-a1b2c3d4e5f6"
TALK = f"{CALL_ID}-talk"
CALLER = "1740800001.11"


class SnoopingAsterisk(FakeAsterisk):
    """The fake Asterisk, with what supervision needs besides: snoop channels, answer and playbacks."""

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        app: str,
        spy: str = "none",
        whisper: str = "none",
        app_args: str | Sequence[str] = (),
    ) -> Channel:
        await self._enter("snoop", channel_id, snoop_id, spy=spy, whisper=whisper, app_args=app_args)
        self._channel("POST", channel_id)
        data = channel_json(
            snoop_id, f"Snoop/{channel_id}-00000001", state="Up", context="default", exten="s"
        )
        self.enter_stasis(data)
        return Channel.model_validate(data)

    async def answer(self, channel_id: str) -> None:
        await self._enter("answer", channel_id)
        self._channel("POST", channel_id)

    async def play(self, channel_id: str, media: str | Sequence[str], playback_id: str) -> Playback:
        await self._enter("play", channel_id, media, playback_id)
        self._channel("POST", channel_id)
        return Playback(
            id=playback_id, media_uri=str(media), target_uri=f"channel:{channel_id}", state="queued"
        )

    async def play_on_bridge(self, bridge_id: str, media: str | Sequence[str], playback_id: str) -> Playback:
        await self._enter("play_on_bridge", bridge_id, media, playback_id)
        self._bridge("POST", bridge_id)
        return Playback(
            id=playback_id, media_uri=str(media), target_uri=f"bridge:{bridge_id}", state="queued"
        )

    def touching(self, channel_id: str) -> list[str]:
        """Every request that named this channel, except reads."""
        return [
            call.method
            for call in self.calls
            if call.method not in ("get_channel", "list_channels")
            and (channel_id in call.args or any(channel_id in a for a in call.args if isinstance(a, tuple)))
        ]


@dataclass
class View:
    listener_id: str
    state: ListenerState
    call_id: str | None


class Queue:
    """The part of the core's queue supervision reads: who is on which call."""

    def __init__(self) -> None:
        self.views: list[View] = []

    def listeners(self) -> tuple[View, ...]:
        return tuple(self.views)


@dataclass
class Rig:
    asterisk: SnoopingAsterisk
    roster: Roster
    audit: Supervisions
    book: LegBook
    queue: Queue
    lanes: Lanes
    supervision: Supervision
    listener: ListenerSnapshot
    supervisor: ListenerSnapshot
    listener_channel: str = ""

    def phone(
        self, person: ListenerSnapshot, channel_id: str = "1740800009.90", mode: str = "listen"
    ) -> dict[str, Any]:
        data = channel_json(
            channel_id,
            f"PJSIP/{person.endpoint}-0000005a",
            state="Up",
            context="feature-code",
            exten="s",
        )
        data["dialplan"]["app_data"] = f"{APP},feature,{mode},{self.listener.code}"
        self.asterisk.enter_stasis(data)
        return data

    async def run(self, mode: SupervisionMode, phone: dict[str, Any], code: str | None = None) -> str | None:
        """The feature code as Features runs it (on the phone's lane); returns its result."""
        result: list[str | None] = []

        async def job() -> None:
            result.append(
                await self.supervision.start(
                    mode, Channel.model_validate(phone), code or self.listener.code or ""
                )
            )

        self.lanes.submit(f"channel:{phone['id']}", job)
        await asyncio.wait_for(self.lanes.wait_idle(), 5)
        return result[0]

    def start_run(self, mode: SupervisionMode, phone: dict[str, Any]) -> None:
        async def job() -> None:
            await self.supervision.start(mode, Channel.model_validate(phone), self.listener.code or "")

        self.lanes.submit(f"channel:{phone['id']}", job)

    async def settled(self) -> None:
        await asyncio.wait_for(self.lanes.wait_idle(), 5)

    async def snoop_started(self) -> None:
        """Asterisk puts the snoop channel in Stasis with the supervision's arguments."""
        call = await self.asterisk.wait_call("snoop")
        snoop_id = call.args[1]
        self.supervision.on_event(stasis_start(self.asterisk.seen[snoop_id], list(call.kwargs["app_args"])))

    def ended(self, channel_id: str) -> None:
        """A channel hung up: Asterisk reports StasisEnd then ChannelDestroyed."""
        data = self.asterisk.seen[channel_id]
        self.asterisk.vanish(channel_id)
        self.supervision.on_event(stasis_end(data))
        self.supervision.on_event(channel_destroyed(data, CAUSE_NORMAL))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    roster, _ = await new_roster(tmp_path / "roster.db")
    asterisk = SnoopingAsterisk()
    book = LegBook(call_id_prefix=f"{APP}-")
    queue = Queue()
    lanes = Lanes()
    audit = Supervisions(roster.engine)
    listener = await roster.add_listener("Camille", "camille", "volunteer", monitoring_consent=True)
    supervisor = await roster.add_listener("Sup", "sup", "supervisor")
    supervision = Supervision(
        ari=asterisk,  # type: ignore[arg-type]
        roster=roster,
        supervisions=audit,
        queue=queue,  # type: ignore[arg-type]
        book=book,
        lanes=lanes,
        app=APP,
    )
    rig = Rig(asterisk, roster, audit, book, queue, lanes, supervision, listener, supervisor)
    try:
        yield rig
    finally:
        await lanes.close()
        await roster.engine.dispose()


def on_call(rig: Rig) -> None:
    """The listener talks with a caller in the call's talk bridge."""
    rig.asterisk.enter_stasis(channel_json(CALLER, "PJSIP/trunk-00000011", state="Up"))
    call = rig.book.open_call(CALLER, "0800123456", "Écoute", call_id=CALL_ID)
    leg = f"{CALL_ID}-{rig.listener.id}-1"
    rig.asterisk.enter_stasis(
        channel_json(leg, "PJSIP/camille-00000012", state="Up", context="from-listeners", exten="s")
    )
    rig.book.add_listener_leg(call, rig.listener.id, leg, answered=True)
    rig.asterisk.bridges[TALK] = [CALLER, leg]
    rig.queue.views = [View(rig.listener.id, ListenerState.ON_CALL, CALL_ID)]
    rig.listener_channel = leg


def caller_untouched(rig: Rig) -> None:
    assert rig.asterisk.touching(CALLER) == []
    assert CALLER in rig.asterisk.bridges[TALK]


@pytest.mark.parametrize(
    ("mode", "whisper"), [(SupervisionMode.LISTEN, "none"), (SupervisionMode.COACH, "out")]
)
async def test_listening_and_coaching_bridge_a_snoop_with_the_supervisor_until_they_hang_up(
    rig: Rig, mode: SupervisionMode, whisper: str
) -> None:
    """The snoop hears both sides and whispers only as the mode says; the record is written before any audio
    flows; the supervisor's hang-up undoes it all and closes the record; the caller is never touched."""
    on_call(rig)
    phone = rig.phone(rig.supervisor)
    rig.start_run(mode, phone)
    await rig.snoop_started()
    await rig.settled()

    [snoop] = rig.asterisk.named("snoop")
    assert snoop.args[0] == rig.listener_channel
    assert (snoop.kwargs["spy"], snoop.kwargs["whisper"]) == ("both", whisper)
    [bridge] = [b for b in rig.asterisk.bridges if b.startswith(rig.supervision.bridge_prefix)]
    assert set(rig.asterisk.bridges[bridge]) == {phone["id"], snoop.args[1]}
    [row] = await rig.audit.list()
    assert (row.supervisor_id, row.listener_id, row.call_id, row.mode, row.ended_at) == (
        rig.supervisor.id,
        rig.listener.id,
        CALL_ID,
        mode,
        None,
    )
    # The record came first: it exists before the first request to Asterisk.
    assert rig.asterisk.calls[0].method == "create_bridge"

    rig.ended(phone["id"])
    await rig.settled()
    assert snoop.args[1] in rig.asterisk.hung_up()
    assert bridge not in rig.asterisk.bridges
    [row] = await rig.audit.list()
    assert row.ended_at is not None
    assert rig.supervision.active == 0
    caller_untouched(rig)
    assert set(rig.asterisk.bridges[TALK]) == {CALLER, rig.listener_channel}


async def test_joining_adds_the_supervisor_to_the_call_and_the_call_s_end_hangs_them_up(rig: Rig) -> None:
    """*33: the supervisor enters the talk bridge (with a tone to everyone when set); when the listener's leg
    ends, the supervisor's phone is hung up and the record closed."""
    on_call(rig)
    rig.supervision.tone = True
    phone = rig.phone(rig.supervisor)
    assert await rig.run(SupervisionMode.JOIN, phone) is None

    assert set(rig.asterisk.bridges[TALK]) == {CALLER, rig.listener_channel, phone["id"]}
    [tone] = rig.asterisk.named("play_on_bridge")
    assert tone.args[:2] == (TALK, "sound:beep")
    assert rig.asterisk.named("snoop") == []

    rig.ended(rig.listener_channel)
    await rig.settled()
    assert phone["id"] in rig.asterisk.hung_up()
    [row] = await rig.audit.list()
    assert row.mode is SupervisionMode.JOIN
    assert row.ended_at is not None


async def test_the_tone_for_listening_goes_to_the_listener_only(rig: Rig) -> None:
    """With the tone on, a listener being listened to hears a beep on their own channel, the caller nothing."""
    on_call(rig)
    rig.supervision.tone = True
    rig.start_run(SupervisionMode.LISTEN, rig.phone(rig.supervisor))
    await rig.snoop_started()
    await rig.settled()
    [tone] = rig.asterisk.named("play")
    assert tone.args[:2] == (rig.listener_channel, "sound:beep")
    caller_untouched(rig)


async def test_refusals_touch_nothing_and_record_nothing(rig: Rig) -> None:
    """A volunteer is refused; a listener without training or consent gets the supervisor a refusal; an
    unknown code or a listener on no call, "no call". No request reaches Asterisk, no row is written."""
    on_call(rig)
    volunteer = await rig.roster.add_listener("Vol", "vol", "volunteer")
    private = await rig.roster.edit_listener(rig.listener.id, monitoring_consent=False)
    assert private.monitoring_consent is False

    assert await rig.run(SupervisionMode.LISTEN, rig.phone(volunteer, "1740800009.91")) == "refused"
    assert await rig.run(SupervisionMode.COACH, rig.phone(rig.supervisor, "1740800009.92")) == REFUSED
    assert (
        await rig.run(SupervisionMode.JOIN, rig.phone(rig.supervisor, "1740800009.93"), "999999") == NO_CALL
    )
    await rig.roster.edit_listener(rig.listener.id, monitoring_consent=True)
    rig.queue.views = []
    assert await rig.run(SupervisionMode.JOIN, rig.phone(rig.supervisor, "1740800009.94")) == NO_CALL

    assert [c.method for c in rig.asterisk.calls if c.method not in ("get_channel",)] == []
    assert await rig.audit.list() == []


async def test_a_failed_snoop_is_undone_and_the_supervisor_hears_it(rig: Rig) -> None:
    """Asterisk refuses the snoop: our bridge goes, the record is closed at once, the phone hears
    "unavailable", and the call goes on untouched."""
    on_call(rig)
    rig.asterisk.fail("snoop", lambda call: AriServerError("POST", "/snoop", status=500))
    phone = rig.phone(rig.supervisor)
    assert await rig.run(SupervisionMode.LISTEN, phone) == "unavailable"

    assert not [b for b in rig.asterisk.bridges if b.startswith(rig.supervision.bridge_prefix)]
    assert phone["id"] not in rig.asterisk.hung_up()
    [row] = await rig.audit.list()
    assert row.ended_at is not None
    caller_untouched(rig)


async def test_a_join_into_a_vanished_talk_bridge_fails_cleanly(rig: Rig) -> None:
    """The call ended between the look-up and the join: the phone hears "unavailable", nothing is left."""
    on_call(rig)
    del rig.asterisk.bridges[TALK]
    assert await rig.run(SupervisionMode.JOIN, rig.phone(rig.supervisor)) == "unavailable"
    [row] = await rig.audit.list()
    assert row.ended_at is not None
    assert rig.supervision.active == 0


async def test_a_snoop_that_never_enters_stasis_is_given_up(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No StasisStart for the snoop within the time allowed: the snoop is hung up, the bridge destroyed."""
    monkeypatch.setattr(supervision_module, "SNOOP_START_TIMEOUT", 0.05)
    on_call(rig)
    assert await rig.run(SupervisionMode.COACH, rig.phone(rig.supervisor)) == "unavailable"
    [snoop] = rig.asterisk.named("snoop")
    assert snoop.args[1] in rig.asterisk.hung_up()
    assert not [b for b in rig.asterisk.bridges if b.startswith(rig.supervision.bridge_prefix)]
    caller_untouched(rig)


async def test_the_call_ending_during_setup_ends_the_supervision(rig: Rig) -> None:
    """The listener's leg ends while the snoop is being set up: the supervisor hears there is no call, and
    everything is undone."""
    on_call(rig)
    phone = rig.phone(rig.supervisor)
    result: list[str | None] = []

    async def job() -> None:
        result.append(
            await rig.supervision.start(
                SupervisionMode.LISTEN, Channel.model_validate(phone), rig.listener.code or ""
            )
        )

    rig.lanes.submit(f"channel:{phone['id']}", job)
    await rig.asterisk.wait_call("snoop")
    rig.ended(rig.listener_channel)
    await rig.settled()
    assert result == [NO_CALL]
    assert rig.supervision.active == 0
    [row] = await rig.audit.list()
    assert row.ended_at is not None


async def test_no_audit_no_supervision(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit cannot be written (database down): the supervision does not happen at all."""
    on_call(rig)

    async def down(*args: object, **kwargs: object) -> int:
        raise DatabaseUnavailable("down")

    monkeypatch.setattr(rig.audit, "start", down)
    with pytest.raises(DatabaseUnavailable):
        await rig.supervision.start(
            SupervisionMode.LISTEN, Channel.model_validate(rig.phone(rig.supervisor)), rig.listener.code or ""
        )
    assert rig.asterisk.calls == []


async def test_after_a_restart_stray_supervisors_go_and_the_calls_stay(rig: Rig) -> None:
    """On (re)connection: a supervisor left in a talk bridge by a previous run is hung up, its leftover bridge
    and snoop too, and its open audit rows are closed; the caller and the listener stay, and so does
    another instance's call."""
    on_call(rig)
    stray = rig.phone(rig.supervisor, "1740800009.95", mode="join")
    rig.asterisk.bridges[TALK].append(stray["id"])
    old_bridge = f"{rig.supervision.bridge_prefix}0a0b0c0d0e0f"
    old_phone = rig.phone(rig.supervisor, "1740800009.96", mode="listen")
    old_snoop = channel_json(
        f"{old_bridge}-snoop", "Snoop/x-00000001", state="Up", context="default", exten="s"
    )
    rig.asterisk.enter_stasis(old_snoop)
    rig.asterisk.bridges[old_bridge] = [old_phone["id"], old_snoop["id"]]
    other_phone = rig.phone(rig.supervisor, "1740800009.97", mode="join")
    rig.asterisk.bridges["other-a1b2c3d4e5f6-talk"] = ["1740800009.98", other_phone["id"]]
    stale = await rig.audit.start("l-x", rig.listener.id, CALL_ID, "join", datetime.now(UTC))
    foreign = await rig.audit.start("l-x", rig.listener.id, "other-a1b2c3d4e5f6", "join", datetime.now(UTC))

    rig.supervision.on_event(Connected(connection=2))
    await rig.settled()

    assert {stray["id"], old_phone["id"], old_snoop["id"]} <= set(rig.asterisk.hung_up())
    assert old_bridge not in rig.asterisk.bridges
    assert other_phone["id"] not in rig.asterisk.hung_up()
    caller_untouched(rig)
    assert rig.listener_channel not in rig.asterisk.hung_up()
    ended = {row.id: row.ended_at for row in await rig.audit.list()}
    assert ended[stale] is not None
    assert ended[foreign] is None


async def test_a_restarted_switchboard_resumes_a_joined_call_and_leaves_other_instances_calls(
    helpline: Helpline,
) -> None:
    """A fresh service finds one of its calls with a supervisor joined, and another instance's call: its own
    call goes on (the supervisor is no second caller) and the supervisor's phone is hung up; the other
    instance's call is not touched at all."""
    (alice,) = await helpline.add_listeners("alice")
    now = datetime.now(UTC)
    await helpline.roster.claim(alice.id, CALL_ID, now)
    await helpline.roster.set_state(alice.id, "on_call", call_id=CALL_ID, now=now)
    asterisk = helpline.asterisk
    talker = channel_json(CALLER, "PJSIP/trunk-00000011", state="Up")
    alice_leg = channel_json(
        f"{CALL_ID}-{alice.id}-1", "PJSIP/alice-00000012", state="Up", context="from-listeners", exten="s"
    )
    sup_phone = channel_json(
        "1740800009.99", "PJSIP/sup-00000013", state="Up", context="feature-code", exten="s"
    )
    sup_phone["dialplan"]["app_data"] = f"{APP},feature,join,123"
    for channel in (talker, alice_leg, sup_phone):
        asterisk.enter_stasis(channel)
    asterisk.bridges[TALK] = [talker["id"], alice_leg["id"], sup_phone["id"]]
    other_caller = channel_json("1740800007.17", "PJSIP/trunk-00000017", state="Up")
    other_leg = channel_json("other-0a1b2c3d4e5f-l-0000beef-1", "PJSIP/bob-00000018", state="Up")
    for channel in (other_caller, other_leg):
        asterisk.enter_stasis(channel)
        asterisk.in_app.discard(channel["id"])
    asterisk.bridges["other-0a1b2c3d4e5f-talk"] = [other_caller["id"], other_leg["id"]]

    board = await helpline.start()
    await helpline.settled()

    views = {view.call_id: view for view in board.queue.calls()}
    assert views[CALL_ID].state is CallState.CONNECTED
    assert sup_phone["id"] in asterisk.hung_up()
    assert {talker["id"], alice_leg["id"]}.isdisjoint(asterisk.hung_up())
    touched = {arg for call in asterisk.calls for arg in call.args if isinstance(arg, str)}
    assert {other_caller["id"], other_leg["id"], "other-0a1b2c3d4e5f-talk"}.isdisjoint(touched)
