"""A locked or unreachable roster database: decisions' writes wait and retry within a bound, then give up
with a clear error; nothing is half-written."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.errors import DatabaseUnavailable
from helpline_pbx.roster.repository import Roster
from helpline_pbx.switchboard.retry import with_retry


@pytest.fixture
async def sqlite_roster(tmp_path: Path) -> tuple[Roster, Path]:
    path = tmp_path / "roster.db"
    await upgrade(f"sqlite+aiosqlite:///{path}")
    # A short busy timeout, so the lock is felt as "unavailable" quickly.
    return Roster(make_engine(f"sqlite+aiosqlite:///{path}", busy_timeout=0.1)), path


async def test_a_claim_waits_for_a_locked_sqlite_database_and_then_succeeds(
    sqlite_roster: tuple[Roster, Path],
) -> None:
    roster, path = sqlite_roster
    listener = await roster.add_listener("Camille", "camille", "volunteer")
    await roster.set_state(listener.id, "available", now=datetime.now(UTC))

    # Another process holds the write lock (a backup, an admin's sqlite3 shell...).
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    released = asyncio.get_running_loop().call_later(0.8, blocker.execute, "COMMIT")
    started = time.monotonic()
    try:
        claimed = await with_retry(lambda: roster.claim(listener.id, "c-1", datetime.now(UTC)), retry_for=10)
    finally:
        released.cancel()
        blocker.close()
    assert claimed is True
    assert time.monotonic() - started >= 0.7
    assert (await roster.get_listener(listener.id)).state_call_id == "c-1"
    await roster.engine.dispose()


async def test_retrying_gives_up_after_its_bound_with_the_database_error(tmp_path: Path) -> None:
    attempts = 0

    async def always_down() -> None:
        nonlocal attempts
        attempts += 1
        raise DatabaseUnavailable("roster database unavailable: ConnectionRefusedError")

    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable):
        await with_retry(always_down, retry_for=1.0)
    assert attempts >= 3
    assert time.monotonic() - started < 3.0
