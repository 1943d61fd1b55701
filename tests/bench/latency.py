"""Benchmark: time from a caller's arrival in the Stasis application to the INVITE reaching the listener's
softphone, on the real Asterisk, over sequential calls. Writes JSON results (run with `make bench`).

Start: the wall-clock time at which the service handled the caller's StasisStart (the CallerArrived
decision). End: the wall-clock time SIPp logged the INVITE on receipt. Both clocks are this machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.harness import start_service, wait_registered
from tests.e2e.sipp import SippProcess, scenario_path

from helpline_pbx.core import CallerArrived, Policy
from helpline_pbx.logs import configure_logging
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster

REPO = Path(__file__).resolve().parents[2]
_INVITE = re.compile(
    r"-{10,} (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*\nUDP message received \[\d+\] bytes :\s*\n\s*INVITE "
)


def _asterisk_env() -> dict[str, str]:
    started = subprocess.run(
        [REPO / "scripts/asterisk.sh", "start"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        sys.exit(f"bench: Asterisk could not start: {started.stderr.strip()}")
    out = subprocess.run(
        [REPO / "scripts/asterisk.sh", "env"], capture_output=True, text=True, check=True
    ).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    env["password"] = Path(env["HELPLINE_ARI_PASSWORD_FILE"]).read_text(encoding="utf-8").strip()
    return env


async def measure(calls: int, workdir: Path) -> dict[str, object]:
    env = _asterisk_env()
    url = f"sqlite+aiosqlite:///{workdir / 'roster.db'}"
    await upgrade(url)
    engine = make_engine(url)
    roster = Roster(engine)
    added = await roster.add_listener("Bench", f"bench-{secrets.token_hex(3)}", "volunteer")
    listener = await roster.set_presence(added.id, "on", now=datetime.now(UTC))
    svc, stack = await start_service(
        ari_url=env["HELPLINE_ARI_URL"],
        user=env["HELPLINE_ARI_USER"],
        password=env["password"],
        app=env["HELPLINE_ARI_APP"],
        roster=roster,
        policy=Policy(
            ring_timeout=10,
            rest_after_call=0,
            missed_offer_delay=1,
            declined_offer_delay=1,
            max_missed_offers=0,
            shift_limits={},
        ),
        keys_dir=workdir / "keys",
    )
    remote = f"127.0.0.1:{env['HELPLINE_SIP_PORT']}"
    phone = SippProcess(
        "softphone",
        workdir=workdir,
        remote=remote,
        service=listener.endpoint,
        auth_user=listener.endpoint,
        auth_password=added.sip_password,
        calls=1,
        pause_ms=200,
        lifetime=600,
        extra_args=["-oocsf", str(scenario_path("listener_answer_hangup"))],
    ).start()
    try:
        await svc.decisions.wait_for(lambda: svc.board.queue.listener_state(listener.id) is not None, 10)
        await wait_registered(svc.ari, listener.endpoint)
        await svc.decisions.wait_for(
            lambda: any(v.listener_id == listener.id and v.reachable for v in svc.board.queue.listeners()), 10
        )
        for n in range(calls):
            caller = SippProcess(
                "caller",
                workdir=workdir / f"call{n}",
                local_ip="127.0.0.2",
                remote=remote,
                service="0800123456",
                calls=1,
                lifetime=60,
            ).start()
            await svc.decisions.wait_records(n + 1, timeout=30)
            await caller.wait_async(30)
        arrivals = [
            w
            for w, (_, e, _) in zip(svc.decisions.wall, svc.decisions.log, strict=True)
            if isinstance(e, CallerArrived)
        ]
        invites = [
            datetime.strptime(m.group("at"), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            for m in _INVITE.finditer(phone.message_file.read_text(encoding="utf-8", errors="replace"))
        ]
    finally:
        await phone.stop_async()
        await svc.stop()
        await stack.aclose()
        await engine.dispose()
    latencies_ms = sorted((i - a) * 1000 for a, i in zip(arrivals, invites, strict=True))
    return {
        "what": "caller handled in Stasis -> INVITE received by the listener's softphone",
        "calls": calls,
        "median_ms": round(statistics.median(latencies_ms), 2),
        "p90_ms": round(latencies_ms[int(0.9 * (len(latencies_ms) - 1))], 2),
        "min_ms": round(latencies_ms[0], 2),
        "max_ms": round(latencies_ms[-1], 2),
        "database": "sqlite",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench-results/latency.json"))
    args = parser.parse_args()
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(args.calls, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
