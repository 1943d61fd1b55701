"""`make bench`: what a caller feels, on the real Asterisk scripts/asterisk.sh provisions.

Sections, in order: ring (time-to-ring of Queue(), a bare ARI router and the line, interleaved), sweep
(capacity at several rates of new callers), core (the core's µs per decision, tests/bench/core_decisions.py),
waiting (tests/bench/waiting.py, when that module exists: `async def measure(args) -> dict`). Results in
<out>/bench.json and a short table in <out>/bench.md.

    python -m tests.bench.run [--smoke] [--out bench-results] [--sections ring sweep core waiting]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench import core_decisions, ring, sweep
from tests.bench.report import markdown
from tests.bench.target import BenchAsterisk

from helpline_pbx.logs import configure_logging

SECTIONS = ("ring", "sweep", "core", "waiting")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="what a caller feels, on the real Asterisk")
    parser.add_argument("--smoke", action="store_true", help="everything, tiny: a few calls, one low rate")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--calls", type=int, default=100, help="time-to-ring calls per path")
    parser.add_argument("--warmup", type=int, default=2, help="rounds of calls left out of the ring figures")
    parser.add_argument(
        "--hold-ms", type=int, default=800, help="how long a ring caller stays after the answer"
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 20, 30, 50], help="new callers per s")
    parser.add_argument("--duration", type=float, default=60, help="seconds of arrivals per rate")
    parser.add_argument("--listeners", type=int, default=160, help="listeners answering in the sweep")
    parser.add_argument("--sweep-hold-ms", type=int, default=2500, help="how long a sweep caller stays")
    parser.add_argument("--keep", type=Path, help="keep the SIPp traces and service logs here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.warmup, args.rates, args.duration, args.listeners = 3, 1, [2.0], 4.0, 4
        args.sweep_hold_ms = 1500
    return args


async def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "smoke": args.smoke,
        "machine": {"cpus": _cpus(), "python": platform.python_version(), "load_before": _load()},
    }
    asterisk = BenchAsterisk.prepare() if {"ring", "sweep"} & set(args.sections) else None
    if "ring" in args.sections:
        assert asterisk is not None
        results["ring"] = await ring.measure(
            asterisk, workdir / "ring", args.calls, args.hold_ms, args.warmup
        )
    if "sweep" in args.sections:
        assert asterisk is not None
        results["sweep"] = {
            "listeners": args.listeners,
            "hold_ms": args.sweep_hold_ms,
            "duration_s": args.duration,
            "rates": await sweep.measure(
                asterisk, workdir / "sweep", args.rates, args.duration, args.listeners, args.sweep_hold_ms
            ),
        }
    if "core" in args.sections:
        results["core"] = _core(args)
    if "waiting" in args.sections:
        results["waiting"] = await _waiting(args)
    results["machine"]["load_after"] = _load()
    return results


def _core(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = args.out / "core_decisions.json"
    sizes = ["--listeners", "200", "--waiting", "50", "--events", "200"] if args.smoke else []
    core_decisions.main([*sizes, "--out", str(out)])
    rows: list[dict[str, Any]] = json.loads(out.read_text())["core_decisions"]
    return rows


async def _waiting(args: argparse.Namespace) -> dict[str, Any]:
    # Another part of the bench, written beside this one: run it when it is there.
    if importlib.util.find_spec("tests.bench.waiting") is None:
        return {"skipped": "tests/bench/waiting.py is not there yet"}
    module = importlib.import_module("tests.bench.waiting")
    result: dict[str, Any] = await module.measure(args)
    return result


def _cpus() -> int:
    return os.cpu_count() or 0


def _load() -> list[float]:
    # The machine is shared: the load around the run says how far to trust its figures.
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    configure_logging("warning")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.keep is not None:
        results = asyncio.run(bench(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
            results = asyncio.run(bench(args, Path(tmp)))
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = markdown(results)
    (args.out / "bench.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
