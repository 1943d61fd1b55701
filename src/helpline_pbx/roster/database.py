"""Engines, sessions and schema upgrades for the roster database.

URLs look like `sqlite+aiosqlite:///path/to/roster.db` or `postgresql+asyncpg://user@host/db`.
"""

import asyncio
import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from helpline_pbx.roster.errors import DatabaseUnavailable

DEFAULT_BUSY_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 5.0
MIGRATION_BUSY_TIMEOUT = 120.0


def make_engine(
    url: str,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    echo: bool = False,
) -> AsyncEngine:
    """Create an engine tuned for the roster's short, concurrent transactions.

    busy_timeout is how long SQLite waits for another writer before reporting "database is
    locked"; connect_timeout bounds how long PostgreSQL connects may hang.
    """
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            protect_sqlite_file(path)
        engine = create_async_engine(url, echo=echo)
        _configure_sqlite(engine.sync_engine, busy_timeout)
        return engine
    if url.startswith("postgresql"):
        return create_async_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            connect_args={"timeout": connect_timeout},
        )
    return create_async_engine(url, echo=echo, pool_pre_ping=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def protect_sqlite_file(path: Path) -> None:
    """Make the roster's file readable by its owner only, before SQLite opens it.

    The roster holds listeners' credentials (digests) and their audit: the folder SQLite is to create is
    made 0700, the file is created 0600 (SQLite gives its -wal and -shm files the database file's mode),
    and an existing file, -wal or -shm is tightened to 0600. An existing folder is left as it is: it may be
    shared (the service makes its own state folder 0700 itself).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(file.stat().st_mode) & 0o177:
                file.chmod(0o600)


def _use_wal(cursor: Any, busy_timeout: float) -> None:
    """Put the file in WAL mode (it stays so): done once, by whichever connection comes first.

    SQLite does not always wait busy_timeout for the lock a journal-mode change needs: connections opening
    a new file together (instances upgrading it at once) saw "database is locked" at once. So look first,
    and on that error look again: another connection has usually just switched it.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            row = cursor.fetchone()
            if row is not None and str(row[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's own OperationalError class, behind the adapter
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        # Only under that contention, on a new file's first connections: a short blocking pause.
        time.sleep(0.02)


def _configure_sqlite(engine: Engine, busy_timeout: float, *, autocheckpoint: bool = True) -> None:
    busy_ms = max(0, round(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # The driver's implicit BEGIN starts transactions only at the first write, so reads
        # escape the transaction; switch it off and begin explicitly below instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # The busy timeout first: switching a new file to WAL takes a lock another
            # connection may hold, and without it that fails at once with "database is locked".
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            _use_wal(cursor, busy_timeout)
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the service or of
            # Asterisk loses nothing; a power cut may lose the last commits, never the file's integrity.
            # Each commit's fsync would otherwise cost more than the call decision it records.
            cursor.execute("PRAGMA synchronous=NORMAL")
            if not autocheckpoint:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, not left in free pages (credentials, audit past retention).
            cursor.execute("PRAGMA secure_delete=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes fails at once with "database is locked" instead of waiting busy_timeout.
        # Roster transactions are few and short, so serialising them costs nothing.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose loaded rows stay readable after commit, to build snapshots from."""
    return async_sessionmaker(engine, expire_on_commit=False)


def migrations_path() -> Path:
    """The alembic script folder: migrations/ at the root of the checkout beside src/."""
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: str, *, script_location: Path | None = None) -> Config:
    """An alembic configuration that needs no ini file; env.py reads the URL from it."""
    location = script_location or migrations_path()
    if not (location / "env.py").is_file():
        raise FileNotFoundError(f"no alembic environment at {location}")
    config = Config()
    config.set_main_option("script_location", str(location))
    config.attributes["url"] = url
    return config


async def upgrade(url: str, *, script_location: Path | None = None) -> None:
    """Bring the schema at `url` to the newest revision, inside the running event loop."""
    config = alembic_config(url, script_location=script_location)
    # Instances upgrading together wait for each other's whole migration, which on a busy
    # machine takes longer than a roster transaction ever should.
    engine = make_engine(url, busy_timeout=MIGRATION_BUSY_TIMEOUT)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on, config)
    finally:
        await engine.dispose()
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is not None:
        # The WAL still holds pages a migration rewrote (clear passwords before 0008): empty it, outside
        # any transaction (the engine begins every one IMMEDIATE).
        plain = sqlite3.connect(path)
        try:
            plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            plain.close()


# Any fixed number: it only has to be the same in every instance of the service.
_MIGRATION_LOCK_KEY = 0x4C49_5354


def _upgrade_on(connection: Connection, config: Config) -> None:
    if connection.dialect.name == "postgresql":
        # Instances starting together would otherwise race to create the same tables; the
        # lock is released with the transaction. SQLite's BEGIN IMMEDIATE already serialises.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
    # env.py uses this connection instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade_sync(url: str, *, script_location: Path | None = None) -> None:
    """upgrade() for callers without an event loop (CLI, test setup)."""
    asyncio.run(upgrade(url, script_location=script_location))


_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)


def describe_error(exc: BaseException) -> str:
    """The driver's message only: a DBAPIError's own text carries the statement and its parameters
    (secrets among them)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return f"{type(cause).__name__}: {cause}"


@contextlib.contextmanager
def unavailable_as_roster_error() -> Iterator[None]:
    """A database that is down, locked or lost becomes DatabaseUnavailable (its driver's message only)."""
    try:
        yield
    except _UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"roster database unavailable: {describe_error(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(f"roster database connection lost: {describe_error(exc)}") from exc
        raise


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One short transaction; a database that is down or locked becomes DatabaseUnavailable."""
    with unavailable_as_roster_error():
        async with sessions.begin() as session:
            yield session


@contextlib.contextmanager
def sync_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """transaction() for a synchronous engine (the scribe's)."""
    with unavailable_as_roster_error(), sessions.begin() as session:
        yield session


def sync_sqlite_engine(
    engine: AsyncEngine, *, busy_timeout: float | None = None, autocheckpoint: bool = True
) -> Engine | None:
    """A synchronous engine on the same SQLite file as `engine`, configured alike (busy_timeout: its
    own, else the default), for work done without the async driver; None for any other database (or
    SQLite in memory, which a second engine would not share). autocheckpoint=False leaves the WAL's
    checkpoints to others: a commit on this engine then never copies pages back into the file."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or sqlite_path(url.render_as_string(hide_password=False)) is None:
        return None
    sync = create_engine(url.set(drivername="sqlite"))
    timeout = DEFAULT_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
    _configure_sqlite(sync, timeout, autocheckpoint=autocheckpoint)
    return sync


class Repository:
    """What every part of a repository shares: the engine, and one short transaction per call."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return transaction(self._sessions)


def rowcount(result: Result[Any]) -> int:
    # Only DML reaches here, whose results are cursor results with a row count.
    return cast(CursorResult[Any], result).rowcount
