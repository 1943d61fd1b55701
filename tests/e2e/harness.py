"""The service under test: a Switchboard run in-process against the real Asterisk, and a record of every
decision its core made, so a test awaits what it expects instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from helpline_pbx.agi.server import AgiServer
from helpline_pbx.app import build_switchboard
from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.stream import EventStream
from helpline_pbx.caller_memory import CallerMemory
from helpline_pbx.core import CallRecord, Command, Event, OfferCall, Policy, RecordCall
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.repository import Roster
from helpline_pbx.screening import Screener, ScreeningPolicy
from helpline_pbx.switchboard.runtime import Switchboard, SwitchboardConfig
from helpline_pbx.switchboard.scribe import Scribe
from helpline_pbx.tokens import KeyRing


@dataclass
class Decisions:
    """Every (event, commands) pair the core produced, with the time it happened."""

    log: list[tuple[float, Event, list[Command]]] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: Event, commands: list[Command]) -> None:
        self.log.append((time.monotonic(), event, commands))
        self.wall.append(time.time())
        self._changed.set()

    def describe(self) -> str:
        """The decisions so far, one per line, for assertion messages."""
        return "\n".join(
            f"{t:.3f} {type(e).__name__} -> {[type(c).__name__ for c in cs]}" for t, e, cs in self.log
        )

    def commands(self) -> list[Command]:
        return [c for _, _, cs in self.log for c in cs]

    def events(self) -> list[Event]:
        return [e for _, e, _ in self.log]

    def records(self) -> list[CallRecord]:
        return [c.record for c in self.commands() if isinstance(c, RecordCall)]

    def offers(self) -> list[OfferCall]:
        return [c for c in self.commands() if isinstance(c, OfferCall)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
        """Return once predicate() holds after some decision; fail saying `what` after `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"waited {timeout}s for {what or 'a condition'}; decisions:\n{self.describe()}"
            ) from None

    async def wait_records(self, count: int, timeout: float = 60.0) -> list[CallRecord]:
        await self.wait_for(lambda: len(self.records()) >= count, timeout, f"{count} finished calls")
        return self.records()


@dataclass
class RunningService:
    board: Switchboard
    roster: Roster
    ari: AriClient
    decisions: Decisions
    task: asyncio.Task[None]
    callers: Callers

    async def stop(self) -> None:
        await self.board.stop()
        await self.task


async def start_service(
    *,
    ari_url: str,
    user: str,
    password: str,
    app: str,
    roster: Roster,
    policy: Policy,
    keys_dir: Path,
    screening: ScreeningPolicy = ScreeningPolicy(),
    repeat_hint: bool = False,
    dids: tuple[str, ...] = (),
    agi_port: int = 4573,
) -> tuple[RunningService, contextlib.AsyncExitStack]:
    """A service taking `dids` on application `app`; each test gets its own app, number and screen port,
    so no call of one test can ever reach another test's service."""
    stack = contextlib.AsyncExitStack()
    callers = Callers(roster.engine)
    scribe = Scribe(roster.engine)
    stack.push_async_callback(scribe.close)
    memory = CallerMemory(callers, scribe, instance=app, keep=screening.longest_window)
    await memory.refresh()
    remembering = asyncio.create_task(memory.run())

    async def stop_remembering() -> None:
        # Awaited, not only cancelled: a refresh cut mid-query would otherwise answer a closed event loop from
        # aiosqlite's thread, after the test (a thread exception pinned on whichever test runs next).
        remembering.cancel()
        await asyncio.gather(remembering, return_exceptions=True)

    stack.push_async_callback(stop_remembering)
    screener = Screener(KeyRing(keys_dir), memory, screening)
    agi = AgiServer(screener.handle, "127.0.0.1", agi_port)
    await agi.start()
    stack.push_async_callback(agi.close)
    ari = await stack.enter_async_context(AriClient(ari_url, user, password))
    stream = await stack.enter_async_context(EventStream(ari_url, user, password, app))
    config = SwitchboardConfig(
        app=app,
        line_name="Écoute",
        fallback_context="helpline-fallback",
        roster_poll_interval=0.5,
        drain_timeout=30.0,
        policy=policy,
        repeat_hint=repeat_hint,
        dids=dids,
        agi_url=f"agi://127.0.0.1:{agi.port}/screen",
    )
    board = build_switchboard(config, ari, stream, roster, callers, Lines(roster.engine), scribe)
    decisions = Decisions()
    board.observers.append(decisions)
    task = asyncio.create_task(board.run())
    async with asyncio.timeout(15):
        await board.connected.wait()
    return RunningService(board, roster, ari, decisions, task, callers), stack


async def wait_configured(ari: AriClient, endpoint: str, timeout: float = 10.0) -> None:
    """Wait until the service has pushed the listener's account (auth, aor, then endpoint) to Asterisk: a
    phone that registers before that is refused, and a softphone does not try again at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await ari.get_endpoint("PJSIP", endpoint)
            return
        except AriNotFound:
            if time.monotonic() > deadline:
                raise AssertionError(f"the service never configured {endpoint} ({timeout}s)") from None
        await asyncio.sleep(0.05)


async def wait_registered(ari: AriClient, endpoint: str, timeout: float = 10.0) -> None:
    """Wait until Asterisk has a contact for the endpoint (the softphone registered)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = (await ari.get_endpoint("PJSIP", endpoint)).state
        except AriNotFound:
            state = None
        if state == "online":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"softphone {endpoint} did not register within {timeout}s (state {state})")
        # Asterisk sends no event for a registration to an app that is not subscribed to the endpoint.
        await asyncio.sleep(0.05)
