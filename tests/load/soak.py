"""A bounded load on the real Asterisk, and its long form, the soak.

SIPp callers arrive at a steady rate and wait a random patience; listeners' softphones ring a random while,
answer, talk a random while and hang up. The service runs as a real subprocess (`helpline-pbx serve`) so its
memory can be watched from outside, once a second. Afterwards the verdicts come from three independent
witnesses: the roster database (one record per caller who reached the service, no listener on two calls at
once), SIPp (every caller finished, none failed) and Asterisk (no channel or bridge of the run left behind).

    python -m tests.load.soak --callers 200 --rate 10 --listeners 20 --out soak-results/soak.json

exits 1 when a verdict fails. `tests/e2e/test_load.py` runs a short version under `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.e2e.sipp import SippProcess, scenario_path

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.models import Bridge, Channel
from helpline_pbx.logs import configure_logging

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "asterisk.sh"
LINE = "0800123456"
# The port of the service's FastAGI screen: bound while any service (a test's or ours) is running.
AGI_PORT = 4573
# ARCEP keeps 06 39 98 00 00 - 06 39 98 99 99 for fiction: every load caller gets one of these.
FICTION_PREFIX = "063998"
FICTION_SIZE = 10_000
BUSY_STATES = ("ringing", "on_call")


@dataclass(frozen=True)
class Span:
    """A uniform random duration, in milliseconds, drawn per call by the SIPp scenario."""

    low_ms: int
    high_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.low_ms <= self.high_ms:
            raise ValueError(f"bad span {self.low_ms}..{self.high_ms} ms")


@dataclass(frozen=True)
class LoadPlan:
    callers: int = 200
    rate: float = 10.0
    listeners: int = 20
    patience: Span = Span(5_000, 40_000)
    ringing: Span = Span(500, 3_000)
    talk: Span = Span(1_000, 8_000)
    ring_timeout: float = 8.0
    rest_after_call: float = 0.5
    # Once the last caller is gone, how long the records and Asterisk may take to catch up.
    settle_timeout: float = 30.0
    # The first part of the load window is warm-up (imports, caches, pools): left out of the memory trend.
    warmup_fraction: float = 0.2

    def caller_deadline(self) -> float:
        """Seconds after which a caller still on the line is stuck: arrivals, patience, generous slack."""
        return self.callers / self.rate + self.patience.high_ms / 1000 + 30.0


@dataclass(frozen=True)
class AsteriskTarget:
    ari_url: str
    ari_user: str
    ari_password: str
    ari_password_file: Path
    app: str
    sip_host: str
    sip_port: int
    trunk_ip: str

    @classmethod
    def from_script(cls, *, start: bool) -> AsteriskTarget:
        """Read `scripts/asterisk.sh env`, after `start` (which is a no-op when Asterisk already runs)."""
        if start:
            started = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, check=False)
            if started.returncode != 0:
                raise RuntimeError(f"Asterisk could not start: {(started.stderr or started.stdout).strip()}")
        out = subprocess.run([SCRIPT, "env"], capture_output=True, text=True, check=True).stdout
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        password_file = Path(env["HELPLINE_ARI_PASSWORD_FILE"])
        return cls(
            ari_url=env["HELPLINE_ARI_URL"],
            ari_user=env["HELPLINE_ARI_USER"],
            ari_password=password_file.read_text(encoding="utf-8").strip(),
            ari_password_file=password_file,
            app=env["HELPLINE_ARI_APP"],
            sip_host="127.0.0.1",
            sip_port=int(env["HELPLINE_SIP_PORT"]),
            trunk_ip=os.environ.get("HELPLINE_TRUNK_MATCH", "127.0.0.2"),
        )

    @property
    def remote(self) -> str:
        return f"{self.sip_host}:{self.sip_port}"


@dataclass(frozen=True)
class LoadListener:
    id: str
    endpoint: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Record:
    """One row of call_records, as the verdicts need it."""

    call_id: str
    outcome: str
    listener_id: str | None
    queued_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    wait_seconds: float
    offers: int


@dataclass(frozen=True)
class AuditRow:
    """One row of listener_events."""

    listener_id: str
    state: str
    call_id: str | None
    at: datetime


@dataclass
class LoadReport:
    plan: dict[str, Any]
    started_at: str
    duration_seconds: float = 0.0
    calls: int = 0
    # Callers an earlier run left on Asterisk, adopted by the service at start-up: left out of the verdicts.
    adopted_before_load: int = 0
    # Callers the service took into Stasis: rows of recent_calls, and caller_arrived lines in its log.
    reached: int = 0
    arrivals_logged: int = 0
    records: int = 0
    served: int = 0
    abandoned: int = 0
    fallback: int = 0
    lost: list[str] = field(default_factory=list)
    double_bookings: list[str] = field(default_factory=list)
    inconsistent_records: list[str] = field(default_factory=list)
    busy_listeners_after: list[str] = field(default_factory=list)
    callers_successful: int = 0
    callers_failed: int = 0
    callers_stuck: int = 0
    asterisk_channels_peak: int = 0
    leftover_channels: list[str] = field(default_factory=list)
    leftover_bridges: list[str] = field(default_factory=list)
    wait_served_p50: float | None = None
    wait_served_p99: float | None = None
    wait_abandoned_p50: float | None = None
    offers_per_call_max: int = 0
    service_exit_code: int | None = None
    service_log_levels: dict[str, int] = field(default_factory=dict)
    service_warnings: dict[str, int] = field(default_factory=dict)
    rss_early_mb: float | None = None
    rss_late_mb: float | None = None
    rss_growth_mb: float | None = None
    rss_peak_mb: float | None = None
    rss_end_mb: float | None = None
    # [seconds since the service started, VmRSS in kB], once a second.
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    def problems(self, max_growth_mb: float | None = None) -> list[str]:
        """Every broken promise, in words; empty when the run kept them all."""
        found: list[str] = []
        if self.reached != self.calls:
            found.append(f"{self.calls} callers placed, {self.reached} reached the service")
        if self.arrivals_logged != self.reached:
            found.append(f"{self.arrivals_logged} arrivals logged, {self.reached} in recent_calls")
        if self.lost:
            found.append(f"lost callers (no record, or still on Asterisk): {self.lost}")
        if self.fallback:
            found.append(f"{self.fallback} callers sent to the fallback while the service was up")
        if self.served + self.abandoned + self.fallback != self.records:
            found.append(f"records with an unknown outcome: {self.records} records")
        found += [f"double booking: {d}" for d in self.double_bookings]
        found += [f"inconsistent record: {r}" for r in self.inconsistent_records]
        found += [f"listener still busy after the run: {b}" for b in self.busy_listeners_after]
        if self.callers_failed or self.callers_stuck:
            found.append(f"SIPp callers: {self.callers_failed} failed, {self.callers_stuck} stuck")
        if self.callers_successful + self.callers_failed != self.calls:
            found.append(
                f"SIPp callers: {self.callers_successful} + {self.callers_failed} != {self.calls} placed"
            )
        if self.leftover_channels or self.leftover_bridges:
            found.append(f"left on Asterisk: {self.leftover_channels + self.leftover_bridges}")
        if self.service_exit_code != 0:
            found.append(f"the service exited with {self.service_exit_code}")
        if max_growth_mb is not None and (self.rss_growth_mb is None or self.rss_growth_mb > max_growth_mb):
            found.append(f"service memory grew {self.rss_growth_mb} MB (bound {max_growth_mb} MB)")
        return found

    def summary(self) -> dict[str, Any]:
        """The report without the RSS series, for printing."""
        figures = asdict(self)
        figures.pop("rss_samples")
        return figures


# ---- pure verdicts ------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return round(ordered[rank], 3)


def overlapping_served_calls(records: list[Record]) -> list[str]:
    """Two served calls of one listener whose [answered_at, ended_at] intervals overlap."""
    by_listener: dict[str, list[Record]] = {}
    for record in records:
        if record.outcome == "served" and record.listener_id and record.answered_at:
            by_listener.setdefault(record.listener_id, []).append(record)
    found: list[str] = []
    for listener_id, calls in by_listener.items():
        calls.sort(key=lambda r: r.answered_at or r.ended_at)
        for before, after in itertools.pairwise(calls):
            assert after.answered_at is not None
            if after.answered_at < before.ended_at:
                found.append(f"{listener_id} answered {after.call_id} while still on {before.call_id}")
    return found


def busy_twice(audit: list[AuditRow]) -> list[str]:
    """A listener ringing or on a call for a second call before the first one ended (audit order)."""
    current: dict[str, str] = {}
    found: list[str] = []
    for row in audit:
        if row.state in BUSY_STATES:
            held = current.get(row.listener_id)
            if held is not None and held != row.call_id:
                found.append(f"{row.listener_id} {row.state} for {row.call_id} while busy with {held}")
            current[row.listener_id] = row.call_id or "?"
        else:
            current.pop(row.listener_id, None)
    return found


def inconsistent(records: list[Record], listener_ids: set[str]) -> list[str]:
    found: list[str] = []
    for r in records:
        if r.outcome == "served":
            if r.listener_id not in listener_ids or r.answered_at is None:
                found.append(f"{r.call_id} served without a listener of the run or an answer time")
            elif not r.queued_at <= r.answered_at <= r.ended_at:
                found.append(f"{r.call_id} times out of order")
        elif r.answered_at is not None or r.listener_id is not None:
            found.append(f"{r.call_id} {r.outcome} yet answered or attributed")
        if r.wait_seconds < 0 or r.ended_at < r.queued_at:
            found.append(f"{r.call_id} ends before it starts")
    return found


def memory_trend(
    samples: list[tuple[float, int]], start: float, end: float, warmup_fraction: float
) -> tuple[float | None, float | None]:
    """Median RSS (MB) of the first and the last quarter of the load window, after warm-up."""
    begin = start + (end - start) * warmup_fraction
    steady = [kb for t, kb in samples if begin <= t <= end]
    if len(steady) < 4:
        return None, None
    quarter = len(steady) // 4
    early = statistics.median(steady[:quarter]) / 1024
    late = statistics.median(steady[-quarter:]) / 1024
    return round(early, 2), round(late, 2)


# ---- the roster database, read-only from outside the service --------------------------------------------


class RosterFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Calls of an earlier run the service adopted from Asterisk at start-up: not this run's.
        self.adopted: frozenset[str] = frozenset()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # Read-only, and patient with the service's writers.
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            yield db
        finally:
            db.close()

    def count(self, table: str) -> int:
        with self._db() as db:
            (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 (fixed names)
            return int(n)

    def arrivals(self) -> set[str]:
        with self._db() as db:
            return {row[0] for row in db.execute("SELECT call_id FROM recent_calls")} - self.adopted

    def call_ids(self) -> set[str]:
        with self._db() as db:
            query = "SELECT call_id FROM recent_calls UNION SELECT call_id FROM call_records"
            return {row[0] for row in db.execute(query)} - self.adopted

    def records(self) -> list[Record]:
        with self._db() as db:
            rows = db.execute(
                "SELECT call_id, outcome, listener_id, queued_at, answered_at, ended_at, wait_seconds, offers"
                " FROM call_records"
            ).fetchall()
        return [
            Record(
                call_id=c,
                outcome=o,
                listener_id=lid,
                queued_at=_utc(q),
                answered_at=_utc(a) if a else None,
                ended_at=_utc(e),
                wait_seconds=float(w),
                offers=int(n),
            )
            for c, o, lid, q, a, e, w, n in rows
            if c not in self.adopted
        ]

    def audit(self) -> list[AuditRow]:
        with self._db() as db:
            rows = db.execute("SELECT listener_id, state, call_id, at FROM listener_events ORDER BY id")
            return [AuditRow(lid, state, call, _utc(at)) for lid, state, call, at in rows]

    def busy_listeners(self) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, state, state_call_id FROM listeners WHERE state IN (?, ?)", BUSY_STATES
            )
            return [f"{lid} {state} {call}" for lid, state, call in rows]

    def states(self) -> dict[str, str]:
        with self._db() as db:
            return dict(db.execute("SELECT id, state FROM listeners").fetchall())


def _utc(text: str) -> datetime:
    # SQLite keeps naive UTC (see roster/tables.py).
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- the service subprocess -----------------------------------------------------------------------------


def _cli() -> Path:
    # The console script next to this interpreter: the project's own virtualenv.
    return Path(sys.executable).parent / "helpline-pbx"


def _service_env(plan: LoadPlan, target: AsteriskTarget, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    env.update(
        HELPLINE_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'roster.db'}",
        HELPLINE_ARI_URL=target.ari_url,
        HELPLINE_ARI_USER=target.ari_user,
        HELPLINE_ARI_APP=target.app,
        HELPLINE_ARI_PASSWORD_FILE=str(target.ari_password_file),
        HELPLINE_KEYS_DIR=str(workdir / "keys"),
        HELPLINE_CONSOLE_PORT="0",
        HELPLINE_CONSOLE_DIR=str(workdir / "console"),
        HELPLINE_RING_TIMEOUT=f"{plan.ring_timeout:g}",
        HELPLINE_REST_AFTER_CALL=f"{plan.rest_after_call:g}",
        # A load run measures the call path: listeners are never paused for misses nor sent on breaks.
        HELPLINE_MAX_MISSED_OFFERS="0",
        HELPLINE_SHIFT_LIMITS="none",
        HELPLINE_MISSED_OFFER_DELAY="1",
        HELPLINE_DECLINED_OFFER_DELAY="1",
        # Every load caller has a number of their own, but a long soak reuses them.
        HELPLINE_RATE_LIMIT_CALLS="1000000",
        HELPLINE_ROSTER_POLL_INTERVAL="0.5",
        HELPLINE_DRAIN_TIMEOUT="20",
        HELPLINE_LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    return env


async def _cli_run(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        _cli(), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"helpline-pbx {args[0]} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


_ADDED = re.compile(r"^added (?P<id>\S+).*?SIP user: (?P<user>\S+).*?SIP password: (?P<secret>\S+)", re.S)


async def _add_listener(env: dict[str, str], number: int, run: str) -> LoadListener:
    out = await _cli_run(
        env, "listeners", "add", f"Load {run} {number:02d}", "--endpoint", f"load-{run}-{number:02d}"
    )
    match = _ADDED.search(out)
    if match is None:
        raise RuntimeError("`helpline-pbx listeners add` printed no SIP account")
    await _cli_run(env, "listeners", "login", match["id"])
    return LoadListener(match["id"], match["user"], match["secret"])


def _agi_port_taken() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", AGI_PORT)) == 0


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.2) -> None:
    """Poll `check` until it holds; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g}s for {what}")
        await asyncio.sleep(every)


class MemoryWatch:
    """VmRSS of one process, sampled once a second from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.started = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                self.samples.append((round(self.now(), 2), int(line.split()[1])))

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class ServiceLog:
    """The service's JSON log lines, read from outside while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connected(self) -> bool:
        return '"ari_connected"' in self.text()

    def figures(self) -> tuple[int, Counter[str], Counter[str]]:
        """(caller_arrived lines, lines per level, warning and error lines per event)."""
        arrived = 0
        levels: Counter[str] = Counter()
        warnings: Counter[str] = Counter()
        for line in self.text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                levels["not_json"] += 1
                continue
            if not isinstance(entry, dict):
                continue
            level = str(entry.get("level", "?"))
            levels[level] += 1
            if entry.get("event") == "caller_arrived":
                arrived += 1
            if level in ("warning", "error", "critical"):
                warnings[str(entry.get("event"))] += 1
        return arrived, levels, warnings


def _write_callers(path: Path, count: int) -> None:
    # One distinct number per caller (wrapping in a soak longer than the fiction range).
    lines = ["SEQUENTIAL"]
    lines += [f"{FICTION_PREFIX}{n % FICTION_SIZE:04d};" for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---- the run ----------------------------------------------------------------------------------------------


async def run_load(plan: LoadPlan, target: AsteriskTarget, workdir: Path) -> LoadReport:
    """Play `plan` against the Asterisk at `target` with a fresh service and roster in `workdir`."""
    report = LoadReport(plan=asdict(plan), started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    # Only one service may hold the Stasis app (and the AGI port): wait for another test's to finish.
    await until(lambda: asyncio.to_thread(lambda: not _agi_port_taken()), 60, "the AGI port to be free", 0.5)
    env = _service_env(plan, target, workdir)
    await _cli_run(env, "db", "upgrade")
    run = secrets.token_hex(2)
    # A few CLI processes at a time: dozens at once on a busy machine wait out SQLite's busy timeout.
    gate = asyncio.Semaphore(4)

    async def add(number: int) -> LoadListener:
        async with gate:
            return await _add_listener(env, number, run)

    listeners = list(await asyncio.gather(*(add(n + 1) for n in range(plan.listeners))))
    roster = RosterFile(workdir / "roster.db")
    log = ServiceLog(workdir / "service.log")
    t0 = time.monotonic()

    phones: list[SippProcess] = []
    callers: SippProcess | None = None
    service = await _start_service(env, log.path)
    memory = MemoryWatch(service.pid)
    memory.start()
    try:
        async with AriClient(target.ari_url, target.ari_user, target.ari_password) as ari:
            await _wait_service_ready(service, log, ari, listeners)
            phones = await _register_phones(plan, target, workdir, ari, listeners)
            report.adopted_before_load = await _wait_quiet(ari, target, roster, listeners)
            callers = _start_callers(plan, target, workdir)
            # SIPp's Call-IDs are <call number>-<pid>@<local ip>.
            callers_tail = f"-{callers.pid}@{target.trunk_ip}"
            load_start = memory.now()
            watch = asyncio.create_task(_count_channels(ari, roster, callers_tail, report))
            try:
                await _await_callers(plan, callers, report)
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            load_end = memory.now()
            await _settle(plan, roster, log, ari, callers_tail)
            memory.sample()
            footprint = Footprint(frozenset(roster.call_ids()), callers_tail)
            await _judge_asterisk(ari, target, footprint, report)
        _judge_roster(roster, listeners, report)
        report.arrivals_logged = log.figures()[0]
        report.rss_early_mb, report.rss_late_mb = memory_trend(
            memory.samples, load_start, load_end, plan.warmup_fraction
        )
    finally:
        if callers is not None:
            await callers.stop_async()
        for phone in phones:
            await phone.stop_async()
        report.service_exit_code = await _stop_service(service)
        await memory.stop()
    _, levels, warnings = log.figures()
    report.service_log_levels = dict(levels)
    report.service_warnings = dict(warnings)
    report.duration_seconds = round(time.monotonic() - t0, 1)
    report.rss_samples = memory.samples
    kbs = [kb for _, kb in memory.samples]
    if kbs:
        report.rss_peak_mb = round(max(kbs) / 1024, 2)
        report.rss_end_mb = round(kbs[-1] / 1024, 2)
    if report.rss_early_mb is not None and report.rss_late_mb is not None:
        report.rss_growth_mb = round(report.rss_late_mb - report.rss_early_mb, 2)
    return report


async def _start_service(env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        # The child keeps its own copy of the descriptor.
        return await asyncio.create_subprocess_exec(
            _cli(), "serve", env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def _wait_quiet(
    ari: AriClient, target: AsteriskTarget, roster: RosterFile, listeners: list[LoadListener]
) -> int:
    """Wait until nobody waits in the holding bridge and every listener is free; returns how many calls the
    service adopted from Asterisk (callers an earlier run left behind), which the verdicts then leave out.
    """

    async def quiet() -> bool:
        try:
            holding = await ari.get_bridge(f"{target.app}-waiting")
        except AriNotFound:
            return False
        states = await asyncio.to_thread(roster.states)
        return not holding.channels and all(states.get(listener.id) == "available" for listener in listeners)

    await until(quiet, 30, "an empty queue and every listener available")
    roster.adopted = frozenset(await asyncio.to_thread(roster.call_ids))
    return len(roster.adopted)


async def _wait_service_ready(
    service: asyncio.subprocess.Process,
    log: ServiceLog,
    ari: AriClient,
    listeners: list[LoadListener],
) -> None:
    async def connected() -> bool:
        if service.returncode is not None:
            raise RuntimeError(f"the service exited with {service.returncode}: {log.text()[-2000:]}")
        return log.connected()

    await until(connected, 30, "the service to connect to ARI")

    async def accounts_pushed() -> bool:
        for listener in listeners:
            try:
                await ari.get_endpoint("PJSIP", listener.endpoint)
            except AriNotFound:
                return False
        return True

    await until(accounts_pushed, 15, "the listeners' SIP accounts")


async def _register_phones(
    plan: LoadPlan, target: AsteriskTarget, workdir: Path, ari: AriClient, listeners: list[LoadListener]
) -> list[SippProcess]:
    answer = str(scenario_path("load_listener"))
    phones = [
        SippProcess(
            "softphone",
            workdir=workdir / "phones",
            remote=target.remote,
            service=listener.endpoint,
            auth_user=listener.endpoint,
            auth_password=listener.secret,
            calls=1,
            variables={
                "ring_min": str(plan.ringing.low_ms),
                "ring_max": str(plan.ringing.high_ms),
                "talk_min": str(plan.talk.low_ms),
                "talk_max": str(plan.talk.high_ms),
                # Phones started in the same second share SIPp's random sequence: shift each one.
                "skip_draws": str(index),
            },
            lifetime=plan.caller_deadline() + 120,
            extra_args=["-oocsf", answer],
        ).start()
        for index, listener in enumerate(listeners)
    ]

    async def registered() -> bool:
        for listener in listeners:
            try:
                if (await ari.get_endpoint("PJSIP", listener.endpoint)).state != "online":
                    return False
            except AriNotFound:
                return False
        return True

    # Asterisk sends no event for a registration to an app that is not subscribed to the endpoint.
    await until(registered, 15, "every softphone to register", 0.1)
    return phones


def _start_callers(plan: LoadPlan, target: AsteriskTarget, workdir: Path) -> SippProcess:
    numbers = workdir / "callers.csv"
    _write_callers(numbers, plan.callers)
    return SippProcess(
        "load_caller",
        workdir=workdir / "callers",
        local_ip=target.trunk_ip,
        remote=target.remote,
        service=LINE,
        calls=plan.callers,
        rate=plan.rate,
        variables={"patience_min": str(plan.patience.low_ms), "patience_max": str(plan.patience.high_ms)},
        lifetime=plan.caller_deadline() + 60,
        # -l: SIPp's default cap on simultaneous calls derives from -d, which this scenario does not use.
        extra_args=["-inf", str(numbers), "-l", str(plan.callers)],
    ).start()


async def _await_callers(plan: LoadPlan, callers: SippProcess, report: LoadReport) -> None:
    report.calls = plan.callers
    try:
        result = await callers.wait_async(plan.caller_deadline())
    except TimeoutError:
        stopped = await callers.stop_async()
        assert stopped is not None
        result = stopped
        report.callers_stuck = plan.callers - result.successful_calls - result.failed_calls
    report.callers_successful = result.successful_calls
    report.callers_failed = result.failed_calls


async def _count_channels(ari: AriClient, roster: RosterFile, callers_tail: str, report: LoadReport) -> None:
    """The run's channels on Asterisk, once a second: the peak shows the footprint finds what it should."""
    while True:
        footprint = Footprint(frozenset(await asyncio.to_thread(roster.call_ids)), callers_tail)
        owned = sum(footprint.owns_channel(c) for c in await ari.list_channels())
        report.asterisk_channels_peak = max(report.asterisk_channels_peak, owned)
        await asyncio.sleep(1.0)


async def _settle(
    plan: LoadPlan, roster: RosterFile, log: ServiceLog, ari: AriClient, callers_tail: str
) -> None:
    """Wait (bounded) until every arrival has its record, no listener is busy and Asterisk is clean.

    A timeout is not an error here: the verdicts that follow say what is missing.
    """

    async def recorded() -> bool:
        arrived = log.figures()[0]
        arrivals = await asyncio.to_thread(roster.arrivals)
        recorded = {r.call_id for r in await asyncio.to_thread(roster.records)}
        busy = await asyncio.to_thread(roster.busy_listeners)
        return arrived == len(arrivals) and arrivals <= recorded and not busy

    async def asterisk_clean() -> bool:
        footprint = Footprint(frozenset(roster.call_ids()), callers_tail)
        return not [c for c in await ari.list_channels() if footprint.owns_channel(c)]

    with contextlib.suppress(TimeoutError):
        await until(recorded, plan.settle_timeout, "every arrival to be recorded")
    with contextlib.suppress(TimeoutError):
        await until(asterisk_clean, 10, "Asterisk to hang up the run's channels")


@dataclass(frozen=True)
class Footprint:
    """What on the shared Asterisk is this run's: the SIPp callers' channels (SIPp's Call-IDs end in
    -<pid>@<ip>) and whatever the service named after one of the run's call ids (listener legs, bridges)."""

    call_ids: frozenset[str]
    callers_tail: str

    def _named_after_a_call(self, name: str) -> bool:
        return any(name == call or name.startswith(f"{call}-") for call in self.call_ids)

    def owns_channel(self, channel: Channel) -> bool:
        by_dialog = channel.protocol_id is not None and channel.protocol_id.endswith(self.callers_tail)
        return by_dialog or self._named_after_a_call(channel.id)

    def owns_bridge(self, bridge: Bridge) -> bool:
        return self._named_after_a_call(bridge.id)


async def _judge_asterisk(
    ari: AriClient, target: AsteriskTarget, footprint: Footprint, report: LoadReport
) -> None:
    holding = f"{target.app}-waiting"
    channels = [c for c in await ari.list_channels() if footprint.owns_channel(c)]
    report.leftover_channels = [f"channel {c.id} {c.name} {c.state}" for c in channels]
    left = {c.id for c in channels}
    for bridge in await ari.list_bridges():
        if bridge.id == holding:
            if left & set(bridge.channels):
                report.leftover_bridges.append(
                    f"holding bridge still holds {sorted(left & set(bridge.channels))}"
                )
        elif footprint.owns_bridge(bridge):
            report.leftover_bridges.append(
                f"bridge {bridge.id} with {len(bridge.channels)} channels, created {bridge.creationtime}"
            )


def _judge_roster(roster: RosterFile, listeners: list[LoadListener], report: LoadReport) -> None:
    arrivals = roster.arrivals()
    records = roster.records()
    by_id = {r.call_id: r for r in records}
    report.reached = len(arrivals)
    report.records = len(records)
    outcomes = Counter(r.outcome for r in records)
    report.served = outcomes["served"]
    report.abandoned = outcomes["abandoned"]
    report.fallback = outcomes["fallback"]
    # A record without an arrival would be as wrong as an arrival without a record.
    report.lost = sorted(arrivals ^ set(by_id))
    report.double_bookings = overlapping_served_calls(records) + busy_twice(roster.audit())
    report.inconsistent_records = inconsistent(records, {listener.id for listener in listeners})
    report.busy_listeners_after = roster.busy_listeners()
    served = [r.wait_seconds for r in records if r.outcome == "served"]
    report.wait_served_p50 = percentile(served, 0.5)
    report.wait_served_p99 = percentile(served, 0.99)
    report.wait_abandoned_p50 = percentile([r.wait_seconds for r in records if r.outcome == "abandoned"], 0.5)
    report.offers_per_call_max = max((r.offers for r in records), default=0)


async def _stop_service(service: asyncio.subprocess.Process) -> int | None:
    if service.returncode is None:
        service.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(service.wait(), 30)
        except TimeoutError:
            service.kill()
            await service.wait()
    return service.returncode


# ---- the soak command -------------------------------------------------------------------------------------


def main() -> None:
    defaults = LoadPlan()
    parser = argparse.ArgumentParser(
        description="Run a load against the real Asterisk and report its figures."
    )
    parser.add_argument("--callers", type=int, default=defaults.callers)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="new callers per second")
    parser.add_argument("--listeners", type=int, default=defaults.listeners)
    parser.add_argument(
        "--patience", type=int, nargs=2, default=[5_000, 40_000], metavar=("MIN_MS", "MAX_MS")
    )
    parser.add_argument("--ringing", type=int, nargs=2, default=[500, 3_000], metavar=("MIN_MS", "MAX_MS"))
    parser.add_argument("--talk", type=int, nargs=2, default=[1_000, 8_000], metavar=("MIN_MS", "MAX_MS"))
    parser.add_argument("--out", type=Path, default=Path("soak-results/soak.json"))
    parser.add_argument("--keep", type=Path, help="keep the run's files (logs, SIPp traces, database) here")
    args = parser.parse_args()
    plan = LoadPlan(
        callers=args.callers,
        rate=args.rate,
        listeners=args.listeners,
        patience=Span(*args.patience),
        ringing=Span(*args.ringing),
        talk=Span(*args.talk),
    )
    configure_logging("warning")
    target = AsteriskTarget.from_script(start=True)
    if args.keep is not None:
        report = asyncio.run(run_load(plan, target, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="helpline-soak-") as tmp:
            report = asyncio.run(run_load(plan, target, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    problems = report.problems()
    args.out.write_text(
        json.dumps({**asdict(report), "problems": problems}, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps({**report.summary(), "problems": problems}, indent=2))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
