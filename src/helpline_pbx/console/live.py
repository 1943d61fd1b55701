"""The live board's feed: it watches the core's decisions and pushes a fresh board to every open page.

A decision marks the board stale; the feed rebuilds it at most every PUSH_INTERVAL (so a surge of events
costs a few snapshots a second, not one per event) and at least every TICK (waits and rests count down).
Today's ended calls are kept in memory from the records the core makes, so a call that ends shows at once;
the roster's records (other instances' too) are read again every RELOAD_TODAY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.console.board import Board, LineInfo, ListenerInfo, StateClock, build_board
from helpline_pbx.console.statistics import CallFacts, LineRules, Thresholds
from helpline_pbx.core import Command, Event
from helpline_pbx.core.commands import RecordCall, RequestDebrief
from helpline_pbx.core.queue import CallQueue
from helpline_pbx.lines.snapshots import LineSnapshot
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.tables import CallRecord, Debrief
from helpline_pbx.switchboard.calls.legs import LegBook

log = structlog.get_logger(__name__)

PUSH_INTERVAL = 0.25
TICK = 1.0
RELOAD_TODAY = 30.0
MAX_SUBSCRIBERS = 50
# The board's day: midnight in the line's zone (the association's, for the total).
DEFAULT_ZONE = "Europe/Paris"


class LiveBoard:
    def __init__(
        self,
        *,
        queue: CallQueue,
        book: LegBook,
        lines: Callable[[], list[LineSnapshot]],
        listeners: Callable[[], dict[str, ListenerSnapshot]],
        engine: AsyncEngine,
        defaults: Thresholds,
        zone: str = DEFAULT_ZONE,
    ) -> None:
        self._queue = queue
        self._book = book
        self._lines = lines
        self._listeners = listeners
        self._engine = engine
        self._defaults = defaults
        self._zone = ZoneInfo(zone)
        self._clock = StateClock()
        self._stale = asyncio.Event()
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._ended: dict[str, CallFacts] = {}
        self._day: str = ""
        self._open_debriefs = 0
        self._codes: dict[str, str] = {}
        self._reload = True

    # -- inputs

    def on_decision(self, event: Event, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, RecordCall) and not command.record.practice:
                record = command.record
                self._ended[record.call_id] = CallFacts(
                    line=record.line,
                    queued_at=datetime.fromtimestamp(record.queued_at, UTC),
                    outcome=record.outcome,
                    wait_seconds=record.wait_seconds,
                    talk_seconds=record.talk_seconds,
                )
            elif isinstance(command, RequestDebrief):
                self._open_debriefs += 1
        self._stale.set()

    def touch(self) -> None:
        """Something the core does not decide changed (a debrief handled, the roster): read it again."""
        self._reload = True
        self._stale.set()

    # -- outputs

    def board(self, now: float | None = None) -> Board:
        now = time.time() if now is None else now
        for call in self._book.calls():
            self._codes[call.call_id] = call.code
        calls = self._queue.calls()
        live = {c.call_id for c in calls}
        if len(self._codes) > 2 * len(live) + 100:
            # Codes of calls that ended are forgotten (a listener resting still shows theirs for a while).
            self._codes = {k: v for k, v in self._codes.items() if k in live}
        lines = {}
        for line in self._lines():
            lines[line.name] = LineInfo(
                name=line.name,
                label=line.label,
                open=line.active and line.hours.is_open(datetime.fromtimestamp(now, UTC)),
                thresholds=LineRules.of_line(line, self._defaults).thresholds,
            )
        listeners = self._listeners()
        roster = {lid: ListenerInfo(x.pseudonym, str(x.role)) for lid, x in listeners.items()}
        board = build_board(
            now=now,
            calls=calls,
            listeners=self._queue.listeners(),
            codes=self._codes,
            lines=lines,
            roster=roster,
            ended_today=list(self._ended.values()),
            open_debriefs=self._open_debriefs,
            clock=self._clock,
            first_seen={lid: x.state_changed_at for lid, x in listeners.items()},
        )
        return board

    async def updates(self) -> AsyncGenerator[str, None]:
        """Each board as JSON, the current one first, for as long as the reader stays."""
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            raise RuntimeError("too many live pages open")
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=4)
        self._subscribers.add(queue)
        try:
            yield _json(self.board())
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    # -- the feed

    async def run(self) -> None:
        last_reload = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), TICK)
            self._stale.clear()
            if self._reload or time.monotonic() - last_reload > RELOAD_TODAY:
                self._reload = False
                last_reload = time.monotonic()
                await self._reload_today()
            if self._subscribers:
                text = _json(self.board())
                for queue in list(self._subscribers):
                    if queue.full():
                        # A page that stopped reading misses boards, never delays the others.
                        with contextlib.suppress(asyncio.QueueEmpty):
                            queue.get_nowait()
                    queue.put_nowait(text)
            await asyncio.sleep(PUSH_INTERVAL)

    async def _reload_today(self) -> None:
        now = datetime.now(self._zone)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        query = select(
            CallRecord.call_id, CallRecord.line, CallRecord.outcome, CallRecord.wait_seconds
        ).where(
            CallRecord.ended_at >= midnight.astimezone(UTC),
            CallRecord.practice.is_(False),
        )
        try:
            async with self._engine.connect() as connection:
                rows = (await connection.execute(query)).all()
                debriefs = await connection.scalar(
                    select(func.count()).select_from(Debrief).where(Debrief.handled_at.is_(None))
                )
        except Exception as exc:  # the board must outlive a database that is down: it shows what it has
            log.warning("board_reload_failed", error=type(exc).__name__)
            return
        day = midnight.date().isoformat()
        if day != self._day:
            self._ended.clear()
            self._day = day
        for call_id, line, queued_at, outcome, wait, talk in rows:
            self._ended[call_id] = CallFacts(
                line=line, queued_at=queued_at, outcome=outcome, wait_seconds=wait, talk_seconds=talk
            )
        self._open_debriefs = int(debriefs or 0)


def _json(board: Board) -> str:
    return json.dumps(board.as_json(), separators=(",", ":"))
