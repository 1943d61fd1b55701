"""How many ARI requests may be in flight at once, and the queue of those waiting for their turn.

Asterisk's HTTP server turns away every connection over its `sessionlimit` (http.conf): a burst of requests
over it loses some of them (with 1,000 callers waiting, one keep-alive round lost hundreds). The pool keeps
the service's own requests under it: at most `size` in flight, the others queued in their order of arrival,
and one that waits longer than `wait_limit` fails with a clear error (`RequestQueueTimeout`), never
silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

# Asterisk's own default `sessionlimit` (http.conf): what a service told nothing else assumes.
DEFAULT_SESSION_LIMIT = 100
# Sessions of Asterisk's limit the pool leaves to others: the service's event WebSocket, `asterisk.sh
# status`, an operator's curl, the CLI. A quarter of the limit, and never fewer than four.
MIN_SPARE_SESSIONS = 4


def pool_size(session_limit: int) -> int:
    """The requests one service may have in flight, from Asterisk's HTTP session limit (the one setting)."""
    if session_limit < MIN_SPARE_SESSIONS + 1:
        raise ValueError(f"an HTTP session limit of {session_limit} leaves no room for requests")
    return session_limit - max(MIN_SPARE_SESSIONS, session_limit // 4)


class RequestQueueTimeout(Exception):
    """A request waited `waited` seconds for a free slot without getting one."""

    def __init__(self, waited: float, queued: int) -> None:
        super().__init__(f"waited {waited:.1f}s for one of the pool's slots ({queued} queued)")
        self.waited = waited
        self.queued = queued


@dataclass(slots=True)
class PoolFigures:
    """Since the last report: the most requests in flight and queued at once, and the longest wait."""

    in_flight: int
    peak: int
    queued_peak: int
    longest_wait: float
    served: int


class RequestPool:
    def __init__(self, size: int, wait_limit: float) -> None:
        if size < 1:
            raise ValueError("a request pool needs at least one slot")
        self.size = size
        self.wait_limit = wait_limit
        self.in_flight = 0
        # Futures of the requests waiting, oldest first; each is resolved when a slot is handed to it.
        self._queue: deque[asyncio.Future[None]] = deque()
        self._peak = 0
        self._queued_peak = 0
        self._longest_wait = 0.0
        self._served = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the request sent inside; raises RequestQueueTimeout after `wait_limit`."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def release_later(self, delay: float) -> None:
        """Give the slot back only after `delay` seconds: for a request we stopped waiting for, which
        Asterisk may still be working on (its session still counts against its limit until it is done)."""
        asyncio.get_running_loop().call_later(delay, self.release)

    async def acquire(self) -> None:
        if self.in_flight < self.size and not self._queue:
            self._taken(0.0)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        self._queued_peak = max(self._queued_peak, len(self._queue))
        queued_at = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.wait_limit)
        except TimeoutError:
            if turn.done():
                # Handed a slot just as the wait ran out: keep it rather than lose the hand-over.
                self._taken(time.monotonic() - queued_at, handed=True)
                return
            self._queue.remove(turn)
            raise RequestQueueTimeout(time.monotonic() - queued_at, len(self._queue)) from None
        except asyncio.CancelledError:
            if turn.done():
                self._release_handed()  # the slot handed to us goes on to the next in line
            else:
                self._queue.remove(turn)
            raise
        self._taken(time.monotonic() - queued_at, handed=True)

    def _taken(self, waited: float, *, handed: bool = False) -> None:
        # A handed slot was counted in flight by the release that passed it on.
        if not handed:
            self.in_flight += 1
        self._peak = max(self._peak, self.in_flight)
        self._longest_wait = max(self._longest_wait, waited)

    def release(self) -> None:
        self._served += 1
        self._release_handed()

    def _release_handed(self) -> None:
        # Pass the slot straight to the oldest waiter, so a newcomer never overtakes the queue.
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.in_flight -= 1

    def take_figures(self) -> PoolFigures:
        figures = PoolFigures(
            in_flight=self.in_flight,
            peak=self._peak,
            queued_peak=self._queued_peak,
            longest_wait=round(self._longest_wait, 3),
            served=self._served,
        )
        self._reset_figures()
        return figures

    def _reset_figures(self) -> None:
        self._peak = self.in_flight
        self._queued_peak = len(self._queue)
        self._longest_wait = 0.0
        self._served = 0
