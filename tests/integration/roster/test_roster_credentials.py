"""What the roster keeps of listeners' credentials, and who may read its SQLite files.

The roster holds the SIP digest Asterisk needs (HA1), never a password, and its files are the service
user's only: 0600 files (the database, its -wal and -shm) in a 0700 folder.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from helpline_pbx.phones import sip_ha1
from helpline_pbx.roster.database import alembic_config, make_engine, upgrade
from helpline_pbx.roster.repository import Roster


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The umask a service usually inherits: without care its files would be world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _bytes_of(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())


@pytest.mark.usefixtures("loose_umask")
async def test_roster_files_are_private_while_the_service_writes(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    url = f"sqlite+aiosqlite:///{folder / 'roster.db'}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        roster = Roster(engine)
        await roster.add_listener("Camille", "camille", "volunteer")
        # While the engine is open, SQLite keeps its -wal and -shm beside the database.
        names = sorted(path.name for path in folder.iterdir())
        assert names == ["roster.db", "roster.db-shm", "roster.db-wal"]
        assert {name: _mode(folder / name) for name in names} == dict.fromkeys(names, 0o600)
        assert _mode(folder) == 0o700
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("loose_umask")
async def test_an_existing_world_readable_roster_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "roster.db"
    await upgrade(f"sqlite+aiosqlite:///{path}")
    path.chmod(0o644)
    (tmp_path / "roster.db-wal").write_bytes(b"")
    (tmp_path / "roster.db-wal").chmod(0o644)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await engine.dispose()
    assert _mode(path) == 0o600
    assert _mode(tmp_path / "roster.db-wal") == 0o600


async def test_no_password_is_stored_only_its_digest(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    url = f"sqlite+aiosqlite:///{folder / 'roster.db'}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        roster = Roster(engine)
        added = await roster.add_listener("Camille", "camille", "volunteer")
        renewed = await roster.edit_listener("camille", regenerate_secret=True)
        assert added.sip_password
        assert renewed.sip_password
        stored = await roster.get_listener("camille")
        assert stored.sip_password is None
        assert stored.sip_ha1 == sip_ha1("camille", renewed.sip_password)
        on_disk = _bytes_of(folder)
    finally:
        await engine.dispose()
    on_disk += _bytes_of(folder)
    assert added.sip_password.encode() not in on_disk
    assert renewed.sip_password.encode() not in on_disk
    assert stored.sip_ha1.encode() in on_disk


def _to(connection: Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_the_migration_turns_stored_passwords_into_digests(tmp_path: Path) -> None:
    path = tmp_path / "roster.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_to, url, "0007")
    await engine.dispose()
    password = "an-old-clear-password-0123456789"
    with sqlite3.connect(path) as plain:
        plain.execute(
            "INSERT INTO listeners (id, pseudonym, endpoint, sip_secret, role, active, state, state_changed_at,"
            " created_at, updated_at, skills, languages, presence, trainee, monitoring_consent)"
            " VALUES ('l-00000001', 'Old', 'old-phone', ?, 'volunteer', 1, 'offline', '2025-01-01 00:00:00',"
            " '2025-01-01 00:00:00', '2025-01-01 00:00:00', '[]', '[\"fr\"]', 'off', 0, 0)",
            (password,),
        )
    plain.close()
    assert password.encode() in path.read_bytes() + _wal(path)

    await upgrade(url)

    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {column["name"] for column in inspect(sync).get_columns("listeners")}
            )
        assert "sip_secret" not in columns
        migrated = await Roster(engine).get_listener("old-phone")
    finally:
        await engine.dispose()
    assert migrated.sip_ha1 == sip_ha1("old-phone", password)
    # Neither the database nor its WAL keeps the old password in a free page.
    assert password.encode() not in path.read_bytes() + _wal(path)


def _wal(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""
