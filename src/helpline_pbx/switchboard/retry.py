"""Roster writes that a locked or restarting database must not lose: retried within a bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from helpline_pbx.roster.errors import DatabaseUnavailable

T = TypeVar("T")

# A database that is locked or restarting gets this long before a decision's write is given up.
DB_RETRY_FOR = 30.0
DB_RETRY_FIRST_DELAY = 0.2


async def with_retry(operation: Callable[[], Awaitable[T]], *, retry_for: float = DB_RETRY_FOR) -> T:
    """Run a roster operation, retrying while the database is unavailable, within a bound.

    Callers keep waiting meanwhile (their lane waits); a write lost for good would leave a listener in a
    ghost state, so giving up is the last resort, after `retry_for` seconds.
    """
    deadline = time.monotonic() + retry_for
    delay = DB_RETRY_FIRST_DELAY
    while True:
        try:
            return await operation()
        except DatabaseUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
