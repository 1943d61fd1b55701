"""The service as a real process (`helpline-pbx serve`), for tests that kill it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import AsteriskUnderTest

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("helpline-pbx"))


class ServiceProcess:
    def __init__(
        self,
        asterisk: AsteriskUnderTest,
        *,
        database_url: str,
        app: str,
        did: str,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = workdir / f"service-{app}.log"
        self.env = {
            **os.environ,
            "HELPLINE_ARI_URL": asterisk.ari_url,
            "HELPLINE_ARI_USER": asterisk.ari_user,
            "HELPLINE_ARI_PASSWORD": asterisk.ari_password,
            "HELPLINE_ARI_APP": app,
            "HELPLINE_DIDS": did,
            "HELPLINE_DATABASE_URL": database_url,
            "HELPLINE_KEYS_DIR": str(workdir / "keys"),
            "HELPLINE_AGI_PORT": "0",
            "HELPLINE_CONSOLE_PORT": "0",
            "HELPLINE_CONSOLE_DIR": str(workdir / f"console-{app}"),
            "HELPLINE_RING_TIMEOUT": "5",
            "HELPLINE_REST_AFTER_CALL": "1",
            "HELPLINE_MAX_MISSED_OFFERS": "0",
            "HELPLINE_SHIFT_LIMITS": "none",
            "HELPLINE_MISSED_OFFER_DELAY": "1",
            "HELPLINE_DECLINED_OFFER_DELAY": "1",
            "HELPLINE_ROSTER_POLL_INTERVAL": "0.5",
            **(extra_env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [CLI, *args], env=self.env, capture_output=True, text=True, check=True, timeout=60
        ).stdout

    async def start(self, timeout: float = 20.0) -> None:
        self._log = self.log_file.open("ab")
        self._offset = self.log_file.stat().st_size
        self._process = subprocess.Popen(
            [CLI, "serve"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        await self.wait_log("reconciled", timeout)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    async def wait_log(self, event: str, timeout: float = 20.0, count: int = 1) -> dict[str, Any]:
        """Wait until the service logged `event` `count` times in this run (or it died: fail)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_file.read_bytes()[self._offset :].decode("utf-8", errors="replace")
            found = [
                json.loads(line)
                for line in text.splitlines()
                if line.startswith("{") and f'"{event}"' in line
            ]
            found = [f for f in found if f.get("event") == event]
            if len(found) >= count:
                return found[count - 1]
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(
                    f"the service exited ({self._process.returncode}) before logging {event}:\n{text[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the service did not log {event} within {timeout}s:\n{text[-3000:]}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no drain, no goodbye."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(10)
        self._log.close()

    async def terminate(self, timeout: float = 30.0) -> int:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(self._process.wait, timeout)
        self._log.close()
        return returncode

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        if self._log is not None and not self._log.closed:
            self._log.close()
