"""Fixtures shared by every tier: the real Asterisk, started once per test run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "asterisk.sh"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# In CI the property tests explore the same examples on every run, so a red CI is reproducible and says
# something about the change; run locally they explore anew each time, and what they find gets a test.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if IN_CI:
    hypothesis_settings.load_profile("ci")


@dataclass(frozen=True)
class AsteriskUnderTest:
    """How to reach the Asterisk the e2e tests run against."""

    ari_url: str
    ari_user: str
    ari_password: str = field(repr=False)
    app: str
    sip_host: str
    sip_port: int
    trunk_ip: str
    mode: str
    root: Path

    def files_root(self) -> Path:
        """Where Asterisk's /var folders are seen from the host."""
        return self.root if self.mode == "chroot" else Path("/")


def _unavailable(reason: str) -> None:
    # In CI an e2e test must run: not being able to start Asterisk is a failure, never a skip.
    if IN_CI:
        pytest.fail(f"Asterisk is needed for the e2e tests and could not start: {reason}", pytrace=False)
    pytest.skip(f"Asterisk unavailable: {reason}")


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskUnderTest]:
    if os.geteuid() != 0:
        _unavailable("the e2e tests need root (Asterisk runs in a root folder as its own user)")
    was_running = _script("status").returncode == 0
    started = _script("start")
    if started.returncode != 0:
        _unavailable((started.stderr or started.stdout).strip()[-2000:])
    env = dict(line.split("=", 1) for line in _script("env").stdout.splitlines() if "=" in line)
    password = Path(env["HELPLINE_ARI_PASSWORD_FILE"]).read_text(encoding="utf-8").strip()
    yield AsteriskUnderTest(
        ari_url=env["HELPLINE_ARI_URL"],
        ari_user=env["HELPLINE_ARI_USER"],
        ari_password=password,
        app=env["HELPLINE_ARI_APP"],
        sip_host="127.0.0.1",
        sip_port=int(env["HELPLINE_SIP_PORT"]),
        trunk_ip=os.environ.get("HELPLINE_TRUNK_MATCH", "127.0.0.2"),
        mode=env["HELPLINE_ASTERISK_MODE"],
        root=Path(env["HELPLINE_ASTERISK_ROOT"]),
    )
    if not was_running:
        _script("stop")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every test under tests/e2e is an e2e test, marked or not, so `-m "not e2e"` really leaves them out.
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _json_logs() -> None:
    # The service's own log pipeline (identity redaction included) also runs under test.
    from helpline_pbx.logs import configure_logging

    configure_logging("info")
