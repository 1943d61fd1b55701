"""The alembic migrations build, from nothing, exactly the schema the models declare."""

import asyncio
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from helpline_pbx.roster.database import alembic_config, make_engine, migrations_path, upgrade
from helpline_pbx.roster.tables import Base

REPO_ROOT = migrations_path().parent


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _schema_drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_from_empty_reaches_head_and_matches_models(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_table_names) == set()

        await upgrade(empty_database_url)

        async with engine.connect() as connection:
            tables = await connection.run_sync(_table_names)
            version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            drift = await connection.run_sync(_schema_drift)
        assert tables == {
            "alembic_version",
            "listeners",
            "call_records",
            "listener_events",
            "caller_bars",
            "caller_sightings",
            "recent_calls",
            "daily_stats",
            "lines",
            "line_numbers",
            "debriefs",
            "supervisions",
            "accounts",
            "console_sessions",
            "console_audit",
            "turned_away",
        }
        assert version == _head()
        assert drift == []
    finally:
        await engine.dispose()


async def test_upgrade_twice_changes_nothing(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            versions = (
                (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            )
        assert versions == [_head()]
    finally:
        await engine.dispose()


async def test_instances_upgrading_together_do_not_collide(empty_database_url: str) -> None:
    await asyncio.gather(*(upgrade(empty_database_url) for _ in range(3)))
    engine = make_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(_schema_drift)
        assert drift == []
    finally:
        await engine.dispose()


def test_alembic_cli_upgrades_with_url_from_command_line(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url=sqlite+aiosqlite:///{database}", "upgrade", "head"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"-> {_head()}" in completed.stderr


async def test_connections_opening_a_new_sqlite_file_together_all_get_in(tmp_path: Path) -> None:
    """Eight engines open a brand-new SQLite file at once, sixty times: switching it to WAL never fails with
    "database is locked" (it did about once in thirty files, which made instances upgrading together
    collide now and then)."""

    async def touch(url: str) -> None:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        finally:
            await engine.dispose()

    for n in range(60):
        url = f"sqlite+aiosqlite:///{tmp_path / f'new-{n}.db'}"
        await asyncio.gather(*(touch(url) for _ in range(8)))
