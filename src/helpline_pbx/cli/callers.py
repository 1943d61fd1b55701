"""`helpline-pbx callers ...`: bars on abusive callers, by call code only (no number is ever shown)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, fail, on_database
from helpline_pbx.settings import default_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    callers = sub.add_parser(
        "callers", help="bar abusive callers, by call code only (no number is ever shown)"
    )
    c_sub = callers.add_subparsers(dest="callers_command", required=True)
    bar = c_sub.add_parser("bar", help="bar the caller of a recent call")
    bar.add_argument("call", help='the call\'s code as the listener heard it ("4821") or its call id')
    days = default_of("bar_days")
    bar.add_argument("--days", type=float, default=days, help=f"how long (default {days:g} days)")
    bar.add_argument("--reason", required=True, help="why, for the team (no caller details)")
    lift = c_sub.add_parser("lift", help="lift a bar")
    lift.add_argument("bar_id", type=int)
    c_sub.add_parser("list", help="bars in force")


async def run(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        from helpline_pbx.roster.callers import Callers

        callers = Callers(engine)
        now = datetime.now(UTC)
        match args.callers_command:
            case "bar":
                bar = await callers.bar_call(
                    args.call,
                    until=now + timedelta(days=args.days),
                    reason=args.reason,
                    created_by="cli",
                    now=now,
                )
                print(f"bar {bar.id} in force until {bar.until:%Y-%m-%d %H:%M} UTC")
            case "lift":
                if not await callers.lift_bar(args.bar_id, now):
                    return fail(f"no bar {args.bar_id} in force")
                print(f"bar {args.bar_id} lifted")
            case "list":
                print(f"{'bar':<6} {'until (UTC)':<17} {'by':<12} reason")
                for b in await callers.bars(now):
                    print(f"{b.id:<6} {b.until:%Y-%m-%d %H:%M} {b.created_by:<12} {b.reason}")
        return EXIT_OK

    return await on_database(work)
