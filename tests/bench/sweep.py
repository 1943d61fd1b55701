"""Capacity: new callers a second into the line, several rates one after another, many listeners answering.

Per rate: callers offered; callers lost (never reached a listener nor the fallback: the roster's call
records say served, fallback or abandoned, and a caller with no record never reached the service); the
screen's failures the service logged (the caller then went on unscreened); time-to-ring; CPU per call of the
service and of Asterisk (utime + stime from /proc, before and after).

A listener's INVITE does not say which caller it is for (the line hides callers from listeners), so rings
are matched to callers first come, first served, the line's own order (traces.match_fifo).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.bench.ring import LINE, caller, numbers_file
from tests.bench.service import Line, start_line, stop_line, wait_all_available, wait_quiet
from tests.bench.target import BenchAsterisk, cpu_seconds
from tests.bench.traces import departures, first_invites, match_fifo, summary_ms


async def measure(
    asterisk: BenchAsterisk,
    workdir: Path,
    rates: list[float],
    duration: float,
    listeners: int,
    hold_ms: int,
) -> list[dict[str, Any]]:
    lifetime = sum(duration + hold_ms / 1000 + 90 for _ in rates) + 300
    line = await start_line(asterisk, workdir / "line", listeners, lifetime)
    results = []
    first = 0
    try:
        for rate in rates:
            calls = max(1, round(rate * duration))
            results.append(await _one_rate(asterisk, workdir, line, rate, calls, first, hold_ms))
            first += calls
    finally:
        results_exit = await stop_line(line)
    for row in results:
        row["service_exit_code"] = results_exit
        row["service_quiet_at_start"] = line.quiet_at_start
    return results


async def _one_rate(
    asterisk: BenchAsterisk, workdir: Path, line: Line, rate: float, calls: int, first: int, hold_ms: int
) -> dict[str, Any]:
    tag = f"rate{rate:g}"
    # Each rate starts from a line at rest: the previous rate's writes done.
    quiet = await wait_quiet(line.pid, 30)
    numbers = numbers_file(workdir / f"{tag}.csv", first, calls)
    before_records = {r.call_id for r in await asyncio.to_thread(line.roster.records)}
    before_screen = line.screen_failures()
    before_served = line.screens_served()
    asterisk_pid = asterisk.pid()
    cpu_service, cpu_asterisk = cpu_seconds(line.pid), cpu_seconds(asterisk_pid)
    started = time.monotonic()
    deadline = calls / rate + hold_ms / 1000 + 60
    process = caller(
        asterisk,
        workdir / tag,
        local_ip=asterisk.trunk_ip,
        service=LINE,
        numbers=numbers,
        hold_ms=hold_ms,
        calls=calls,
        rate=rate,
        lifetime=deadline + 30,
    )
    process.start()
    try:
        result = await process.wait_async(deadline)
        stuck = 0
    except TimeoutError:
        result = await process.stop_async()
        assert result is not None
        stuck = calls - result.successful_calls - result.failed_calls
    # Every listener free again: each call of this rate is over and written.
    settled = await wait_all_available(line, 60)
    elapsed = time.monotonic() - started
    cpu_service = cpu_seconds(line.pid) - cpu_service
    cpu_asterisk = cpu_seconds(asterisk_pid) - cpu_asterisk
    records = [r for r in await asyncio.to_thread(line.roster.records) if r.call_id not in before_records]
    outcomes = Counter(r.outcome for r in records)
    screen = line.screen_failures() - before_screen

    raw = process.message_file.read_bytes()
    sent = first_invites(raw, received=False)
    left = departures(raw)
    begin = min(sent.values(), default=0.0)
    rings = [
        at
        for phone in line.phones
        for at in first_invites(phone.message_file.read_bytes(), received=True).values()
        if at >= begin
    ]
    ring = match_fifo([(at, left.get(cid, float("inf"))) for cid, at in sent.items()], rings)
    return {
        "rate_per_s": rate,
        "offered": calls,
        "invites_sent": len(sent),
        "served": outcomes["served"],
        "fallback": outcomes["fallback"],
        "abandoned": outcomes["abandoned"],
        "lost": calls - outcomes["served"] - outcomes["fallback"],
        "no_record": calls - len(records),
        "screens_served": line.screens_served() - before_served,
        "screen_failures": sum(screen.values()),
        "screen_failures_by_reason": dict(screen),
        "sipp_failed_calls": result.failed_calls,
        "sipp_stuck_calls": stuck,
        "settled": settled,
        "listener_invites": len(rings),
        "time_to_ring": summary_ms(ring),
        "service_cpu_ms_per_call": round(cpu_service * 1000 / calls, 2),
        "asterisk_cpu_ms_per_call": round(cpu_asterisk * 1000 / calls, 2),
        "wall_s": round(elapsed, 1),
        "service_quiet_before": quiet,
    }
