"""The 1,000-waiting scenario, on the real Asterisk with the service as its own process.

    python -m tests.bench.waiting --out bench-results/waiting.json [--callers 1000 --rate 25 --phones 4]

1. `callers` SIPp callers ring one line that announces the place every `announce` seconds; a few phones
   are on duty and never answer, so nearly everyone waits with music. Admitted: callers the service
   reports arrived (`caller_arrived`).
2. They wait `hold` seconds: the keep-alive and the announcements run over all of them.
3. The service is killed (-9) and started again: the re-adopt time runs from its event stream being
   connected (`ari.events_connected`) to the reconcile done (`reconciled`, with how many re-adopted).
4. They wait again, then the service drains (SIGTERM): every caller goes to the fallback. The watch
   counts Asterisk's channels and open files at their peak, whether ARI still answers, and what each
   caller met in the fallback (the phones ringing, or the message).

ARI requests refused: the service's own failures (`ari.request_failed`, `ari.request_timeout`,
`ari.request_queue_timeout`) plus the sessions Asterisk's log says it turned away. Max requests in flight:
the service's pool reports (`ari.pool`). Nothing about any caller's number reaches the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from tests.bench.service import registered
from tests.bench.waiting_watch import (
    AsteriskLog,
    Watch,
    at,
    first,
    log_entries,
    peak_in_flight,
    refusals,
    warnings,
)
from tests.e2e.sipp import SippProcess, scenario_path
from tests.load.soak import (
    FICTION_PREFIX,
    FICTION_SIZE,
    SCRIPT,
    AsteriskTarget,
    LoadListener,
    _add_listener,
    _cli_run,
    _start_service,
    until,
)

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriError, AriNotFound

LINE = "0800700700"
# A caller who never gives up by themselves: only Asterisk ends their call (the message is over).
FOREVER_MS = 3_600_000
# SIPp aborts the whole run after 120 late wake-ups of its own timer (10 very late ones): on a loaded
# machine with 1,000 RTP streams it did, hanging up every caller at once. Late is not wrong here.
PATIENT_SIPP = ["-watchdog_minor_maxtriggers", "1000000", "-watchdog_major_maxtriggers", "1000000"]


def waiting_env(target: AsteriskTarget, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env.update(
        HELPLINE_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'roster.db'}",
        HELPLINE_STATE_DIR=str(workdir / "state"),
        HELPLINE_KEYS_DIR=str(workdir / "keys"),
        HELPLINE_CONSOLE_PORT="0",
        HELPLINE_CONSOLE_DIR=str(workdir / "console"),
        HELPLINE_ARI_URL=target.ari_url,
        HELPLINE_ARI_USER=target.ari_user,
        HELPLINE_ARI_APP=target.app,
        HELPLINE_ARI_PASSWORD_FILE=str(target.ari_password_file),
        HELPLINE_AGI_PORT=os.environ.get("HELPLINE_AGI_PORT", "4573"),
        HELPLINE_MAX_MISSED_OFFERS="0",
        HELPLINE_SHIFT_LIMITS="none",
        HELPLINE_RATE_LIMIT_CALLS="1000000",
        HELPLINE_DRAIN_TIMEOUT="120",
        HELPLINE_LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    if "HELPLINE_ARI_SESSION_LIMIT" in os.environ:
        env["HELPLINE_ARI_SESSION_LIMIT"] = os.environ["HELPLINE_ARI_SESSION_LIMIT"]
    return env


@dataclass(frozen=True)
class AsteriskPlace:
    """Where the Asterisk under test keeps its pid file and its log, as `scripts/asterisk.sh env` says."""

    pidfile: Path
    messages: Path

    @classmethod
    def from_script(cls) -> AsteriskPlace:
        out = subprocess.run([SCRIPT, "env"], capture_output=True, text=True, check=True).stdout
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if env.get("HELPLINE_ASTERISK_MODE") == "host":
            base = Path(env["HELPLINE_ARI_PASSWORD_FILE"]).parent.parent / "asterisk"
            return cls(base / "run/asterisk.pid", base / "log/messages.log")
        root = Path(env["HELPLINE_ASTERISK_ROOT"])
        return cls(root / "run/asterisk/asterisk.pid", root / "var/log/asterisk/messages.log")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None


def write_numbers(path: Path, count: int) -> None:
    lines = ["SEQUENTIAL", *(f"{FICTION_PREFIX}{n % FICTION_SIZE:04d};" for n in range(count))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def phones(target: AsteriskTarget, workdir: Path, listeners: list[LoadListener]) -> list[SippProcess]:
    """Registered softphones that ring for ever and never answer (CANCEL ends each ring)."""
    return [
        SippProcess(
            "softphone",
            workdir=workdir / "phones",
            remote=target.remote,
            service=listener.endpoint,
            auth_user=listener.endpoint,
            auth_password=listener.secret,
            calls=1,
            variables={
                "ring_min": str(FOREVER_MS),
                "ring_max": str(FOREVER_MS + 1),
                "talk_min": "1000",
                "talk_max": "1001",
                "skip_draws": str(index),
            },
            lifetime=3600,
            extra_args=["-oocsf", str(scenario_path("load_listener")), *PATIENT_SIPP],
        ).start()
        for index, listener in enumerate(listeners)
    ]


def arrived(log: Path) -> int:
    return sum(1 for e in log_entries(log) if e.get("event") == "caller_arrived")


async def holding(ari: AriClient, app: str) -> list[str]:
    try:
        return list((await ari.get_bridge(f"{app}-waiting")).channels)
    except AriNotFound:
        return []


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    target = AsteriskTarget.from_script(start=False)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="waiting-bench-"))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    env = waiting_env(target, workdir)
    drain_started = float("inf")
    report: dict[str, Any] = {"callers": args.callers, "rate": args.rate, "phones": args.phones}
    await _cli_run(env, "db", "upgrade")
    await _cli_run(
        env, "lines", "add", "attente", "--label", "Attente", "--number", LINE,
        "--announce-every", str(args.announce),
    )  # fmt: skip
    listeners = [await _add_listener(env, n, "w") for n in range(args.phones)]
    place = AsteriskPlace.from_script()
    pid = place.pid()
    messages = AsteriskLog(place.messages)
    first_log, second_log = workdir / "service-1.log", workdir / "service-2.log"
    async with AriClient(target.ari_url, target.ari_user, target.ari_password, timeout=20) as ari:
        fallback = await _fallback_timing(ari, args)
        watch = Watch(ari, pid)
        sampler = asyncio.create_task(watch.run())
        service = await _start_service(env, first_log)
        sipp: list[SippProcess] = []
        try:
            await until(lambda: _logged(first_log, "ari_connected"), 30, "the service to connect")
            sipp = phones(target, workdir, listeners)
            await until(lambda: registered(ari, listeners), 20, "the phones to register")
            numbers = workdir / "callers.csv"
            write_numbers(numbers, args.callers)
            callers = SippProcess(
                "load_caller", workdir=workdir / "callers", local_ip=target.trunk_ip, remote=target.remote,
                service=LINE, calls=args.callers, rate=args.rate, lifetime=3600,
                variables={"patience_min": str(FOREVER_MS), "patience_max": str(FOREVER_MS + 1)},
                extra_args=["-inf", str(numbers), "-l", str(args.callers), *PATIENT_SIPP],
            ).start()  # fmt: skip
            sipp.append(callers)
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await until(
                    lambda: _at_least(lambda: arrived(first_log), args.callers),
                    args.callers / args.rate + 60, "every caller admitted", 1.0,
                )  # fmt: skip
            report["admitted"] = arrived(first_log)
            report["admission_seconds"] = round(time.monotonic() - started, 1)
            await asyncio.sleep(args.hold)
            report["waiting_before_kill"] = len(await holding(ari, target.app))

            service.send_signal(signal.SIGKILL)
            await service.wait()
            service = await _start_service(env, second_log)
            # The reconcile's own line, even if the rest of the resync is still being tried again.
            with contextlib.suppress(TimeoutError):
                await until(lambda: _logged(second_log, "reconciled"), 90, "the service to re-adopt")
            report["reconnected"] = await _logged(second_log, "ari.events_connected")
            second = log_entries(second_log)
            connected, reconciled = first(second, "ari.events_connected"), first(second, "reconciled")
            start_at, done_at = at(connected), at(reconciled)
            report["readopt_seconds"] = (
                round(done_at - start_at, 3) if start_at is not None and done_at is not None else None
            )
            report["readopted"] = reconciled.get("waiting") if reconciled else None
            await asyncio.sleep(args.hold)
            followed = set(await holding(ari, target.app))
            report["waiting_before_drain"] = len(followed)
            watch.followed = followed
            watch.channels_peak = watch.files_peak = 0
            service.send_signal(signal.SIGTERM)
            drained_at, drain_started = time.monotonic(), time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(service.wait(), 180)
            report["service_exit"] = service.returncode
            with contextlib.suppress(TimeoutError):
                await until(lambda: _none_left(watch), args.drain_wait, "every caller's fallback to end", 1.0)
            report["drain_seconds"] = round(time.monotonic() - drained_at, 1)
        finally:
            if service.returncode is None:
                service.kill()
                await service.wait()
            for process in sipp:
                await process.stop_async()
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            for name, value in fallback.items():
                await ari.set_global_variable(name, value)
        try:
            await ari.asterisk_info()
            alive = True
        except AriError:
            alive = False
    entries = log_entries(first_log) + log_entries(second_log)
    refused = refusals(entries)
    report["ari_refused"] = {
        "service": dict(refused),
        # While callers waited and were re-adopted, apart from those while they were sent to the fallback.
        "service_before_drain": sum(refusals(_before(entries, drain_started)).values()),
        "asterisk_sessions_refused": messages.sessions_refused(),
        "total": sum(refused.values()) + messages.sessions_refused(),
    }
    report["max_in_flight"] = peak_in_flight(entries)
    report["drain"] = {
        "channels_peak": watch.channels_peak,
        "asterisk_open_files_peak": watch.files_peak,
        "asterisk_alive": alive,
        "ari_sample_failures": watch.ari_failures,
        "left_after_wait": watch.live_followed,
        **watch.outcome(),
    }
    report["service_warnings"] = dict(warnings(entries).most_common(12))
    report["workdir"] = str(workdir)
    return report


def _before(entries: list[dict[str, Any]], moment: float) -> list[dict[str, Any]]:
    return [e for e in entries if (at(e) or 0.0) < moment]


async def _fallback_timing(ari: AriClient, args: argparse.Namespace) -> dict[str, str]:
    """Shorten the fallback's ring and wait for this run when asked (dialplan globals); returns what to
    set back afterwards."""
    wanted = {"HELPLINE_FALLBACK_RING": args.fallback_ring, "HELPLINE_FALLBACK_WAIT": args.fallback_wait}
    before: dict[str, str] = {}
    for name, value in wanted.items():
        if value is None:
            continue
        current = await ari.request("GET", "/asterisk/variable", params={"variable": name})
        before[name] = str(current["value"])
        await ari.set_global_variable(name, str(value))
    return before


async def _logged(path: Path, event: str) -> bool:
    return first(log_entries(path), event) is not None


async def _at_least(count: Any, wanted: int) -> bool:
    return bool(count() >= wanted)


async def _none_left(watch: Watch) -> bool:
    return watch.samples > 0 and watch.live_followed == 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.bench.waiting", description=__doc__.splitlines()[0])
    p.add_argument("--callers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=25.0, help="new callers per second")
    p.add_argument("--phones", type=int, default=4, help="phones on duty that never answer")
    p.add_argument("--announce", type=int, default=30, help="seconds between position announcements")
    p.add_argument(
        "--hold", type=float, default=35.0, help="seconds of waiting before the kill and the drain"
    )
    p.add_argument("--drain-wait", type=float, default=300.0, help="seconds to wait for the fallback to end")
    p.add_argument("--fallback-ring", type=int, help="seconds the fallback rings (the dialplan's: 45)")
    p.add_argument(
        "--fallback-wait", type=int, help="seconds a caller may wait for a turn (the dialplan's: 120)"
    )
    p.add_argument("--workdir")
    p.add_argument("--out", type=Path)
    return p


def main() -> None:
    args = parser().parse_args()
    # The bench's own ARI client logs every request at debug: only what went wrong is worth printing.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    report = asyncio.run(measure(args))
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
