"""The roster tests' real databases (a temp-file SQLite one and a PostgreSQL one), for the console's."""

from tests.integration.roster.conftest import (
    backend,
    database_url,
    empty_database_url,
    engine,
    postgres_server,
    postgres_url,
    roster,
    sqlite_template,
    sqlite_url,
)

__all__ = [
    "backend",
    "database_url",
    "empty_database_url",
    "engine",
    "postgres_server",
    "postgres_url",
    "roster",
    "sqlite_template",
    "sqlite_url",
]
