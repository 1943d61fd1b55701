"""The waiting room against the real core and a recording ARI: one prompt at a time, none while a phone
rings for the caller, none after the connect, and the keep-your-place choice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.models import ChannelDtmfReceived, Playback, PlaybackFinished, PlaybackStarted
from helpline_pbx.core import (
    CallerArrived,
    CallQueue,
    CallRecord,
    Command,
    ConnectCall,
    Event,
    ListenerOnline,
    OfferAnswered,
    OfferCall,
    OfferFailed,
    Policy,
    RecordCall,
    SendToFallback,
)
from helpline_pbx.core.estimate import Announcement
from helpline_pbx.hours import OpeningHours
from helpline_pbx.lines.snapshots import LineMessages, LineSnapshot
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.waiting_room.prompts import announcement_media
from helpline_pbx.switchboard.waiting_room.room import WaitingRoom
from helpline_pbx.switchboard.workers import Lanes

POLICY = Policy(ring_timeout=20, rest_after_call=60, max_missed_offers=0, shift_limits={})
NEXT = "sound:helpline/next-in-line"
CHOICE = "sound:helpline/keep-or-alternatives"


def line(**settings: Any) -> LineSnapshot:
    now = datetime(2025, 3, 1, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": "line-1",
        "name": "ecoute",
        "label": "Écoute",
        "numbers": ("0800123456",),
        "audience": "",
        "support": (),
        "language": "fr",
        "skills": (),
        "hours": OpeningHours(),
        "messages": LineMessages(),
        "ring_timeout": None,
        "active": True,
        "created_at": now,
        "updated_at": now,
    }
    return LineSnapshot(**(values | settings))


class RecordingAri:
    """Plays and stops as Asterisk would, and remembers every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.playing: dict[str, str] = {}  # playback id -> channel id
        self.gone: set[str] = set()
        # Never more than this many of our playbacks at once on one channel (checked on every play).
        self.most_at_once = 0

    async def play(self, channel_id: str, media: Sequence[str], playback_id: str) -> Playback:
        if channel_id in self.gone:
            raise AriNotFound("POST", f"/channels/{channel_id}/play")
        self.requests.append(("play", channel_id, list(media), playback_id))
        self.playing[playback_id] = channel_id
        at_once = sum(1 for c in self.playing.values() if c == channel_id)
        self.most_at_once = max(self.most_at_once, at_once)
        return Playback(
            id=playback_id, media_uri=media[0], target_uri=f"channel:{channel_id}", state="queued"
        )

    async def stop_playback(self, playback_id: str) -> None:
        self.requests.append(("stop", playback_id))
        if self.playing.pop(playback_id, None) is None:
            raise AriNotFound("DELETE", f"/playbacks/{playback_id}")

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self.requests.append(("set", channel_id, name, value))

    def plays(self) -> list[tuple[str, list[str], str]]:
        return [(r[1], r[2], r[3]) for r in self.requests if r[0] == "play"]

    def stops(self) -> list[str]:
        return [r[1] for r in self.requests if r[0] == "stop"]


class Room:
    """A waiting room wired to the real call queue, the way the switchboard wires it."""

    def __init__(self, snapshot: LineSnapshot) -> None:
        self.line = snapshot
        self.queue = CallQueue(POLICY)
        self.book = LegBook(call_id_prefix="t-")
        self.lanes = Lanes()
        self.ari = RecordingAri()
        self.commands: list[Command] = []
        self.room = WaitingRoom(
            ari=self.ari,  # type: ignore[arg-type]
            queue=self.queue,
            book=self.book,
            lanes=self.lanes,
            feed=self.feed,
            line_named=lambda name: snapshot if name == snapshot.name else None,
            rest_after_call=POLICY.rest_after_call,
        )

    def feed(self, event: Event) -> None:
        commands = self.queue.handle(event, time.time())
        self.commands += commands
        self.room.on_decision(event, commands)

    def arrive(self, channel_id: str = "caller-1") -> str:
        call = self.book.open_call(channel_id, self.line.name, "Écoute")
        self.feed(CallerArrived(call_id=call.call_id, line=self.line.name))
        return call.call_id

    async def settled(self) -> None:
        for _ in range(3):
            await self.lanes.wait_idle()
            await self.room.settled()
            await asyncio.sleep(0)

    def finish(self, playback_id: str) -> None:
        """Asterisk reports the end of a playback (it ran to its end, or was stopped)."""
        channel_id = self.ari.playing.pop(playback_id, "caller-1")
        self.room.on_event(PlaybackFinished.model_validate(_playback_event(playback_id, channel_id, "done")))

    def started(self, playback_id: str, channel_id: str = "caller-1") -> None:
        self.room.on_event(
            PlaybackStarted.model_validate(_playback_event(playback_id, channel_id, "playing"))
        )

    def key(self, digit: str, channel_id: str = "caller-1") -> None:
        self.room.on_event(
            ChannelDtmfReceived.model_validate(
                {
                    "type": "ChannelDtmfReceived",
                    "channel": {"id": channel_id, "name": "PJSIP/trunk-1", "state": "Up"},
                    "digit": digit,
                    "duration_ms": 100,
                }
            )
        )

    def current(self) -> str:
        """Id of the one playback of ours going on now."""
        [playback_id] = self.ari.playing
        return playback_id


def _playback_event(playback_id: str, channel_id: str, state: str) -> dict[str, Any]:
    kind = "PlaybackFinished" if state == "done" else "PlaybackStarted"
    playback = {"id": playback_id, "media_uri": NEXT, "target_uri": f"channel:{channel_id}", "state": state}
    return {"type": kind, "playback": playback}


async def test_a_waiting_caller_hears_their_place_at_once() -> None:
    """Nobody to answer: the caller's channel is told "your call is next" as soon as they arrive."""
    room = Room(line(announce_every=30))
    room.arrive()
    await room.settled()
    assert [(channel, media) for channel, media, _ in room.ari.plays()] == [("caller-1", [NEXT])]


async def test_no_prompt_without_waiting_settings() -> None:
    """A line that sets none of the waiting options plays nothing of ours."""
    room = Room(line())
    room.arrive()
    await room.settled()
    assert room.ari.requests == []


async def test_prompts_due_together_play_one_after_the_other() -> None:
    """The choice comes due while the announcement plays: it waits for its end, and the next announcement
    waits for the choice."""
    room = Room(line(announce_every=0, choice_after=0))
    room.arrive()
    await asyncio.sleep(0.01)  # the choice's timer (0 s) fires meanwhile
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()] == [[NEXT]]
    room.finish(room.current())
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()][-1] == [CHOICE]
    room.finish(room.current())
    await asyncio.sleep(0.01)
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()][-1] == [NEXT]
    assert room.ari.most_at_once == 1


async def test_nothing_plays_while_a_phone_rings_for_the_caller() -> None:
    """Offered at once: no announcement; the offer fails, the caller waits again and hears it then."""
    room = Room(line(announce_every=30))
    room.feed(ListenerOnline("l1", "phone-1"))
    call_id = room.arrive()
    await room.settled()
    assert [c for c in room.commands if isinstance(c, OfferCall)]
    assert room.ari.plays() == []
    room.feed(OfferFailed(call_id, "l1", "busy"))
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()] == [[NEXT]]


async def test_the_prompt_stops_when_a_phone_rings_for_the_caller() -> None:
    """The overloaded message plays when a listener's phone starts ringing: it is stopped then, before the
    answer, and nothing plays once they are connected."""
    room = Room(line(max_wait=0, announce_every=0))
    room.feed(ListenerOnline("l1", "phone-1", reachable=False))
    call_id = room.arrive()
    await room.settled()
    playing = room.current()
    room.feed(ListenerOnline("l1", "phone-1", reachable=True))
    assert [c for c in room.commands if isinstance(c, OfferCall)]
    await room.settled()
    assert room.ari.stops() == [playing]
    room.finish(playing)
    room.feed(OfferAnswered(call_id, "l1"))
    assert [c for c in room.commands if isinstance(c, ConnectCall)]
    await asyncio.sleep(0.01)
    await room.settled()
    assert len(room.ari.plays()) == 1


async def test_a_choice_cut_by_a_ringing_phone_is_offered_again() -> None:
    """The choice is cut short by an offer that then fails: once waiting again, the caller hears it whole."""
    room = Room(line(choice_after=0))
    room.feed(ListenerOnline("l1", "phone-1", reachable=False))
    call_id = room.arrive()
    await asyncio.sleep(0.01)
    await room.settled()
    choice = room.current()
    room.feed(ListenerOnline("l1", "phone-1", reachable=True))
    await room.settled()
    assert room.ari.stops() == [choice]
    room.finish(choice)
    room.feed(OfferFailed(call_id, "l1", "busy"))
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()] == [[CHOICE], [CHOICE]]


async def test_a_play_queued_behind_other_work_never_starts_after_the_connect() -> None:
    """The connect comes before the lane got to the play: the prompt is never sent."""
    room = Room(line(announce_every=30))
    room.feed(ListenerOnline("l1", "phone-1", reachable=False))
    call_id = room.arrive()  # its play waits on the call's lane
    room.feed(ListenerOnline("l1", "phone-1", reachable=True))
    room.feed(OfferAnswered(call_id, "l1"))
    await room.settled()
    assert room.ari.plays() == []


async def test_a_play_queued_when_the_offer_starts_waits_for_the_caller_to_wait_again() -> None:
    """A phone starts ringing before the lane got to the announcement: it is not sent while the phone
    rings, and the caller hears one once the offer failed."""
    room = Room(line(announce_every=0))
    room.feed(ListenerOnline("l1", "phone-1", reachable=False))
    call_id = room.arrive()  # its play waits on the call's lane
    room.feed(ListenerOnline("l1", "phone-1", reachable=True))
    await room.settled()
    assert room.ari.plays() == []
    room.feed(OfferFailed(call_id, "l1", "no_answer"))
    await asyncio.sleep(0.01)
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()] == [[NEXT]]


async def test_a_late_start_for_a_connected_caller_is_stopped() -> None:
    """A PlaybackStarted seen after the caller was connected (it raced the stops) is stopped at once."""
    room = Room(line(announce_every=30))
    room.feed(ListenerOnline("l1", "phone-1", reachable=False))
    call_id = room.arrive()
    await room.settled()
    playing = room.current()
    room.feed(ListenerOnline("l1", "phone-1", reachable=True))
    room.feed(OfferAnswered(call_id, "l1"))
    await room.settled()
    room.ari.playing[playing] = "caller-1"  # Asterisk had not taken the stops yet
    stops = len(room.ari.stops())
    room.started(playing)
    await room.settled()
    assert room.ari.stops()[stops:] == [playing]
    assert playing not in room.ari.playing


async def test_2_after_the_choice_hands_the_caller_to_the_alternatives() -> None:
    """Keyed during the choice: the prompt stops, the line's message is set, and the core closes the call
    as "alternatives" towards the alternatives context."""
    room = Room(line(choice_after=0, messages=LineMessages(alternatives="jeunes-alternatives")))
    call_id = room.arrive()
    await asyncio.sleep(0.01)
    await room.settled()
    choice = room.current()
    room.key("2")
    await room.settled()
    assert room.ari.stops() == [choice]
    assert ("set", "caller-1", "HELPLINE_LINE_PROMPT", "jeunes-alternatives") in room.ari.requests
    [handover] = [c for c in room.commands if isinstance(c, SendToFallback)]
    assert handover.call_id == call_id
    assert handover.context == "helpline-alternatives"
    [record] = [c.record for c in room.commands if isinstance(c, RecordCall)]
    assert record.outcome == "alternatives"


async def test_keys_before_the_choice_and_other_keys_are_ignored() -> None:
    """2 before the choice was offered, or 5 after: the caller keeps their place, nothing is stopped."""
    room = Room(line(choice_after=3600))
    room.arrive()
    room.key("2")
    await room.settled()
    assert not [c for c in room.commands if isinstance(c, SendToFallback)]
    room = Room(line(choice_after=0))
    room.arrive()
    await asyncio.sleep(0.01)
    await room.settled()
    room.key("5")
    await room.settled()
    assert room.ari.stops() == []
    assert not [c for c in room.commands if isinstance(c, SendToFallback)]


async def test_1_stops_the_choice_and_keeps_the_place() -> None:
    """Keyed during the choice: the prompt stops, the caller waits on."""
    room = Room(line(choice_after=0))
    call_id = room.arrive()
    await asyncio.sleep(0.01)
    await room.settled()
    choice = room.current()
    room.key("1")
    await room.settled()
    assert room.ari.stops() == [choice]
    assert call_id in room.queue.waiting()


async def test_an_overloaded_line_plays_its_messages_first() -> None:
    """Nobody on duty and a limit: the line's overloaded message then its alternatives, before anything."""
    room = Room(line(max_wait=600, announce_every=30, messages=LineMessages(overloaded="jeunes-charge")))
    room.arrive()
    await room.settled()
    assert [media for _, media, _ in room.ari.plays()] == [
        ["sound:helpline/jeunes-charge", "sound:helpline/alternatives"]
    ]


async def test_the_estimate_comes_from_recent_calls() -> None:
    """Three calls of 4 min and a 1 min rest, one listener on duty but busy: "about 5 minutes"."""
    room = Room(line(announce_every=30, max_wait=3600))
    for n in range(3):
        record = CallRecord(f"old-{n}", "ecoute", 0, 0, 0, 240, "served", "l1", 1, 0, 240)
        room.room.on_decision(ListenerOnline("l1", "phone-1"), [RecordCall(record)])
    room.feed(ListenerOnline("l1", "phone-1"))
    talking = room.arrive("caller-0")
    room.feed(OfferAnswered(talking, "l1"))
    room.arrive()
    await room.settled()
    assert [media for channel, media, _ in room.ari.plays() if channel == "caller-1"] == [
        [NEXT, "sound:helpline/wait-about", "number:5", "sound:helpline/minutes"]
    ]


async def test_a_caller_who_hung_up_is_forgotten() -> None:
    """The play finds the channel gone: no error, no further prompt once the core hears they left."""
    room = Room(line(announce_every=0))
    room.ari.gone.add("caller-1")
    room.arrive()
    await room.settled()
    assert room.ari.plays() == []


def test_announcement_media_for_each_figure() -> None:
    """Place 1 is "next"; 0 minutes "less than one", 1 its own prompt, more as a number of minutes."""
    assert announcement_media(Announcement(1, None)) == [NEXT]
    assert announcement_media(Announcement(3, 0)) == [
        "sound:helpline/position",
        "number:3",
        "sound:helpline/wait-under-a-minute",
    ]
    assert announcement_media(Announcement(2, 1))[-1] == "sound:helpline/wait-one-minute"
    assert announcement_media(Announcement(2, 12))[-3:] == [
        "sound:helpline/wait-about",
        "number:12",
        "sound:helpline/minutes",
    ]
