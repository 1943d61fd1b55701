"""The line under bench: `helpline-pbx serve` as `make run` starts it (a subprocess, SQLite roster, JSON log),
its listeners added to the roster beforehand, and their softphones registered (SIPp, one process each)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.target import BenchAsterisk, cpu_seconds
from tests.e2e.sipp import SippProcess, scenario_path
from tests.load.soak import (
    AsteriskTarget,
    LoadListener,
    LoadPlan,
    RosterFile,
    ServiceLog,
    _service_env,
    _start_service,
    _stop_service,
    until,
)

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster

# The screen's failures the service logs (agi/server.py): the caller then goes on unscreened.
SCREEN_FAILURE = "agi.failed"


@dataclass
class Line:
    """A running service with its listeners' phones."""

    process: asyncio.subprocess.Process
    log: ServiceLog
    roster: RosterFile
    listeners: list[LoadListener]
    phones: list[SippProcess] = field(default_factory=list)
    quiet_at_start: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def screen_failures(self) -> Counter[str]:
        """The screen's failures so far, by reason (timeout, handler_timeout, internal...)."""
        found: Counter[str] = Counter()
        for text in self.log.text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(text)
                if isinstance(entry, dict) and entry.get("event") == SCREEN_FAILURE:
                    found[str(entry.get("reason"))] += 1
        return found

    def screens_served(self) -> int:
        return self.log.text().count('"agi.served"')


def _target(asterisk: BenchAsterisk) -> AsteriskTarget:
    return AsteriskTarget(
        ari_url=asterisk.ari_url,
        ari_user=asterisk.ari_user,
        ari_password=asterisk.ari_password,
        ari_password_file=asterisk.ari_password_file,
        app=asterisk.app,
        sip_host="127.0.0.1",
        sip_port=asterisk.sip_port,
        trunk_ip=asterisk.trunk_ip,
    )


async def _add_listeners(url: str, count: int) -> list[LoadListener]:
    # Straight into the roster before the service starts (the CLI would cost two processes a listener).
    await upgrade(url)
    engine = make_engine(url)
    roster = Roster(engine)
    run = secrets.token_hex(2)
    out = []
    try:
        for n in range(count):
            added = await roster.add_listener(f"Bench {run} {n:03d}", f"bench-{run}-{n:03d}", "volunteer")
            await roster.set_presence(added.id, "on", now=datetime.now(UTC))
            assert added.sip_password is not None
            out.append(LoadListener(added.id, added.endpoint, added.sip_password))
    finally:
        await engine.dispose()
    return out


async def start_line(asterisk: BenchAsterisk, workdir: Path, listeners: int, lifetime: float) -> Line:
    """The service with `listeners` on duty, each with a registered softphone that answers at once and
    stays in the call until the caller hangs up."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    # No rest between calls and nobody paused or sent on a break: the bench measures the call path.
    plan = LoadPlan(listeners=listeners, ring_timeout=10, rest_after_call=0)
    env = _service_env(plan, _target(asterisk), workdir)
    # The dialplan's screen calls this port (scripts/asterisk.sh renders it from the same variable), and
    # the service reads failed logins from this Asterisk's AMI, as under `make run`.
    env["HELPLINE_AGI_PORT"] = str(asterisk.agi_port)
    env.update({k: v for k, v in asterisk.script_env.items() if k.startswith("HELPLINE_AMI_")})
    env["HELPLINE_AUTH_FAILURE_LOG"] = str(workdir / "sip-auth-failures.log")
    # `make run`'s log level (info: the screen's served and failed lines among them).
    env.pop("HELPLINE_LOG_LEVEL", None)
    # The roster poll at `make run`'s pace, not a load test's.
    env.pop("HELPLINE_ROSTER_POLL_INTERVAL", None)
    roster_url = env["HELPLINE_DATABASE_URL"]
    people = await _add_listeners(roster_url, listeners)
    log = ServiceLog(workdir / "service.log")
    process = await _start_service(env, log.path)
    line = Line(process, log, RosterFile(workdir / "roster.db"), people)
    try:
        async with AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password) as ari:
            await _ready(line, ari)
            line.phones = await _register_phones(asterisk, ari, workdir / "phones", people, lifetime)
        await until(lambda: asyncio.to_thread(_all_available, line), 60, "every listener available")
        # Pushing and syncing every listener keeps the service busy a while after the last one is available.
        line.quiet_at_start = await wait_quiet(line.pid, 60)
    except BaseException:
        await stop_line(line)
        raise
    return line


async def _ready(line: Line, ari: AriClient) -> None:
    async def connected() -> bool:
        if line.process.returncode is not None:
            raise RuntimeError(
                f"the service exited with {line.process.returncode}: {line.log.text()[-2000:]}"
            )
        return line.log.connected()

    # A shared machine can be slow to start a Python process: be patient.
    await until(connected, 120, "the service to connect to ARI")

    async def pushed() -> bool:
        for listener in line.listeners:
            try:
                await ari.get_endpoint("PJSIP", listener.endpoint)
            except AriNotFound:
                return False
        return True

    await until(pushed, 60, "the listeners' SIP accounts")


# The listeners' phones live on an address of their own: another run's SIPp on 127.0.0.1 (media ports from
# 6000) cannot collide with them.
PHONES_IP = "127.0.0.80"
PHONES_REGISTER_RATE = 20


def _accounts(path: Path, people: list[LoadListener]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        f"{listener.endpoint};[authentication username={listener.endpoint} password={listener.secret}];"
        for listener in people
    ]
    path.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


async def _register_phones(
    asterisk: BenchAsterisk, ari: AriClient, workdir: Path, people: list[LoadListener], lifetime: float
) -> list[SippProcess]:
    """Every listener's phone in one SIPp process (bench_phones.xml): 160 processes would spend about a
    core of a 2-core machine polling while idle, and starve what they measure."""
    phones = SippProcess(
        "bench_phones",
        workdir=workdir,
        local_ip=PHONES_IP,
        remote=asterisk.remote,
        calls=len(people),
        # A steady pace: many REGISTERs at once make Asterisk slow to answer, and SIPp resends.
        rate=PHONES_REGISTER_RATE,
        variables={
            "hold_ms": str(int(lifetime * 1000)),
            # load_listener.xml: answer at once; the caller hangs up first (a CANCEL is handled too).
            "ring_min": "0",
            "ring_max": "0",
            "talk_min": "600000",
            "talk_max": "600000",
            "skip_draws": "0",
        },
        lifetime=lifetime + 60,
        extra_args=[
            "-inf",
            str(_accounts(workdir / "accounts.csv", people)),
            "-oocsf",
            str(scenario_path("load_listener")),
            "-l",
            str(len(people)),
        ],
    ).start()
    try:
        await until(lambda: registered(ari, people), 60 + len(people) / PHONES_REGISTER_RATE, "every phone")
    except BaseException:
        await phones.stop_async()
        raise
    return [phones]


async def registered(ari: AriClient, people: list[LoadListener]) -> bool:
    for listener in people:
        try:
            if (await ari.get_endpoint("PJSIP", listener.endpoint)).state != "online":
                return False
        except AriNotFound:
            return False
    return True


def _all_available(line: Line) -> bool:
    states = line.roster.states()
    return all(states.get(listener.id) == "available" for listener in line.listeners)


async def wait_all_available(line: Line, timeout: float) -> bool:
    """Whether every listener is available again within `timeout` (the calls of a step are over)."""
    try:
        await until(
            lambda: asyncio.to_thread(_all_available, line), timeout, "every listener available", 0.05
        )
    except TimeoutError:
        return False
    return True


async def wait_quiet(pid: int, timeout: float, busy: float = 0.05, every: float = 0.5) -> bool:
    """Whether the process used less than `busy` of a core over two samples in a row within `timeout`."""
    deadline = time.monotonic() + timeout
    calm = 0
    while time.monotonic() < deadline and calm < 2:
        before = cpu_seconds(pid)
        await asyncio.sleep(every)
        calm = calm + 1 if cpu_seconds(pid) - before < busy * every else 0
    return calm >= 2


async def stop_line(line: Line) -> int | None:
    for phone in line.phones:
        await phone.stop_async()
    return await _stop_service(line.process)
