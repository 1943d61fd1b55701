"""The `helpline-pbx` command: serve, check, welcome, db upgrade, purge, and the roster's command groups
(listeners, lines, debriefs, supervisions, callers), one module each."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from helpline_pbx.cli import callers, database, debriefs, lines, listeners, service, supervisions
from helpline_pbx.cli.common import EXIT_CONFIG, EXIT_FAILED
from helpline_pbx.settings import SettingsError

__all__ = ["main"]

# The groups whose commands all run on the roster database, by their first word.
_GROUPS = {
    "listeners": listeners.run,
    "lines": lines.run,
    "debriefs": debriefs.run,
    "supervisions": supervisions.run,
    "callers": callers.run,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="helpline-pbx", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for module in (service, database, listeners, debriefs, supervisions, callers, lines):
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
            case "purge":
                return asyncio.run(database.purge())
            case group if group in _GROUPS:
                return asyncio.run(_GROUPS[group](args))
    except SettingsError as exc:
        print(f"helpline-pbx: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
