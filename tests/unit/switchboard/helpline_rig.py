"""A real Switchboard on a real SQLite roster, driven through the fake Asterisk.

`Helpline.settled()` returns once the switchboard handled every queued event and its lanes are idle, so
tests await what they expect instead of sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from fake_asterisk import (
    APP,
    CAUSE_NORMAL,
    WAIT,
    FakeAsterisk,
    FakeEvents,
    caller_args,
    channel_destroyed,
    channel_json,
    stasis_end,
    stasis_start,
)

from helpline_pbx.app import build_switchboard
from helpline_pbx.ari.models import StasisStart
from helpline_pbx.ari.stream import Connected, Disconnected, EventStream
from helpline_pbx.core import CallRecord, Command, Event, OfferCall, Policy, RecordCall
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.switchboard.runtime import Switchboard, SwitchboardConfig

# Timers long enough never to fire during a test unless the test says otherwise.
QUIET = Policy(
    ring_timeout=30.0,
    rest_after_call=30.0,
    missed_offer_delay=30.0,
    declined_offer_delay=30.0,
    # Pauses and shift breaks have tests of their own.
    max_missed_offers=0,
    shift_limits={},
)


# ---- what the core decided -----------------------------------------------------------------------------


@dataclass
class Decisions:
    log: list[tuple[Event, list[Command]]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: Event, commands: list[Command]) -> None:
        self.log.append((event, list(commands)))
        self._changed.set()

    def events(self) -> list[Event]:
        return [event for event, _ in self.log]

    def commands(self) -> list[Command]:
        return [command for _, commands in self.log for command in commands]

    def of(self, kind: type[Any]) -> list[Any]:
        return [c for c in [*self.events(), *self.commands()] if isinstance(c, kind)]

    def offers(self) -> list[OfferCall]:
        return [c for c in self.commands() if isinstance(c, OfferCall)]

    def records(self) -> list[CallRecord]:
        return [c.record for c in self.commands() if isinstance(c, RecordCall)]

    def describe(self) -> str:
        return "\n".join(f"{type(e).__name__} -> {[type(c).__name__ for c in cs]}" for e, cs in self.log)

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(WAIT):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"waited for {what}; decisions:\n{self.describe()}") from None


# ---- one helpline --------------------------------------------------------------------------------------


class Helpline:
    """A roster, a fake Asterisk, and (once started) a switchboard serving them."""

    def __init__(self, roster: Roster, callers: Callers, asterisk: FakeAsterisk) -> None:
        self.roster = roster
        self.callers = callers
        self.asterisk = asterisk
        self._boards: list[tuple[Switchboard, FakeEvents, asyncio.Task[None]]] = []
        self._serial = itertools.count(1)

    @property
    def board(self) -> Switchboard:
        return self._boards[-1][0]

    @property
    def events(self) -> FakeEvents:
        return self._boards[-1][1]

    @property
    def decisions(self) -> Decisions:
        # The switchboard registers observers of its own (the waiting room): find the test's recorder.
        return next(o for o in self.board.observers if isinstance(o, Decisions))

    async def add_listeners(self, *names: str) -> list[ListenerSnapshot]:
        """Volunteers on duty (logged in)."""
        added = [await self.roster.add_listener(name, name, "volunteer") for name in names]
        now = datetime.now(UTC)
        return [await self.roster.set_presence(x.id, "on", now=now) for x in added]

    async def start(self, policy: Policy = QUIET) -> Switchboard:
        """A fresh switchboard (as after a service restart), connected once."""
        config = SwitchboardConfig(
            app=APP,
            line_name="Écoute",
            fallback_context="helpline-fallback",
            roster_poll_interval=3600.0,
            drain_timeout=5.0,
            policy=policy,
            service_grace=60.0,
        )
        events = FakeEvents()
        board = build_switchboard(
            config,
            self.asterisk,
            cast(EventStream, events),
            self.roster,
            self.callers,
            Lines(self.roster.engine),
        )
        board.observers.append(Decisions())
        task = asyncio.create_task(board.run())
        self._boards.append((board, events, task))
        events.put(Connected(1))
        async with asyncio.timeout(WAIT):
            await board.connected.wait()
        await self.settled()
        return board

    async def reconnect(self) -> None:
        self.events.put(Disconnected(1, "connection_lost"), Connected(2))
        await self.settled()

    async def settled(self) -> None:
        """Every queued event handled and every lane idle (timers may still be pending)."""
        async with asyncio.timeout(WAIT):
            await self.events.drained()
            await self.board.executor.wait_idle()

    async def stop(self) -> None:
        for _board, events, task in self._boards:
            if not task.done():
                await events.close()
                async with asyncio.timeout(WAIT):
                    await task
        self._boards.clear()

    # -- callers and listeners as Asterisk reports them --

    def caller_channel(self) -> dict[str, Any]:
        """A new caller's channel from the trunk, ids shaped like Asterisk's unique ids."""
        n = next(self._serial)
        return channel_json(f"17409{n:05d}.{n}", f"PJSIP/trunk-{n:08x}", created=datetime.now(UTC))

    def call(self) -> dict[str, Any]:
        """A caller enters Stasis; their StasisStart is queued."""
        channel = self.caller_channel()
        self.asterisk.enter_stasis(channel)
        self.events.put(stasis_start(channel, caller_args()))
        return channel

    def channel(self, channel_id: str) -> dict[str, Any]:
        """A channel as Asterisk last described it, answered if it is a listener's leg."""
        seen = self.asterisk.seen[channel_id]
        return {**seen, "state": "Up"} if seen["dialplan"]["context"] == "from-listeners" else seen

    def answer(self, channel_id: str) -> StasisStart:
        """The listener's phone picked up: the originated leg enters Stasis."""
        parsed = self.board.book.parse_listener_channel(channel_id)
        assert parsed is not None, f"{channel_id} is no listener leg of ours"
        event = stasis_start(self.channel(channel_id), ["listener", parsed[0]])
        self.events.put(event)
        return event

    def hang_up(self, channel: dict[str, Any], cause: int = CAUSE_NORMAL) -> None:
        """A channel in Stasis ends on its own: Asterisk forgets it, reports StasisEnd then ChannelDestroyed."""
        self.asterisk.vanish(channel["id"])
        self.events.put(stasis_end(channel), channel_destroyed(channel, cause))

    def destroyed(self, channel_id: str, cause: int) -> None:
        """An originated leg that never answered ends (never in Stasis, so no StasisEnd)."""
        self.asterisk.vanish(channel_id)
        self.events.put(channel_destroyed(self.channel(channel_id), cause))

    # -- what is known --

    def call_id_of(self, caller: dict[str, Any]) -> str:
        leg = self.board.book.leg(caller["id"])
        assert leg is not None, "the switchboard has no call for this caller"
        return leg.call_id

    async def states(self, listeners: Iterable[ListenerSnapshot]) -> dict[str, str]:
        return {x.pseudonym: (await self.roster.get_listener(x.id)).state.value for x in listeners}


async def new_roster(path: Path, *, migrate: bool = True) -> tuple[Roster, Callers]:
    url = f"sqlite+aiosqlite:///{path}"
    if migrate:
        await upgrade(url)
    engine = make_engine(url)
    return Roster(engine), Callers(engine)
