"""The `helpline-pbx` command: serve, check, welcome, board, db upgrade, purge, and the roster's command
groups (listeners, lines, debriefs, supervisions, callers, accounts), one module each."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from helpline_pbx.cli import accounts, board, callers, database, debriefs, listeners, service, supervisions
from helpline_pbx.cli.common import EXIT_CONFIG, EXIT_FAILED
from helpline_pbx.lines import cli as lines
from helpline_pbx.settings import SettingsError

__all__ = ["main"]

GroupRun = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _groups() -> dict[str, GroupRun]:
    """The groups whose commands all run on the roster database, by their first word. Built when called:
    the lines' group lives in its feature's folder and imports cli.common, so it may be half imported
    while this package is."""
    return {
        "listeners": listeners.run,
        "lines": lines.run,
        "debriefs": debriefs.run,
        "supervisions": supervisions.run,
        "callers": callers.run,
        "accounts": accounts.run,
    }


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="helpline-pbx", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for module in (service, database, listeners, debriefs, supervisions, callers, lines, accounts, board):
        module.add_parser(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        match args.command:
            case "serve":
                return service.serve()
            case "check":
                return service.check()
            case "welcome":
                return service.welcome()
            case "db":
                return database.upgrade()
            case "board":
                return board.board(args)
            case "purge":
                return asyncio.run(database.purge())
            case group if group in (groups := _groups()):
                return asyncio.run(groups[group](args))
    except SettingsError as exc:
        print(f"helpline-pbx: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
