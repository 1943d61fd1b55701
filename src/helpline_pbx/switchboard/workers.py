"""Ordered background work, one lane per key.

Everything about one call runs in order on that call's lane, and everything that writes one listener's
row (claims and state changes) on that listener's lane, so a claim never overtakes the write that made the
listener available. Different lanes run concurrently: a slow REST call for one caller never delays another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[None]]


class Lanes:
    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.failures = 0

    def submit(self, key: str, job: Job) -> None:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._idle.clear()
        queue.put_nowait(job)

    async def _drain(self, key: str, queue: asyncio.Queue[Job]) -> None:
        while not queue.empty():
            job = queue.get_nowait()
            try:
                await job()
            except Exception:
                # A failed job must not stop the lane: later work for the same call still matters.
                self.failures += 1
                log.exception("lane_job_failed", lane=key)
        del self._queues[key]
        if not self._queues:
            self._idle.set()

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
