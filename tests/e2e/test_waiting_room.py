"""The waiting room on the real Asterisk: a waiting caller hears their place, never two prompts at once and
never a prompt over the conversation; after a while they may choose the line's alternatives; an overloaded
line says so at once.

Line settings below the bounds the line administration allows (announce every second, choice after one)
are written straight into the row, so each scenario takes seconds: they crowd the prompts on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable

from sqlalchemy import update
from tests.e2e.conftest import (
    CALLER_NAME,
    CALLER_NUMBER,
    FAST,
    ServiceFactory,
    Sipp,
    add_listener,
    online_phone,
)
from tests.e2e.harness import RunningService
from tests.e2e.keys import keying_caller
from tests.e2e.media import RtpPhone, loudness, sdp_audio_address
from tests.e2e.sipp import SippProcess

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.models import (
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    EventBase,
    PlaybackFinished,
    PlaybackStarted,
)
from helpline_pbx.ari.stream import StreamItem
from helpline_pbx.core import CallerArrived, ConnectCall
from helpline_pbx.lines.repository import Lines
from helpline_pbx.lines.snapshots import LineMessages
from helpline_pbx.lines.tables import LineRow
from helpline_pbx.roster.repository import Roster

LINE_NAME = "attente"
OVERLOADED = "sound:helpline/overloaded"
# What a waiting caller's phone must receive: in every second of their wait, most of the 50 packets of
# 20 ms Asterisk sends; over the wait, a level well above digital silence (0).
PACKETS_PER_SECOND = 40
AUDIBLE = 0.005
# Seconds of waiting measured per caller.
MEASURED = 6
CHOICE = "sound:helpline/keep-or-alternatives"


class AriEvents:
    """Every ARI event the service handled (Switchboard.ari_observers), in order, to await and to check."""

    def __init__(self) -> None:
        self.items: list[tuple[float, StreamItem]] = []
        self._seen: set[str] = set()
        self._changed = asyncio.Event()

    def __call__(self, item: StreamItem) -> None:
        if isinstance(item, EventBase):
            # Asterisk sends an event once per subscription that covers it: the service is subscribed to
            # the caller's channel and to its endpoint (endpoint:PJSIP). One of each is enough here.
            key = item.model_dump_json()
            if key in self._seen:
                return
            self._seen.add(key)
        self.items.append((time.monotonic(), item))
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"waited {timeout}s for {what}; prompts: {self.prompts_text()}") from None

    def prompts(self, channel_id: str) -> list[tuple[float, PlaybackStarted | PlaybackFinished]]:
        """Playback events on one channel (a PlaybackStarted for each media of a playback)."""
        return [
            (t, item)
            for t, item in self.items
            if isinstance(item, PlaybackStarted | PlaybackFinished) and item.channel_id == channel_id
        ]

    def media(self, channel_id: str) -> list[str]:
        """Every media started on the channel, in order."""
        return [e.playback.media_uri for _, e in self.prompts(channel_id) if isinstance(e, PlaybackStarted)]

    def finished(self, channel_id: str) -> list[str]:
        """Ids of the playbacks that ended on the channel, in order."""
        return [e.playback.id for _, e in self.prompts(channel_id) if isinstance(e, PlaybackFinished)]

    def prompts_text(self) -> str:
        return ", ".join(
            f"{type(e).__name__}({e.playback.id} {e.playback.media_uri})"
            for _, e in self.items
            if isinstance(e, PlaybackStarted | PlaybackFinished)
        )


async def _line(roster: Roster, sipp: Sipp, **settings: object) -> None:
    """The test's line; settings go straight into its row (below the administration's bounds if need be)."""
    messages = settings.pop("messages", None)
    assert messages is None or isinstance(messages, LineMessages)
    await Lines(roster.engine).add(LINE_NAME, label="Écoute", numbers=[sipp.line], messages=messages)
    if settings:
        async with roster.engine.begin() as connection:
            await connection.execute(update(LineRow).where(LineRow.name == LINE_NAME).values(**settings))


async def _watch(svc: RunningService) -> AriEvents:
    events = AriEvents()
    svc.board.ari_observers.append(events)
    return events


async def _caller_channel(svc: RunningService, nth: int) -> tuple[str, str]:
    """(call id, caller channel id) of the nth caller to arrive."""

    def arrivals() -> list[CallerArrived]:
        return [e for e in svc.decisions.events() if isinstance(e, CallerArrived)]

    await svc.decisions.wait_for(lambda: len(arrivals()) >= nth, 15, f"caller {nth} arrived")
    call_id = arrivals()[nth - 1].call_id
    call = svc.board.book.call(call_id)
    assert call is not None
    return call_id, call.caller_channel


async def _hang_up(ari: AriClient, *channels: str) -> None:
    for channel_id in channels:
        with contextlib.suppress(AriNotFound):
            await ari.hangup(channel_id)


async def _in_context(ari: AriClient, channel_id: str, context: str, timeout: float = 10.0) -> bool:
    """Whether the channel reaches that dialplan context (out of Stasis, no app hears of it: polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(AriNotFound):
            channel = await ari.get_channel(channel_id)
            if channel.dialplan is not None and channel.dialplan.context == context:
                return True
        await asyncio.sleep(0.05)
    return False


def _overlaps(events: AriEvents, channel_id: str) -> list[str]:
    """Playbacks that started while another one was still playing on the channel."""
    playing: str | None = None
    overlaps = []
    for _, event in events.prompts(channel_id):
        if isinstance(event, PlaybackStarted):
            if playing not in (None, event.playback.id):
                overlaps.append(f"{event.playback.id} over {playing}")
            playing = event.playback.id
        elif event.playback.id == playing:
            playing = None
    return overlaps


async def test_a_waiting_caller_hears_their_place(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """With nobody free, the first caller hears their call is next, the second that they are second; no
    figure is given, since nobody on duty means no honest estimate."""
    await Lines(roster.engine).add(LINE_NAME, label="Écoute", numbers=[sipp.line], announce_every=15)
    svc = await service()
    events = await _watch(svc)
    sipp.caller("caller")
    _, first = await _caller_channel(svc, 1)
    await events.wait_for(lambda: bool(events.media(first)), 10, "the first caller's announcement")
    sipp.caller("caller")
    _, second = await _caller_channel(svc, 2)
    await events.wait_for(lambda: len(events.media(second)) >= 2, 10, "the second caller's announcement")

    assert events.media(first) == ["sound:helpline/next-in-line"]
    assert events.media(second) == ["sound:helpline/position", "number:2"]
    await _hang_up(svc.ari, first, second)


async def test_prompts_never_overlap(roster: Roster, service: ServiceFactory, sipp: Sipp) -> None:
    """Announcements every second and the choice after two: each prompt waits for the one playing to end,
    and the announcement that came due during the choice plays right after it, not later."""
    await _line(roster, sipp, announce_every=1, choice_after=2)
    svc = await service()
    events = await _watch(svc)
    sipp.caller("caller")
    _, channel = await _caller_channel(svc, 1)

    def choice_then_announcement() -> bool:
        media = events.media(channel)
        return CHOICE in media and len(media) > media.index(CHOICE) + 1

    await events.wait_for(choice_then_announcement, 30, "an announcement after the choice")
    await events.wait_for(lambda: len(events.finished(channel)) >= 3, 10, "three prompts played")

    assert _overlaps(events, channel) == []
    media = events.media(channel)
    assert media[0] == "sound:helpline/next-in-line"
    assert media[media.index(CHOICE) + 1] == "sound:helpline/next-in-line"
    [choice_end] = [
        t
        for t, e in events.prompts(channel)
        if isinstance(e, PlaybackFinished) and e.playback.media_uri == CHOICE
    ]
    [after] = [t for t, e in events.prompts(channel) if isinstance(e, PlaybackStarted) and t > choice_end][:1]
    assert after - choice_end < 0.9, "the postponed announcement waited for a new interval"
    await _hang_up(svc.ari, channel)


async def test_a_prompt_stops_when_a_listener_answers(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """The long overloaded message is playing when a listener's phone starts ringing: it is stopped, the
    caller is in the conversation as soon as the listener answers (a playback would hold them in the holding
    bridge), and no prompt plays during the conversation, though announcements were due every second."""
    await _line(roster, sipp, max_wait=0, announce_every=1)
    camille = await add_listener(roster, "Camille")
    svc = await service()
    events = await _watch(svc)
    sipp.caller("caller")
    call_id, channel = await _caller_channel(svc, 1)
    await events.wait_for(lambda: OVERLOADED in events.media(channel), 10, "the overloaded message")
    # The listener talks for 2.5 s, then hangs up: time enough for any leaking announcement to show.
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=2500)

    def connect_time() -> float | None:
        return next(
            (t for t, _, cs in svc.decisions.log if any(isinstance(c, ConnectCall) for c in cs)), None
        )

    def talk_entry() -> float | None:
        return next(
            (
                t
                for t, e in events.items
                if isinstance(e, ChannelEnteredBridge)
                and e.channel_id == channel
                and e.bridge.id == f"{call_id}-talk"
            ),
            None,
        )

    await svc.decisions.wait_for(lambda: connect_time() is not None, 15, "the listener answered")
    await events.wait_for(lambda: talk_entry() is not None, 10, "the caller in the conversation")
    connected, entered = connect_time(), talk_entry()
    assert connected is not None
    assert entered is not None
    [overloaded_end] = [t for t, e in events.prompts(channel) if isinstance(e, PlaybackFinished)][:1]
    assert overloaded_end <= entered
    # The message and the alternatives last half a minute: only a stopped prompt lets the caller in this fast.
    assert entered - connected < 2.0
    [record] = await svc.decisions.wait_records(1, timeout=15)
    assert record.outcome == "served"
    assert [e for t, e in events.prompts(channel) if isinstance(e, PlaybackStarted) and t > entered] == []


async def test_pressing_2_after_the_choice_hears_the_alternatives(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """The caller keys 2 while the choice is said: the call ends as "alternatives" and the caller goes at
    once to hear the line's own alternatives message in the dialplan."""
    await _line(roster, sipp, choice_after=1, messages=LineMessages(alternatives="fallback"))
    svc = await service()
    events = await _watch(svc)
    keying_caller(sipp, "2", after_ms=3000)
    _, channel = await _caller_channel(svc, 1)

    [record] = await svc.decisions.wait_records(1, timeout=15)
    assert record.outcome == "alternatives"
    # At once: the choice still playing would hold the caller in the holding bridge until its end.
    assert await _in_context(svc.ari, channel, "helpline-alternatives", timeout=2.0)
    assert await svc.ari.get_variable(channel, "HELPLINE_LINE_PROMPT") == "fallback"
    order = [
        "choice" if isinstance(e, PlaybackStarted) and e.playback.media_uri == CHOICE else "2"
        for _, e in events.items
        if (isinstance(e, PlaybackStarted) and e.channel_id == channel)
        or (isinstance(e, ChannelDtmfReceived) and e.channel.id == channel and e.digit == "2")
    ]
    assert order[:2] == ["choice", "2"]
    await _hang_up(svc.ari, channel)


async def test_pressing_1_keeps_the_place(roster: Roster, service: ServiceFactory, sipp: Sipp) -> None:
    """The caller keys 1 while the choice is said: the prompt stops there, and they keep waiting."""
    await _line(roster, sipp, choice_after=1)
    svc = await service()
    events = await _watch(svc)
    keying_caller(sipp, "1", after_ms=3000)
    call_id, channel = await _caller_channel(svc, 1)

    def key_time() -> float | None:
        return next(
            (t for t, e in events.items if isinstance(e, ChannelDtmfReceived) and e.channel.id == channel),
            None,
        )

    await events.wait_for(lambda: key_time() is not None, 15, "the caller's key")
    await events.wait_for(lambda: len(events.finished(channel)) >= 1, 10, "the choice stopped")
    [(choice_end, _)] = [(t, e) for t, e in events.prompts(channel) if isinstance(e, PlaybackFinished)]
    key = key_time()
    assert key is not None
    # The choice lasts eight seconds: stopping within one proves the key cut it.
    assert choice_end - key < 1.0
    assert events.media(channel) == [CHOICE]
    assert call_id in svc.board.queue.waiting()
    assert svc.decisions.records() == []
    await _hang_up(svc.ari, channel)


async def test_an_overloaded_line_says_so_at_once(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A wait over max_wait (0 s, nobody free): the caller first hears the overloaded message, then the
    alternatives, and keeps their place."""
    await Lines(roster.engine).add(LINE_NAME, label="Écoute", numbers=[sipp.line], max_wait=0)
    svc = await service()
    events = await _watch(svc)
    sipp.caller("caller")
    call_id, channel = await _caller_channel(svc, 1)
    await events.wait_for(lambda: bool(events.media(channel)), 10, "the overloaded message")

    [(_, first)] = [(t, e) for t, e in events.prompts(channel) if isinstance(e, PlaybackStarted)][:1]
    assert first.playback.media_uri == OVERLOADED
    assert first.playback.next_media_uri == "sound:helpline/alternatives"
    assert call_id in svc.board.queue.waiting()
    await _hang_up(svc.ari, channel)


async def _media_caller(sipp: Sipp, phone: RtpPhone) -> SippProcess:
    """A caller whose audio is the test's RTP endpoint: it sends a tone from the answer on (the line queues
    a caller once their audio arrives) and keeps what it hears."""
    port = await phone.open()
    caller = SippProcess(
        "caller_media",
        workdir=sipp.workdir,
        local_ip=sipp.asterisk.trunk_ip,
        remote=sipp.remote,
        service=sipp.line,
        variables={"caller_user": CALLER_NUMBER, "caller_name": CALLER_NAME},
        keys={"rtp_port": str(port)},
        calls=1,
        lifetime=120,
    )
    sipp.processes.append(caller.start())
    answer = await caller.wait_for_message_async(lambda m: m.startswith("SIP/2.0 200"), 15)
    phone.send_to(sdp_audio_address(answer))
    return caller


def _entered_holding(events: AriEvents, channel_id: str) -> float | None:
    return next(
        (
            t
            for t, e in events.items
            if isinstance(e, ChannelEnteredBridge)
            and e.channel_id == channel_id
            and e.bridge.bridge_type == "holding"
        ),
        None,
    )


async def test_callers_who_wait_after_a_served_call_hear_music(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Once a first caller was served (the holding bridge emptied, and Asterisk dropped its music), the
    2nd and 3rd callers, waiting while nobody is free, receive audio in every second of their wait, and it
    is not silence. A line with no announcements: nothing but the music can reach them."""
    camille = await add_listener(roster, "Camille")
    # After the first call Camille rests for longer than the test lasts: nobody is free for the others.
    svc = await service(policy=dataclasses.replace(FAST, rest_after_call=300.0))
    events = await _watch(svc)
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=1000)
    sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    _, first = await _caller_channel(svc, 1)
    holding = next(
        e.bridge.id for _, e in events.items if isinstance(e, ChannelEnteredBridge) and e.channel_id == first
    )
    assert (await svc.ari.get_bridge(holding)).channels == []

    phones = [RtpPhone(sipp.asterisk.trunk_ip, 440.0), RtpPhone(sipp.asterisk.trunk_ip, 660.0)]
    try:
        for phone in phones:
            await _media_caller(sipp, phone)
        channels = [(await _caller_channel(svc, nth))[1] for nth in (2, 3)]
        await events.wait_for(
            lambda: all(_entered_holding(events, c) is not None for c in channels), 15, "both callers waiting"
        )
        entered = [_entered_holding(events, c) or 0.0 for c in channels]
        # A measurement over time, not a wait for an event: the window has to pass.
        await asyncio.sleep(max(0.0, max(entered) + MEASURED + 0.1 - time.monotonic()))
        assert not svc.decisions.offers()[1:], "a waiting caller was offered: somebody was free"
        figures = []
        for phone, start in zip(phones, entered, strict=True):
            # Second by second from the moment they joined the holding bridge (the music starts within 20 ms).
            seconds = [phone.between(start + s, start + 1 + s) for s in range(MEASURED)]
            figures.append([(len(p), round(loudness(b"".join(p)), 4)) for p in seconds])
        for nth, (phone, start, per_second) in enumerate(zip(phones, entered, figures, strict=True), 2):
            assert all(count >= PACKETS_PER_SECOND for count, _ in per_second), (nth, figures)
            # Music may open with a fade-in (the tracks play in random order): its level is judged overall.
            level = loudness(b"".join(phone.between(start, start + MEASURED)))
            assert level > AUDIBLE, (nth, level, figures)
        await _hang_up(svc.ari, *channels)
    finally:
        for phone in phones:
            await phone.close()
