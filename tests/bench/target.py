"""The Asterisk the bench runs on (scripts/asterisk.sh, with its bench-only paths) and the CPU time of a
process, read from /proc."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "asterisk.sh"
_TICK = os.sysconf("SC_CLK_TCK")


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELPLINE_BENCH": "1"}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, check=False, env=env)


@dataclass(frozen=True)
class BenchAsterisk:
    ari_url: str
    ari_user: str
    ari_password_file: Path
    app: str
    sip_port: int
    trunk_ip: str
    agi_port: int
    pidfile: Path
    caller_ip: str
    queue_phone: tuple[str, int]
    router_phone: tuple[str, int]
    router_app: str
    # What `scripts/asterisk.sh env` printed: what `make run` hands the service.
    script_env: dict[str, str]

    @property
    def ari_password(self) -> str:
        return self.ari_password_file.read_text(encoding="utf-8").strip()

    @property
    def remote(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    @classmethod
    def prepare(cls) -> BenchAsterisk:
        """Start Asterisk if it is not running, and make sure it has the bench's paths: a running Asterisk
        without them reloads its configuration (no restart: whatever else runs on it carries on)."""
        started = _script("start")
        if started.returncode != 0:
            raise RuntimeError(f"Asterisk could not start: {(started.stderr or started.stdout).strip()}")
        shown = _script("cli", "dialplan show bench-call")
        if "'queue'" not in shown.stdout:
            reloaded = _script("reload")
            if reloaded.returncode != 0:
                raise RuntimeError(f"Asterisk could not take the bench's paths: {reloaded.stderr.strip()}")
        env = dict(line.split("=", 1) for line in _script("env").stdout.splitlines() if "=" in line)

        def address(text: str) -> tuple[str, int]:
            host, port = text.rsplit(":", 1)
            return host, int(port)

        return cls(
            ari_url=env["HELPLINE_ARI_URL"],
            ari_user=env["HELPLINE_ARI_USER"],
            ari_password_file=Path(env["HELPLINE_ARI_PASSWORD_FILE"]),
            app=env["HELPLINE_ARI_APP"],
            sip_port=int(env["HELPLINE_SIP_PORT"]),
            trunk_ip=os.environ.get("HELPLINE_TRUNK_MATCH", "127.0.0.2"),
            agi_port=int(os.environ.get("HELPLINE_AGI_PORT", "4573")),
            pidfile=Path(env["HELPLINE_ASTERISK_PIDFILE"]),
            caller_ip=env["HELPLINE_BENCH_CALLER_IP"],
            queue_phone=address(env["HELPLINE_BENCH_QUEUE_PHONE"]),
            router_phone=address(env["HELPLINE_BENCH_ROUTER_PHONE"]),
            router_app=env["HELPLINE_BENCH_ROUTER_APP"],
            script_env=env,
        )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICK
