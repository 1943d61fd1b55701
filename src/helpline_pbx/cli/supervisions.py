"""`helpline-pbx supervisions list`: the audit of supervisors listening in, coaching or joining."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, on_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    supervisions = sub.add_parser("supervisions", help="audit of supervisors listening in")
    s_sub = supervisions.add_subparsers(dest="supervisions_command", required=True)
    s_list = s_sub.add_parser("list", help="who supervised whose call, how, when; oldest first")
    s_list.add_argument("--days", type=float, default=30.0, help="how far back (default 30 days)")


async def run(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        from helpline_pbx.roster.repository import Roster
        from helpline_pbx.roster.supervisions import Supervisions

        names = {r.id: r.pseudonym for r in await Roster(engine).list_listeners()}
        since = datetime.now(UTC) - timedelta(days=args.days)
        print(f"{'started (UTC)':<17} {'until':<8} {'mode':<7} {'supervisor':<20} {'listener':<20} call")
        for row in await Supervisions(engine).list(since):
            until = f"{row.ended_at:%H:%M:%S}" if row.ended_at else "ongoing"
            print(
                f"{row.started_at:%Y-%m-%d %H:%M} {until:<8} {row.mode.value:<7} "
                f"{names.get(row.supervisor_id, row.supervisor_id):<20} "
                f"{names.get(row.listener_id, row.listener_id):<20} {row.call_id or '-'}"
            )
        return EXIT_OK

    return await on_database(work)
