"""`helpline-pbx debriefs ...`: requests for a debrief after calls listeners marked difficult."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, fail, on_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    debriefs = sub.add_parser("debriefs", help="debrief requests after calls listeners marked difficult")
    d_sub = debriefs.add_subparsers(dest="debriefs_command", required=True)
    d_sub.add_parser("list", help="requests not handled yet, oldest first")
    handle = d_sub.add_parser("handle", help="close a listener's open requests (as *41 + their code)")
    handle.add_argument("listener", help="id, endpoint, pseudonym or short code")


async def run(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        from helpline_pbx.roster.debriefs import Debriefs
        from helpline_pbx.roster.repository import Roster

        debriefs = Debriefs(engine)
        match args.debriefs_command:
            case "list":
                listeners = {r.id: r for r in await Roster(engine).list_listeners()}
                print(f"{'request':<8} {'asked (UTC)':<17} {'listener':<20} {'code':<6} call")
                for d in await debriefs.open():
                    who = listeners.get(d.listener_id)
                    name = who.pseudonym if who else f"({d.listener_id}, removed)"
                    code = (who.code if who else None) or "-"
                    print(
                        f"{d.id:<8} {d.requested_at:%Y-%m-%d %H:%M} {name:<20} {code:<6} {d.call_id or '-'}"
                    )
            case "handle":
                handled = await debriefs.handle(args.listener, "cli", datetime.now(UTC))
                if handled == 0:
                    return fail(f"no open debrief request for {args.listener!r}")
                print(f"{handled} debrief request{'s' if handled > 1 else ''} of {args.listener} handled")
        return EXIT_OK

    return await on_database(work)
