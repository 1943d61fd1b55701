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
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
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
    """Every section asked for; one that fails says why in its place, and the others still run. The
    results are written after each section, so a long run that breaks keeps what it measured."""
    results: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "smoke": args.smoke,
        "machine": {"cpus": _cpus(), "python": platform.python_version(), "load_before": _load()},
    }
    asterisk = BenchAsterisk.prepare() if {"ring", "sweep"} & set(args.sections) else None
    sections: dict[str, Callable[[], Awaitable[Any]]] = {
        "ring": lambda: ring.measure(
            _need(asterisk), workdir / "ring", args.calls, args.hold_ms, args.warmup
        ),
        "sweep": lambda: _sweep(args, _need(asterisk), workdir / "sweep"),
        "core": lambda: asyncio.to_thread(_core, args),
        "waiting": lambda: _waiting(args),
    }
    for name in SECTIONS:
        if name not in args.sections:
            continue
        try:
            results[name] = await sections[name]()
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["machine"]["load_after"] = _load()
        save(results, args.out)
    return results


def _need(asterisk: BenchAsterisk | None) -> BenchAsterisk:
    assert asterisk is not None
    return asterisk


async def _sweep(args: argparse.Namespace, asterisk: BenchAsterisk, workdir: Path) -> dict[str, Any]:
    rates = await sweep.measure(
        asterisk, workdir, args.rates, args.duration, args.listeners, args.sweep_hold_ms
    )
    return {
        "listeners": args.listeners,
        "hold_ms": args.sweep_hold_ms,
        "duration_s": args.duration,
        "rates": rates,
    }


def save(results: dict[str, Any], out: Path) -> None:
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "bench.md").write_text(markdown(results), encoding="utf-8")


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
    # Its own settings (tests/bench/waiting.py's parser): the 1,000 callers, or a handful for the
    # smoke, with a short hold and a short fallback so that it ends within the smoke's time.
    small = ["--callers", "12", "--rate", "6", "--hold", "8", "--fallback-ring", "3", "--fallback-wait", "10"]
    waiting_args = module.parser().parse_args(small if args.smoke else [])
    if args.keep is not None:
        waiting_args.workdir = str(args.keep / "waiting")
    result: dict[str, Any] = await module.measure(waiting_args)
    return result


def _cpus() -> int:
    return os.cpu_count() or 0


def _load() -> list[float]:
    # The machine is shared: the load around the run says how far to trust its figures.
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure_logging("warning")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.keep is not None:
        results = asyncio.run(bench(args, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
            results = asyncio.run(bench(args, Path(tmp)))
    print(markdown(results))
    failed = [name for name in SECTIONS if isinstance(results.get(name), dict) and "error" in results[name]]
    if failed:
        print(f"bench: these sections failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
