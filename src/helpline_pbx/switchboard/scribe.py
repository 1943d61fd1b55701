"""The roster's writes, in the order the service decided them, batched behind the calls.

A call makes a dozen writes (claims, states, the record, the caller's sighting), and each cost more than the
decision it records: a transaction, and with SQLite's async driver a hop to its thread and back for every
statement. One writer takes whatever has queued since its last commit and writes it in one transaction: with
SQLite on a synchronous connection (on the event loop while nobody else holds the write lock, else on a thread
of its own); with PostgreSQL through the async session's run_sync. The writes themselves are
roster/writes.py's plain functions of a session. Under a surge the commits stay few while the writes are many,
and at rest a write waits for nothing but its own commit.

The guarantees the lanes gave stay: one queue, so the writes for a listener (and every other) keep their
order, and a claim never overtakes the write that freed the listener; a database that is locked or down
keeps the queue waiting and retrying, never dropping; a write that fails for a reason of its own (a listener
deleted meanwhile) is written again alone, so it cannot take its batch-mates with it. A claim is asked, not
written: the caller waits for its answer (in the lane of the listener being offered, never the event loop),
and a database down for longer than the asker's patience answers it DatabaseUnavailable.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from helpline_pbx.roster.database import (
    session_factory,
    sync_sqlite_engine,
    sync_transaction,
    transaction,
)
from helpline_pbx.roster.errors import DatabaseUnavailable, RosterError

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Writes per transaction at most: a long batch holds SQLite's write lock from other writers (the CLI), and
# the event loop while it is written (a few milliseconds at this size).
BATCH_SIZE = 64
RETRY_FIRST_DELAY = 0.2
RETRY_MAX_DELAY = 5.0
# How long an asked write (a claim) waits for a database that is down before it is answered "unavailable"
# and dropped: a caller must not wait on a listener the roster cannot reserve.
ASK_PATIENCE = 30.0
# Batches between two checkpoints of SQLite's WAL (at a few pages a batch, about SQLite's own 1,000 pages).
CHECKPOINT_EVERY = 256


@dataclass(slots=True)
class _Write(Generic[T]):
    run: Callable[[Session], T]
    # Logged (with the error's code) when the write fails for a reason of its own.
    what: str
    fields: dict[str, Any]
    answer: asyncio.Future[T] | None = None
    queued_at: float = field(default_factory=time.monotonic)


class Scribe:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)
        # SQLite: batches are written on the event loop by a connection that never waits for the write
        # lock (busy timeout 0) nor checkpoints the WAL; when another connection holds the lock, the
        # batch waits for it on a thread of its own, by a connection that waits as every other does,
        # which also checkpoints the WAL every CHECKPOINT_EVERY batches.
        quick = sync_sqlite_engine(engine, busy_timeout=0, autocheckpoint=False)
        patient = sync_sqlite_engine(engine)
        self._quick = None if quick is None else sessionmaker(quick, expire_on_commit=False)
        self._patient = None if patient is None else sessionmaker(patient, expire_on_commit=False)
        # One thread: SQLite writes one transaction at a time anyway, and order is the point.
        self._thread = None if patient is None else ThreadPoolExecutor(1, thread_name_prefix="scribe")
        self._since_checkpoint = 0
        self._queue: deque[_Write[Any]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.written = 0
        # Batches tried again because the database was down or locked (a metric).
        self.retries = 0
        # Set while the database refuses the writes (locked or down), cleared once a batch is written.
        self.stalled = asyncio.Event()

    def write(self, run: Callable[[Session], object], what: str, **fields: Any) -> None:
        """Queue a write (a roster.writes function of a session, its arguments bound); its failure is
        logged as `what` with `fields` (which must name no caller)."""
        self._put(_Write(run, what, fields))

    def ask(self, run: Callable[[Session], T], what: str, **fields: Any) -> asyncio.Future[T]:
        """Queue a write whose result the caller awaits, in order with the other writes. The future
        holds the result, or the error that stopped it (DatabaseUnavailable past ASK_PATIENCE)."""
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(_Write(run, what, fields, answer))
        return answer

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def _put(self, item: _Write[Any]) -> None:
        if self._closing and self._task is None:
            raise RuntimeError("the scribe is closed")
        self._queue.append(item)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="scribe")

    async def wait_idle(self) -> None:
        """Until every write queued so far is written (or given up)."""
        await self._idle.wait()

    async def close(self, patience: float = 10.0) -> None:
        """Write what is queued (within `patience` seconds), then stop; what is left is logged by count."""
        self._closing = True
        try:
            async with asyncio.timeout(patience):
                await self.wait_idle()
        except TimeoutError:
            log.error("roster_writes_not_saved", count=len(self._queue))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                items = self._take()
                if items:
                    await self._write_batch(items)
            self._idle.set()

    def _take(self) -> list[_Write[Any]]:
        items: list[_Write[Any]] = []
        while self._queue and len(items) < BATCH_SIZE:
            items.append(self._queue.popleft())
        return items

    async def _write_batch(self, items: list[_Write[Any]]) -> None:
        delay = RETRY_FIRST_DELAY
        while items:
            try:
                results = await self._commit(items)
            except DatabaseUnavailable as exc:
                # Nothing of the batch was written: the same batch again, in the same order, once the
                # database is back. Later writes queue behind it.
                log.warning("roster_unavailable", error=exc.code, waiting=len(items) + len(self._queue))
                self.stalled.set()
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
                items = _past_patience(items, exc)
                continue
            except Exception:
                # One write failed for a reason of its own and rolled the batch back: each alone.
                for item in items:
                    await self._write_alone(item)
                return
            self.stalled.clear()
            self.batches += 1
            self.written += len(items)
            for item, result in zip(items, results, strict=True):
                _resolve(item, result)
            return

    async def _commit(self, items: list[_Write[Any]]) -> list[Any]:
        runs = [item.run for item in items]
        if self._quick is None or self._patient is None or self._thread is None:
            async with transaction(self._sessions) as session:
                return await session.run_sync(lambda sync: [run(sync) for run in runs])
        loop = asyncio.get_running_loop()
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            await loop.run_in_executor(self._thread, self._checkpoint)
        try:
            # Here, on the event loop: a batch is a fraction of a millisecond, less than the hop to a
            # thread and back, which waits for the interpreter while the loop is busy.
            return self._commit_sync(self._quick, runs)
        except DatabaseUnavailable as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        # Another connection holds the write lock: wait for it on the thread, never on the loop.
        return await loop.run_in_executor(self._thread, self._commit_sync, self._patient, runs)

    def _commit_sync(
        self, sessions: sessionmaker[Session], runs: list[Callable[[Session], Any]]
    ) -> list[Any]:
        with sync_transaction(sessions) as session:
            return [run(session) for run in runs]

    def _checkpoint(self) -> None:
        # PASSIVE: copies what no reader still needs, never waits for one.
        assert self._patient is not None
        with self._patient() as session:
            session.connection().exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    async def _write_alone(self, item: _Write[Any]) -> None:
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                results = await self._commit([item])
            except DatabaseUnavailable as exc:
                if not _past_patience([item], exc):
                    return
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
                continue
            except Exception as exc:
                # The code of a roster error, else the type only: a driver's message quotes parameters.
                code = exc.code if isinstance(exc, RosterError) else type(exc).__name__
                log.warning(item.what, error=code, **item.fields)
                if item.answer is not None and not item.answer.done():
                    item.answer.set_exception(exc)
                return
            self.batches += 1
            self.written += 1
            _resolve(item, results[0])
            return


def _past_patience(items: list[_Write[Any]], error: DatabaseUnavailable) -> list[_Write[Any]]:
    """The items still to write: asked ones that waited past ASK_PATIENCE get the error instead."""
    now = time.monotonic()
    kept: list[_Write[Any]] = []
    for item in items:
        if item.answer is not None and now - item.queued_at > ASK_PATIENCE:
            if not item.answer.done():
                item.answer.set_exception(error)
            log.warning(item.what, error=error.code, **item.fields)
            continue
        kept.append(item)
    return kept


def _resolve(item: _Write[Any], result: object) -> None:
    if item.answer is not None and not item.answer.done():
        item.answer.set_result(result)
