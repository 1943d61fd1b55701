"""Real databases for the roster tests: a temp-file SQLite one and a PostgreSQL one.

PostgreSQL gets fresh, uniquely named databases for this test session, dropped at its end.
When the server cannot be reached the PostgreSQL tests are skipped with the reason, except
under CI=true where they fail: CI must never pass by skipping them.
"""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.pg import PostgresServer, postgres_server, run_outside_loop

from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.tables import Base

__all__ = ["PostgresServer", "postgres_server", "run_outside_loop"]

ROSTER_TABLES = tuple(Base.metadata.tables)


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
