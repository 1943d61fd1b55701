"""The PostgreSQL server running on this machine (127.0.0.1:5432, trust auth), for tests that need it.

Tests get fresh, uniquely named databases, dropped at the end of the session. When the server cannot be
reached they are skipped with the reason, except under CI=true where they fail: CI must never pass by
skipping them.
"""

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest

PG_HOST = os.environ.get("HELPLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HELPLINE_TEST_PG_PORT", "5432"))
PG_USERS = ("postgres", "root")
PG_MAINTENANCE_DATABASES = ("postgres", "test")

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
