"""`make demo`: the line running for a newcomer to look at, on this machine's Asterisk.

A fresh SQLite roster in a folder of its own, two lines, six listeners whose SIPp softphones ring a moment,
answer and talk a while, and a stream of SIPp callers (fictitious numbers) for a few minutes. It prints the
console's address and a coordinator's one-time sign-in, then runs until the callers are done (or Ctrl-C).

    python -m tests.load.demo [--minutes 5] [--rate 0.25] [--port 8089] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.sipp import SippProcess
from tests.load.soak import (
    LINE,
    AsteriskTarget,
    LoadListener,
    LoadPlan,
    ServiceLog,
    Span,
    _agi_port_taken,
    _cli_run,
    _register_phones,
    _service_env,
    _start_callers,
    _start_service,
    _stop_service,
    _wait_service_ready,
)

from helpline_pbx.ari.client import AriClient
from helpline_pbx.cli.board import fetch_board
from helpline_pbx.logs import configure_logging

PSEUDONYMS = ("Camille", "Alix", "Sacha", "Noa", "Lou", "Maël")
_ADDED = re.compile(r"^added (?P<id>\S+).*?SIP user: (?P<user>\S+).*?SIP password: (?P<secret>\S+)", re.S)
_ONCE = re.compile(r"one-time password: (\S+)")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def _listeners(env: dict[str, str]) -> list[LoadListener]:
    out = []
    for number, name in enumerate(PSEUDONYMS, 1):
        role = "professional" if number == 2 else "supervisor" if number == 6 else "volunteer"
        added = await _cli_run(
            env, "listeners", "add", name, "--endpoint", f"demo-{number:02d}", "--role", role
        )
        match = _ADDED.search(added)
        if match is None:
            raise RuntimeError("`helpline-pbx listeners add` printed no SIP account")
        await _cli_run(env, "listeners", "login", match["id"])
        out.append(LoadListener(match["id"], match["user"], match["secret"]))
    return out


def demo_plan(minutes: float, rate: float, *, smoke: bool = False) -> LoadPlan:
    if smoke:
        # A few short calls: enough to see one answered and the console serve the board.
        return LoadPlan(
            callers=3,
            rate=1,
            listeners=len(PSEUDONYMS),
            patience=Span(20_000, 25_000),
            ringing=Span(200, 500),
            talk=Span(1_000, 2_000),
            ring_timeout=10,
            rest_after_call=0.5,
        )
    return LoadPlan(
        callers=max(1, round(minutes * 60 * rate)),
        rate=rate,
        listeners=len(PSEUDONYMS),
        patience=Span(30_000, 120_000),
        ringing=Span(1_000, 4_000),
        talk=Span(20_000, 70_000),
        ring_timeout=15,
        rest_after_call=10,
    )


def _board(workdir: Path) -> dict[str, Any]:
    """The running console's board, read as `helpline-pbx board` reads it (the box's token)."""
    folder = workdir / "console"
    return fetch_board((folder / "url").read_text().strip(), (folder / "board-token").read_text().strip())


async def run_demo(plan: LoadPlan, port: int, workdir: Path, *, smoke: bool = False) -> int:
    target = AsteriskTarget.from_script(start=True)
    if _agi_port_taken():
        print(
            "demo: a helpline-pbx service already runs on this Asterisk (make run?): stop it first, or the "
            "demo would take its application and its calls",
            file=sys.stderr,
        )
        return 1
    minutes = plan.callers / plan.rate / 60
    env = _service_env(plan, target, workdir)
    env["HELPLINE_CONSOLE_PORT"] = str(port)
    await _cli_run(env, "db", "upgrade")
    await _cli_run(
        env,
        "lines",
        "add",
        "ecoute",
        "--label",
        "Écoute jeunes",
        "--number",
        LINE,
        "--audience",
        "young people: school bullying, identity, anxiety",
        "--service-level",
        "20",
    )
    listeners = await _listeners(env)
    printed = await _cli_run(env, "accounts", "add", "coordination", "--role", "coordinator")
    once = _ONCE.search(printed)
    assert once is not None, "accounts add printed no one-time password"
    log = ServiceLog(workdir / "service.log")
    service = await _start_service(env, log.path)
    phones: list[SippProcess] = []
    callers: SippProcess | None = None
    try:
        async with AriClient(target.ari_url, target.ari_user, target.ari_password) as ari:
            await _wait_service_ready(service, log, ari, listeners)
            phones = await _register_phones(plan, target, workdir, ari, listeners)
            callers = _start_callers(plan, target, workdir)
            url = (workdir / "console" / "url").read_text().strip()
            print(
                f"\nhelpline-pbx demo: {len(listeners)} listeners on duty, {plan.callers} callers over "
                f"{minutes:g} min (fictitious numbers)\n"
                f"  console:   {url}/\n"
                f"  sign in:   coordination / {once.group(1)}  (one-time: you choose your own password)\n"
                f"  terminal:  HELPLINE_CONSOLE_DIR={workdir / 'console'} .venv/bin/helpline-pbx board\n"
                f"  files:     {workdir}\n"
                "  Ctrl-C stops it.\n",
                flush=True,
            )
            started = time.monotonic()
            on_duty = len(_board(workdir)["listeners"])
            with contextlib.suppress(TimeoutError):
                await callers.wait_async(plan.caller_deadline())
            answered = _board(workdir)["total"]["answered"]
            print(
                f"demo: the callers are done after {time.monotonic() - started:.0f} s; the board showed "
                f"{on_duty} listeners and counts {answered} answered calls today",
                flush=True,
            )
            if smoke and (on_duty != len(PSEUDONYMS) or answered < 1):
                return 1
    finally:
        if callers is not None:
            await callers.stop_async()
        for phone in phones:
            await phone.stop_async()
        await _stop_service(service)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long callers keep arriving")
    parser.add_argument("--rate", type=float, default=0.25, help="new callers per second")
    parser.add_argument("--port", type=int, default=8089, help="the console's port (0: any free one)")
    parser.add_argument("--keep", type=Path, help="keep the demo's roster and logs in this folder")
    parser.add_argument(
        "--smoke", action="store_true", help="three short calls, then exit: 1 if none was answered"
    )
    args = parser.parse_args()
    configure_logging("warning")
    port = args.port
    if port and not _port_free(port):
        print(f"demo: port {port} is taken (is `make run` running?): using any free port", file=sys.stderr)
        port = 0
    try:
        plan = demo_plan(args.minutes, args.rate, smoke=args.smoke)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            sys.exit(asyncio.run(run_demo(plan, port, args.keep, smoke=args.smoke)))
        with tempfile.TemporaryDirectory(prefix="helpline-demo-") as tmp:
            sys.exit(asyncio.run(run_demo(plan, port, Path(tmp), smoke=args.smoke)))
    except KeyboardInterrupt:
        print("demo: stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
