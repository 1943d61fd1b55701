"""Time-to-ring, three ways on one Asterisk in one run: from the INVITE a SIPp caller sends on a trunk to the
INVITE the listener's SIPp phone receives.

- queue: Asterisk's own Queue() (app_queue, leastrecent), one bench-only queue and member;
- router: the bench's bare ARI router (tests/bench/router.py) in a Stasis application of its own;
- helpline: the line itself, `helpline-pbx serve` with a SQLite roster and one listener on duty, through the
  real trunk dialplan ([from-trunk], the screen, the anonymiser, the media wait, Stasis).

Calls are interleaved (queue, router, helpline, queue, ...), one at a time, so no call waits for another and
each phone's n-th INVITE belongs to that path's n-th call. Both times come from SIPp's own traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.bench.service import start_line, stop_line, wait_all_available
from tests.bench.target import BenchAsterisk
from tests.bench.traces import first_invites, match_sequential, summary_ms
from tests.e2e.sipp import SippProcess

PATHS = ("queue", "router", "helpline")
LINE = "0800123456"
# ARCEP keeps 06 39 98 00 00 - 06 39 98 99 99 for fiction: bench callers take the upper half of it, so none
# has the number the e2e tests' own caller has (the leak hunt looks for that one).
FICTION_FIRST = 639_985_000
FICTION_SIZE = 5_000


def numbers_file(path: Path, first: int, count: int) -> Path:
    """A SIPp injection file of `count` fictitious numbers, distinct up to 5,000 (each caller a new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"0{FICTION_FIRST + (first + n) % FICTION_SIZE};" for n in range(count)]
    path.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def caller(
    asterisk: BenchAsterisk,
    workdir: Path,
    *,
    local_ip: str,
    service: str,
    numbers: Path,
    hold_ms: int,
    calls: int = 1,
    rate: float | None = None,
    lifetime: float = 60,
) -> SippProcess:
    """Callers who send their audio from the answer on (the line waits for it) and hang up after `hold_ms`."""
    return SippProcess(
        "load_caller",
        workdir=workdir,
        local_ip=local_ip,
        remote=asterisk.remote,
        service=service,
        calls=calls,
        rate=rate,
        variables={"patience_min": str(hold_ms), "patience_max": str(hold_ms)},
        lifetime=lifetime,
        # -l: SIPp's default cap on simultaneous calls derives from -d, which this scenario does not use.
        extra_args=["-inf", str(numbers), "-l", str(max(calls, 1))],
    )


@contextlib.asynccontextmanager
async def router(asterisk: BenchAsterisk, workdir: Path) -> AsyncIterator[None]:
    """The bare router as its own process, like the line."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bench.router",
        "--ari-url",
        asterisk.ari_url,
        "--user",
        asterisk.ari_user,
        "--password-file",
        str(asterisk.ari_password_file),
        "--app",
        asterisk.router_app,
        "--endpoint",
        "PJSIP/bench-router-phone",
        stdout=asyncio.subprocess.PIPE,
        stderr=(workdir / "router.err").open("wb"),
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 15)
        if ready.strip() != b"ready":
            raise RuntimeError(f"the bench router did not start: {(workdir / 'router.err').read_text()}")
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def measure(
    asterisk: BenchAsterisk, workdir: Path, calls: int, hold_ms: int, warmup: int
) -> dict[str, Any]:
    """`calls` per path (after `warmup` rounds left out of the figures)."""
    rounds = warmup + calls
    lifetime = rounds * len(PATHS) * (hold_ms / 1000 + 3) + 120
    phones = {
        "queue": SippProcess(
            "listener_answer",
            workdir=workdir / "queue",
            local_ip=asterisk.queue_phone[0],
            local_port=asterisk.queue_phone[1],
            lifetime=lifetime,
        ),
        "router": SippProcess(
            "listener_answer",
            workdir=workdir / "router",
            local_ip=asterisk.router_phone[0],
            local_port=asterisk.router_phone[1],
            lifetime=lifetime,
        ),
    }
    sent: dict[str, list[float]] = {path: [] for path in PATHS}
    failed: dict[str, int] = dict.fromkeys(PATHS, 0)
    numbers = numbers_file(workdir / "numbers.csv", 0, 1)
    line = await start_line(asterisk, workdir / "helpline", 1, lifetime)
    try:
        for phone in phones.values():
            phone.start()
            await phone.wait_listening_async()
        phones["helpline"] = line.phones[0]
        async with router(asterisk, workdir / "router"):
            for n in range(rounds):
                for path in PATHS:
                    numbers_file(numbers, n * len(PATHS) + PATHS.index(path), 1)
                    at, ok = await _one_call(asterisk, workdir / path / f"call{n}", path, numbers, hold_ms)
                    if path == "helpline":
                        # The listener is free again before the next call, as the others' phones are.
                        await wait_all_available(line, 10)
                    if n >= warmup:
                        failed[path] += not ok
                        if at is not None:
                            sent[path].append(at)
    finally:
        for path in ("queue", "router"):
            await phones[path].stop_async()
        await stop_line(line)
    out: dict[str, Any] = {"calls_per_path": calls, "warmup_rounds": warmup, "hold_ms": hold_ms, "paths": {}}
    for path in PATHS:
        rings = list(first_invites(phones[path].message_file.read_bytes(), received=True).values())
        matched = match_sequential(sent[path], rings)
        times = [t for t in matched if t is not None]
        out["paths"][path] = summary_ms(times) | {
            "rang_nobody": len(matched) - len(times),
            "caller_failures": failed[path],
        }
    out["ratios"] = ratios(out["paths"])
    return out


async def _one_call(
    asterisk: BenchAsterisk, workdir: Path, path: str, numbers: Path, hold_ms: int
) -> tuple[float | None, bool]:
    """(when the caller's INVITE left, whether SIPp counted the call successful)."""
    local_ip, service = (asterisk.trunk_ip, LINE) if path == "helpline" else (asterisk.caller_ip, path)
    process = caller(asterisk, workdir, local_ip=local_ip, service=service, numbers=numbers, hold_ms=hold_ms)
    process.start()
    try:
        result = await process.wait_async(30)
    except TimeoutError:
        result = await process.stop_async()
    invites = first_invites(process.message_file.read_bytes(), received=False)
    at = min(invites.values(), default=None)
    return at, result is not None and result.all_succeeded


def ratios(paths: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """helpline / router and helpline / queue, for p50, p90 and p99."""
    out: dict[str, float | None] = {}
    for base in ("router", "queue"):
        for key in ("p50_ms", "p90_ms", "p99_ms"):
            top, bottom = paths["helpline"].get(key), paths[base].get(key)
            name = f"helpline_over_{base}_{key.removesuffix('_ms')}"
            out[name] = round(top / bottom, 2) if top is not None and bottom else None
    return out
