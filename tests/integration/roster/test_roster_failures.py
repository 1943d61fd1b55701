"""Database outages surface as DatabaseUnavailable, without leaking statements or secrets."""

import asyncio
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from helpline_pbx.roster.database import make_engine
from helpline_pbx.roster.errors import DatabaseUnavailable
from helpline_pbx.roster.repository import Roster


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_stopped_postgresql_is_unavailable() -> None:
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/roster")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await Roster(engine).list_listeners()
    finally:
        await engine.dispose()
    assert caught.value.code == "database_unavailable"


async def test_locked_sqlite_is_unavailable_after_the_busy_timeout(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    engine = make_engine(sqlite_url, busy_timeout=0.05)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(DatabaseUnavailable) as caught:
            await Roster(engine).add_listener("Secretive", "secretive", "volunteer")
        holder.execute("ROLLBACK")
        # Once the lock is gone the same engine works again.
        assert (await Roster(engine).add_listener("Calm", "calm", "volunteer")).endpoint == "calm"
    finally:
        holder.close()
        await engine.dispose()
    assert "locked" in str(caught.value)
    assert "INSERT" not in str(caught.value)
    assert "SELECT" not in str(caught.value)


async def _join_sqlite_workers() -> None:
    # aiosqlite stops a connection that failed to open without awaiting the stop: let its
    # worker thread finish while this test's loop still runs to receive the result.
    for worker in threading.enumerate():
        if "_connection_worker_thread" in worker.name:
            await asyncio.to_thread(worker.join, 5)
            assert not worker.is_alive()


async def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'roster.db'}")
    try:
        with pytest.raises(DatabaseUnavailable):
            await Roster(engine).list_listeners()
    finally:
        await engine.dispose()
        await _join_sqlite_workers()


@pytest.mark.postgres
async def test_postgresql_connections_killed_by_the_server_are_replaced(
    postgres_url: str,
) -> None:
    """A PostgreSQL restart drops pooled connections; the next call must reconnect by itself."""
    engine = make_engine(postgres_url)
    killer = make_engine(postgres_url)
    try:
        roster = Roster(engine)
        await roster.list_listeners()
        async with killer.begin() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert killed >= 1
        assert isinstance(await roster.list_listeners(), list)
    finally:
        await engine.dispose()
        await killer.dispose()
