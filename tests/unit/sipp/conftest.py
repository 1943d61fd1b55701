"""Fixtures for running SIPp scenarios against each other on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.sipp import SippProcess

HERE = Path(__file__).resolve().parent

SippFactory = Callable[..., SippProcess]


def _sipp_children() -> list[int]:
    """Pids of this test process's children that are (or were, as zombies) SIPp."""
    me = os.getpid()
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text()
        except OSError:
            continue
        # comm is parenthesised and may hold spaces: split after its closing parenthesis.
        comm = fields[fields.index("(") + 1 : fields.rindex(")")]
        ppid = int(fields[fields.rindex(")") + 2 :].split()[1])
        if comm == "sipp" and ppid == me:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[SippFactory]:
    """Start SippProcess runs whose traces land in tmp_path; all are stopped at teardown."""
    started: list[SippProcess] = []

    def start(scenario: str | Path, **options: Any) -> SippProcess:
        options.setdefault("workdir", tmp_path)
        process = SippProcess(scenario, **options).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(autouse=True)
def _no_sipp_survives() -> Iterator[None]:
    yield
    survivors = _sipp_children()
    assert survivors == [], f"SIPp processes outlived the test: {survivors}"


@pytest.fixture
def test_scenario() -> Callable[[str], Path]:
    """Test doubles that live beside these tests (registrar.xml, reinviting_listener.xml)."""

    def path(name: str) -> Path:
        return HERE / f"{name}.xml"

    return path
