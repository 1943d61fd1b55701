"""Supervision on the real Asterisk: a supervisor's phone listens to (*31), coaches (*32) or joins (*33) a
listener's call by the listener's short code; only trainees and consenting listeners; every use recorded;
the caller's call goes on untouched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from tests.e2e.conftest import (
    CALLER_NAME,
    CALLER_NUMBER,
    ServiceFactory,
    Sipp,
    add_listener,
    online_phone,
    sip_password,
)
from tests.e2e.harness import RunningService, wait_registered
from tests.e2e.media import RtpPhone, sdp_audio_address, tone_level
from tests.e2e.sipp import SippProcess, free_udp_port, scenario_path

from helpline_pbx.ari.models import (
    Bridge,
    Channel,
    ChannelEnteredBridge,
    EventBase,
    PlaybackStarted,
    StasisEnd,
)
from helpline_pbx.ari.stream import StreamItem
from helpline_pbx.core import ConnectCall, RecordCall
from helpline_pbx.lines.repository import Lines
from helpline_pbx.protocol import talk_bridge_id
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import SupervisionMode
from helpline_pbx.roster.supervisions import Supervisions, SupervisionSnapshot
from helpline_pbx.switchboard.supervision.model import is_supervision_channel

# How long the supervisor's phone stays in the call before it hangs up itself.
HOLD_MS = 6000


@dataclass
class AriEvents:
    """Every ARI event the service handled, so a test awaits what Asterisk reports instead of sleeping."""

    items: list[StreamItem] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, item: StreamItem) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[EventBase], bool], timeout: float, what: str) -> EventBase:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = next((i for i in self.items if isinstance(i, EventBase) and predicate(i)), None)
                    if found is not None:
                        return found
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = sorted({type(i).__name__ for i in self.items})
            raise AssertionError(f"waited {timeout}s for {what}; event types seen: {seen}") from None


@dataclass
class LiveCall:
    call_id: str
    caller_channel: str
    listener_channel: str
    caller: SippProcess


def monitor(
    sipp: Sipp, supervisor: ListenerSnapshot, number: str, hold_ms: int = HOLD_MS, rtp_port: int | None = None
) -> SippProcess:
    """The supervisor's phone dials `number` and stays `hold_ms` (unless the line hangs up first); its audio
    goes to `rtp_port` (by default a port nothing listens on)."""
    proc = SippProcess(
        "phone_monitor",
        workdir=sipp.workdir,
        remote=sipp.remote,
        service=number,
        auth_user=supervisor.endpoint,
        auth_password=sip_password(supervisor),
        keys={"rtp_port": str(rtp_port or free_udp_port())},
        variables={"user": supervisor.endpoint},
        calls=1,
        pause_ms=hold_ms,
        lifetime=60,
    )
    sipp.processes.append(proc)
    return proc.start()


async def start_watched(service: ServiceFactory) -> tuple[RunningService, AriEvents]:
    svc = await service()
    events = AriEvents()
    svc.board.ari_observers.append(events)
    return svc, events


async def call_in_progress(svc: RunningService, sipp: Sipp, listener: ListenerSnapshot) -> LiveCall:
    """A caller talking with `listener` (both stay until the line ends the call)."""
    await online_phone(svc, sipp, listener, "listener_answer")
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: any(isinstance(c, ConnectCall) for c in svc.decisions.commands()), 20, "the call connected"
    )
    await svc.board.executor.wait_idle()
    [connect] = [c for c in svc.decisions.commands() if isinstance(c, ConnectCall)]
    call = svc.board.book.call(connect.call_id)
    listener_channel = svc.board.book.listener_channel(connect.call_id, listener.id)
    assert call is not None
    assert listener_channel is not None
    talk = await svc.ari.get_bridge(talk_bridge_id(connect.call_id))
    assert set(talk.channels) == {call.caller_channel, listener_channel}
    return LiveCall(connect.call_id, call.caller_channel, listener_channel, caller)


async def supervisor_ready(
    svc: RunningService, roster: Roster, name: str = "Sup", role: str = "supervisor"
) -> ListenerSnapshot:
    """Someone added once the call is up (so the call is never offered to them), once the service pushed
    their phone to Asterisk and claimed its feature codes (HELPLINE_PHONE_APP_<endpoint>, set last; Asterisk
    sends no event for either: polled)."""
    person = await add_listener(roster, name, role=role)
    variable = f"HELPLINE_PHONE_APP_{person.endpoint}"
    deadline = time.monotonic() + 10
    while (await svc.ari.request("GET", "/asterisk/variable", params={"variable": variable})) != {
        "value": svc.board.supervision.app
    }:
        assert time.monotonic() < deadline, f"{name}'s phone was never pushed"
        await asyncio.sleep(0.05)
    return person


async def end_call(svc: RunningService, call: LiveCall) -> None:
    """The caller hangs up (through ARI): the call ends as served and the caller's phone got a BYE."""
    await svc.ari.hangup(call.caller_channel)
    await svc.decisions.wait_for(
        lambda: any(
            isinstance(c, RecordCall) and c.record.call_id == call.call_id for c in svc.decisions.commands()
        ),
        15,
        "the call recorded",
    )
    [record] = [r for r in svc.decisions.records() if r.call_id == call.call_id]
    assert record.outcome == "served"
    assert (await call.caller.wait_async(15)).exit_code == 0, call.caller.errors()


def our_bridges(svc: RunningService, bridges: list[Bridge]) -> list[Bridge]:
    return [b for b in bridges if b.id.startswith(svc.board.supervision.bridge_prefix)]


def entered(bridge_prefix: str, count: int) -> Callable[[EventBase], bool]:
    """A channel entered a bridge of that prefix, which then held `count` channels."""

    def check(event: EventBase) -> bool:
        return (
            isinstance(event, ChannelEnteredBridge)
            and event.bridge.id.startswith(bridge_prefix)
            and len(event.bridge.channels) == count
        )

    return check


async def phone_hears(
    svc: RunningService, person: ListenerSnapshot, extension: str, timeout: float = 15.0
) -> bool:
    """Whether the person's phone reaches [feature-result] `extension` (out of Stasis, no app hears of it:
    polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for channel in await svc.ari.list_channels():
            dialplan = channel.dialplan
            if (
                channel.name.startswith(f"PJSIP/{person.endpoint}-")
                and dialplan is not None
                and (dialplan.context, dialplan.exten) == ("feature-result", extension)
            ):
                return True
        await asyncio.sleep(0.05)
    return False


async def supervisor_channel(svc: RunningService, sup: ListenerSnapshot) -> Channel:
    [channel] = [c for c in await svc.ari.list_channels() if c.name.startswith(f"PJSIP/{sup.endpoint}-")]
    return channel


async def snoops_on(svc: RunningService, call: LiveCall) -> list[Channel]:
    """Snoop channels on the call's listener leg (Asterisk names them after the channel they spy on)."""
    return [c for c in await svc.ari.list_channels() if c.name.startswith(f"Snoop/{call.listener_channel}-")]


async def rows(roster: Roster) -> list[SupervisionSnapshot]:
    return await Supervisions(roster.engine).list()


async def consenting(roster: Roster, name: str) -> ListenerSnapshot:
    # Consent given when added: the roster keeps no password, only the snapshot add returned has it.
    return await add_listener(roster, name, monitoring_consent=True)


def record_snoops(svc: RunningService) -> list[tuple[str, str, str, str]]:
    """(spied channel, snoop id, spy, whisper) of every snoop the service asks the real Asterisk for."""
    asked: list[tuple[str, str, str, str]] = []
    real = svc.ari.snoop

    async def snoop(channel_id: str, snoop_id: str, **kwargs: object) -> Channel:
        asked.append((channel_id, snoop_id, str(kwargs.get("spy")), str(kwargs.get("whisper"))))
        return await real(channel_id, snoop_id, **kwargs)  # type: ignore[arg-type]

    svc.ari.snoop = snoop  # type: ignore[method-assign]
    return asked


async def snoop_session(
    svc: RunningService, events: AriEvents, call: LiveCall, sup: ListenerSnapshot
) -> tuple[str, Channel, Channel]:
    """Once the supervisor is bridged with a snoop channel: (our bridge, supervisor's channel, snoop)."""
    prefix = svc.board.supervision.bridge_prefix
    await events.wait_for(entered(prefix, 2), 15, "the supervisor and the snoop bridged")
    [bridge] = our_bridges(svc, await svc.ari.list_bridges())
    phone = await supervisor_channel(svc, sup)
    channels = {c.id: c for c in await svc.ari.list_channels()}
    [snoop_id] = [c for c in bridge.channels if c != phone.id]
    assert phone.id in bridge.channels
    # The call's own bridge is untouched: the caller and the listener, nobody else.
    talk = await svc.ari.get_bridge(talk_bridge_id(call.call_id))
    assert set(talk.channels) == {call.caller_channel, call.listener_channel}
    return bridge.id, phone, channels[snoop_id]


async def supervisor_leaves(svc: RunningService, events: AriEvents, phone: Channel, mon: SippProcess) -> None:
    """The supervisor's phone hangs up itself, after its hold time; the service has handled it."""
    await events.wait_for(
        lambda e: isinstance(e, StasisEnd) and e.channel.id == phone.id, HOLD_MS / 1000 + 10, "the phone left"
    )
    assert (await mon.wait_async(15)).exit_code == 0, mon.errors()
    assert any(m.startswith("BYE ") for m in mon.sent_messages()), "the phone itself hung up"
    await svc.board.executor.wait_idle()


async def test_a_supervisor_listens_silently_to_a_consenting_listener(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*31 + code: a snoop on the listener's leg hearing both sides and speaking to nobody, bridged with the
    supervisor; recorded (who, whom, call, mode); undone when the supervisor hangs up, the call going on."""
    camille = await consenting(roster, "Camille")
    svc, events = await start_watched(service)
    asked = record_snoops(svc)
    call = await call_in_progress(svc, sipp, camille)
    sup = await supervisor_ready(svc, roster)

    mon = monitor(sipp, sup, f"*31{camille.code}")
    _bridge_id, phone, snoop = await snoop_session(svc, events, call, sup)
    assert asked == [(call.listener_channel, snoop.id, "both", "none")]
    assert snoop.name.startswith(f"Snoop/{call.listener_channel}-"), snoop.name
    [row] = await rows(roster)
    assert (row.supervisor_id, row.listener_id, row.call_id) == (sup.id, camille.id, call.call_id)
    assert row.mode is SupervisionMode.LISTEN
    assert row.ended_at is None

    await supervisor_leaves(svc, events, phone, mon)
    [row] = await rows(roster)
    assert row.ended_at is not None
    assert row.ended_at >= row.started_at
    assert our_bridges(svc, await svc.ari.list_bridges()) == []
    await events.wait_for(
        lambda e: isinstance(e, StasisEnd) and e.channel.id == snoop.id, 5, "the snoop channel ended"
    )
    # The caller and the listener talk on, as before.
    talk = await svc.ari.get_bridge(talk_bridge_id(call.call_id))
    assert set(talk.channels) == {call.caller_channel, call.listener_channel}
    await end_call(svc, call)


async def test_a_supervisor_coaches_a_trainee_only_the_trainee_hears_them(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*32 + code on a trainee's call (a line that lets trainees take calls): the snoop hears both sides and
    whispers only into what the trainee's phone is sent; the call's end ends the coaching and hangs up the
    supervisor's phone, and closes the record."""
    await Lines(roster.engine).add("formation", label="Écoute", numbers=[sipp.line], trainees_allowed=True)
    tom = await add_listener(roster, "Tom", trainee=True)
    svc, events = await start_watched(service)
    asked = record_snoops(svc)
    call = await call_in_progress(svc, sipp, tom)
    sup = await supervisor_ready(svc, roster)

    mon = monitor(sipp, sup, f"*32{tom.code}", hold_ms=30000)
    _, phone, snoop = await snoop_session(svc, events, call, sup)
    assert asked == [(call.listener_channel, snoop.id, "both", "out")]
    [row] = await rows(roster)
    assert (row.supervisor_id, row.listener_id, row.mode) == (sup.id, tom.id, SupervisionMode.COACH)

    await end_call(svc, call)
    # The supervisor's phone is hung up by the line (it would have stayed 30 s), and everything is undone.
    assert (await mon.wait_async(15)).exit_code == 0, mon.errors()
    assert any(m.startswith("BYE ") for m in mon.messages()), "the line hung up the supervisor's phone"
    await svc.board.executor.wait_idle()
    [row] = await rows(roster)
    assert row.ended_at is not None
    assert our_bridges(svc, await svc.ari.list_bridges()) == []
    assert phone.id not in {c.id for c in await svc.ari.list_channels()}


async def test_a_supervisor_joins_the_call_with_a_tone(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*33 + code: the supervisor enters the call's own bridge (everyone hears everyone) and, with the tone
    on, a beep is played to the call; when the supervisor hangs up, the caller and the listener go on."""
    camille = await consenting(roster, "Camille")
    svc, events = await start_watched(service)
    svc.board.supervision.tone = True
    call = await call_in_progress(svc, sipp, camille)
    sup = await supervisor_ready(svc, roster)

    mon = monitor(sipp, sup, f"*33{camille.code}")
    talk_id = talk_bridge_id(call.call_id)
    await events.wait_for(entered(talk_id, 3), 15, "the supervisor in the call's bridge")
    phone = await supervisor_channel(svc, sup)
    talk = await svc.ari.get_bridge(talk_id)
    assert set(talk.channels) == {call.caller_channel, call.listener_channel, phone.id}
    # A restarted service tells the supervisor's phone from a caller by what Asterisk says of it.
    assert is_supervision_channel(phone)
    beep = await events.wait_for(
        lambda e: isinstance(e, PlaybackStarted) and e.playback.target_uri == f"bridge:{talk_id}",
        10,
        "the tone",
    )
    assert isinstance(beep, PlaybackStarted)
    assert beep.playback.media_uri == "sound:beep"
    # No snoop for a join.
    assert not await snoops_on(svc, call)
    [row] = await rows(roster)
    assert (row.supervisor_id, row.listener_id, row.call_id, row.mode) == (
        sup.id,
        camille.id,
        call.call_id,
        SupervisionMode.JOIN,
    )

    await supervisor_leaves(svc, events, phone, mon)
    [row] = await rows(roster)
    assert row.ended_at is not None
    talk = await svc.ari.get_bridge(talk_id)
    assert set(talk.channels) == {call.caller_channel, call.listener_channel}
    await end_call(svc, call)


async def test_supervision_is_refused_without_training_or_consent_and_to_non_supervisors(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A listener neither in training nor consenting cannot be listened to (the phone hears why, no bridge,
    no snoop, no record); a volunteer cannot supervise anyone; an idle listener has no call to supervise."""
    private = await add_listener(roster, "Prive")
    svc, _ = await start_watched(service)
    call = await call_in_progress(svc, sipp, private)
    sup = await supervisor_ready(svc, roster)
    volunteer = await supervisor_ready(svc, roster, "Vol", role="volunteer")
    idle = await consenting(roster, "Idle")

    refused = monitor(sipp, sup, f"*31{private.code}", hold_ms=30000)
    assert await phone_hears(svc, sup, "supervision-refused")
    assert (await refused.wait_async(20)).exit_code == 0, refused.errors()
    assert any(m.startswith("BYE ") for m in refused.messages()), "the line ended the refused call"

    not_allowed = monitor(sipp, volunteer, f"*33{private.code}", hold_ms=30000)
    assert await phone_hears(svc, volunteer, "refused")
    assert (await not_allowed.wait_async(20)).exit_code == 0, not_allowed.errors()

    no_call = monitor(sipp, sup, f"*32{idle.code}", hold_ms=30000)
    assert await phone_hears(svc, sup, "supervision-no-call")
    assert (await no_call.wait_async(20)).exit_code == 0, no_call.errors()

    assert await rows(roster) == []
    assert our_bridges(svc, await svc.ari.list_bridges()) == []
    assert not await snoops_on(svc, call)
    talk = await svc.ari.get_bridge(talk_bridge_id(call.call_id))
    assert set(talk.channels) == {call.caller_channel, call.listener_channel}
    await end_call(svc, call)


async def test_a_service_restart_during_a_join_keeps_the_call_and_lets_the_supervisor_go(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """The service restarts while a supervisor is in a call: the new run resumes the call (the supervisor is
    no second caller), hangs up the supervisor's phone, and closes the supervision's record."""
    camille = await consenting(roster, "Camille")
    svc, events = await start_watched(service)
    call = await call_in_progress(svc, sipp, camille)
    sup = await supervisor_ready(svc, roster)
    mon = monitor(sipp, sup, f"*33{camille.code}", hold_ms=30000)
    talk_id = talk_bridge_id(call.call_id)
    await events.wait_for(entered(talk_id, 3), 15, "the supervisor in the call's bridge")

    await svc.stop()
    again, _ = await start_watched(service)

    assert (await mon.wait_async(15)).exit_code == 0, mon.errors()
    assert any(m.startswith("BYE ") for m in mon.messages()), "the line hung up the supervisor's phone"
    await again.board.executor.wait_idle()
    talk = await again.ari.get_bridge(talk_id)
    assert set(talk.channels) == {call.caller_channel, call.listener_channel}
    [row] = await rows(roster)
    assert row.ended_at is not None
    await end_call(again, call)


# Who sends which tone in the audio test, in Hz.
CALLER_TONE, LISTENER_TONE, SUPERVISOR_TONE = 440, 1000, 2000
# A tone at the level the phones send measures about 0.09; mixing may halve it. Silence measures 0.
HEARD, UNHEARD = 0.005, 0.0005


@pytest.mark.parametrize(
    ("code", "caller_hears_supervisor", "listener_hears_supervisor"),
    [("*31", False, False), ("*32", False, True), ("*33", True, True)],
    ids=["listen", "coach", "join"],
)
async def test_who_hears_whom(
    roster: Roster,
    service: ServiceFactory,
    sipp: Sipp,
    code: str,
    caller_hears_supervisor: bool,
    listener_hears_supervisor: bool,
) -> None:
    """Real audio, one tone per person: the supervisor always hears the caller and the listener; listening,
    nobody hears the supervisor; coaching, only the listener does; joining, everyone does. Caller and
    listener hear each other throughout."""
    camille = await consenting(roster, "Camille")
    svc, events = await start_watched(service)
    phones = {
        "caller": RtpPhone(sipp.asterisk.trunk_ip, CALLER_TONE),
        "listener": RtpPhone("127.0.0.1", LISTENER_TONE),
        "supervisor": RtpPhone("127.0.0.1", SUPERVISOR_TONE),
    }
    ports = {name: await phone.open() for name, phone in phones.items()}
    try:
        await svc.decisions.wait_for(
            lambda: svc.board.queue.listener_state(camille.id) is not None, 10, "listener known"
        )
        softphone = SippProcess(
            "softphone",
            workdir=sipp.workdir,
            remote=sipp.remote,
            service=camille.endpoint,
            auth_user=camille.endpoint,
            auth_password=sip_password(camille),
            calls=1,
            lifetime=120,
            keys={"rtp_port": str(ports["listener"])},
            extra_args=["-oocsf", str(scenario_path("listener_media"))],
        )
        sipp.processes.append(softphone.start())
        await wait_registered(svc.ari, camille.endpoint)
        caller = SippProcess(
            "caller_media",
            workdir=sipp.workdir,
            local_ip=sipp.asterisk.trunk_ip,
            remote=sipp.remote,
            service=sipp.line,
            variables={"caller_user": CALLER_NUMBER, "caller_name": CALLER_NAME},
            keys={"rtp_port": str(ports["caller"])},
            calls=1,
            lifetime=120,
        )
        sipp.processes.append(caller.start())
        # A caller's audio flows from the answer on (the line waits for it before queueing them).
        phones["caller"].send_to(
            sdp_audio_address(await caller.wait_for_message_async(lambda m: m.startswith("SIP/2.0 200"), 10))
        )
        await svc.decisions.wait_for(
            lambda: any(isinstance(c, ConnectCall) for c in svc.decisions.commands()),
            20,
            "the call connected",
        )
        phones["listener"].send_to(
            sdp_audio_address(await softphone.wait_for_message_async(lambda m: m.startswith("INVITE "), 10))
        )
        # Before anyone supervises: caller and listener hear each other, and no 2 kHz anywhere.
        before = dict(
            zip(
                ("caller", "listener"),
                await asyncio.gather(*(phones[n].hear(1.5) for n in ("caller", "listener"))),
                strict=True,
            )
        )
        assert tone_level(before["caller"], LISTENER_TONE) > HEARD
        assert tone_level(before["listener"], CALLER_TONE) > HEARD

        sup = await supervisor_ready(svc, roster)
        mon = monitor(sipp, sup, f"{code}{camille.code}", hold_ms=30000, rtp_port=ports["supervisor"])
        phones["supervisor"].send_to(
            sdp_audio_address(await mon.wait_for_message_async(lambda m: m.startswith("SIP/2.0 200"), 10))
        )
        bridge = svc.board.supervision.bridge_prefix if code != "*33" else f"{svc.board.book.call_id_prefix}"
        await events.wait_for(entered(bridge, 3 if code == "*33" else 2), 15, "the supervision bridged")
        heard = dict(
            zip(phones, await asyncio.gather(*(phone.hear(1.5) for phone in phones.values())), strict=True)
        )

        levels = {
            (who, tone_hz): round(tone_level(audio, tone_hz), 4)
            for who, audio in heard.items()
            for tone_hz in (CALLER_TONE, LISTENER_TONE, SUPERVISOR_TONE)
        }
        assert levels[("supervisor", CALLER_TONE)] > HEARD, levels
        assert levels[("supervisor", LISTENER_TONE)] > HEARD, levels
        assert levels[("caller", LISTENER_TONE)] > HEARD, levels
        assert levels[("listener", CALLER_TONE)] > HEARD, levels
        for who, hears in (("caller", caller_hears_supervisor), ("listener", listener_hears_supervisor)):
            if hears:
                assert levels[(who, SUPERVISOR_TONE)] > HEARD, (who, levels)
            else:
                assert levels[(who, SUPERVISOR_TONE)] < UNHEARD, (who, levels)
        await mon.stop_async()
    finally:
        for phone in phones.values():
            await phone.close()
