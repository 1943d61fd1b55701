"""What every command group shares: exit codes, the database the commands work on, and how an error
reaches the person at the terminal (one line on stderr, exit 1, nothing changed)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from helpline_pbx.settings import database_url_from_env

if TYPE_CHECKING:
    # The roster pulls in SQLAlchemy: imported when a command runs, not when the parser is built.
    from sqlalchemy.ext.asyncio import AsyncEngine

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def fail(message: str) -> int:
    print(f"helpline-pbx: {message}", file=sys.stderr)
    return EXIT_FAILED


async def on_database(work: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    """Run one command's work on the roster database, then close it; a refused change is one line.

    Only the database is needed, never the ARI password: the roster commands work on a box whose
    service is stopped.
    """
    from helpline_pbx.hours import HoursError
    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.roster.errors import RosterError

    engine = make_engine(database_url_from_env())
    try:
        return await work(engine)
    except (RosterError, HoursError) as exc:
        return fail(str(exc))
    finally:
        await engine.dispose()
