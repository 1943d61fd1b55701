"""`make demo` kept from rotting: its smoke mode starts the line with six SIPp listeners and a coordinator,
serves the console, and has a few SIPp calls answered, which the console's board counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import REPO, AsteriskUnderTest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
def test_the_demo_serves_a_board_that_counts_its_answered_calls(
    asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.load.demo", "--smoke", "--port", "0", "--keep", str(tmp_path / "demo")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert "console:   http://127.0.0.1:" in done.stdout
    assert "sign in:   coordination / " in done.stdout
    assert "the board showed 6 listeners" in done.stdout
