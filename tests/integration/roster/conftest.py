"""Real databases for the roster tests: a temp-file SQLite one and a PostgreSQL one.

PostgreSQL gets fresh, uniquely named databases for this test session, dropped at its end.
When the server cannot be reached the PostgreSQL tests are skipped with the reason, except
under CI=true where they fail: CI must never pass by skipping them.
"""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.tables import Base

PG_HOST = os.environ.get("HELPLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HELPLINE_TEST_PG_PORT", "5432"))
PG_USERS = ("postgres", "root")
PG_MAINTENANCE_DATABASES = ("postgres", "test")
ROSTER_TABLES = tuple(Base.metadata.tables)

T = TypeVar("T")


def run_outside_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop in another thread.

    Session fixtures are synchronous, and asyncio.run() in this thread would reset the event
    loop pytest-asyncio manages.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@dataclass
class PostgresServer:
    user: str
    maintenance_database: str
    created: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{PG_HOST}:{PG_PORT}/{database}"

    async def _admin(self, statement: str) -> None:
        connection = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=self.user, database=self.maintenance_database
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"helpline_roster_test_{uuid.uuid4().hex[:12]}"
        run_outside_loop(lambda: self._admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url(name)

    def drop_created(self) -> None:
        async def drop_all() -> None:
            for name in self.created:
                # FORCE ends connections a failed test may have left open.
                await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        run_outside_loop(drop_all)
        self.created.clear()


async def _find_postgres() -> PostgresServer | str:
    """The first user and maintenance database that accept us, or why none did."""
    last_failure = ""
    for user in PG_USERS:
        for database in PG_MAINTENANCE_DATABASES:
            try:
                connection = await asyncpg.connect(
                    host=PG_HOST, port=PG_PORT, user=user, database=database, timeout=5
                )
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                last_failure = f"{type(exc).__name__}: {exc}"
                continue
            await connection.close()
            return PostgresServer(user=user, maintenance_database=database)
    return f"users {', '.join(PG_USERS)} all refused; last error {last_failure}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    found = run_outside_loop(_find_postgres)
    if isinstance(found, str):
        reason = f"PostgreSQL unreachable on {PG_HOST}:{PG_PORT} ({found})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        print(f"skipping PostgreSQL roster tests: {reason}")
        pytest.skip(reason)
    yield found
    found.drop_created()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's migrated PostgreSQL database (emptied before each test)."""
    url = postgres_server.create_database()
    run_outside_loop(lambda: upgrade(url))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies, so alembic runs once per session."""
    path = tmp_path_factory.mktemp("roster-template") / "roster.db"
    run_outside_loop(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "roster.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A migrated database with empty roster tables, on each backend."""
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no schema at all, on each backend."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
async def engine(database_url: str, backend: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    if backend == "postgres":
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(ROSTER_TABLES)} RESTART IDENTITY"))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def roster(engine: AsyncEngine) -> Roster:
    return Roster(engine)
