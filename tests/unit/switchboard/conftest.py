"""The switchboard tests' helpline: a temp SQLite roster and a fake Asterisk, stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_asterisk import FakeAsterisk
from helpline_rig import Helpline, new_roster


@pytest.fixture
async def helpline(tmp_path: Path) -> AsyncIterator[Helpline]:
    roster, callers = await new_roster(tmp_path / "roster.db")
    line = Helpline(roster, callers, FakeAsterisk())
    try:
        yield line
    finally:
        await line.stop()
        await roster.engine.dispose()
