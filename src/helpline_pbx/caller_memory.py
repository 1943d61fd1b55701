"""What the screen knows of callers, held in memory: the bars in force and each token's recent arrivals.

A caller waits in silence while the screen decides, and the screen runs for every call: it must not wait
on the database. So the roster is the record and this is the working copy: loaded at start, every arrival
added here at once and written behind (scribe.py), bars re-read as soon as this process sets or lifts one
and on a timer for the others (the CLI, the console, other instances), and the other instances' arrivals
read on the same timer (each sighting names its instance, so this one never counts its own twice).

Across instances the counts are as fresh as the timer (REFRESH_SECONDS): a caller ringing two instances
within that moment may get one call more than the limit. A database that cannot be read leaves the memory
as it is and the screen working; the next refresh tries again.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import structlog

from helpline_pbx.roster import writes
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.switchboard.scribe import Scribe

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 2.0


class CallerMemory:
    def __init__(
        self,
        callers: Callers,
        scribe: Scribe,
        *,
        instance: str,
        keep: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._callers = callers
        self._scribe = scribe
        self._instance = instance
        # Arrivals older than this are forgotten (the longest window anything counts over).
        self._keep = keep.total_seconds()
        self._clock = clock
        self._arrivals: dict[str, list[float]] = {}
        self._bars: dict[str, float] = {}
        self._last_id = -1  # -1: not loaded yet
        callers.bars_changed.append(self.reload_bars)

    @property
    def loaded(self) -> bool:
        return self._last_id >= 0

    # ---- what the screen asks -------------------------------------------------------------------------

    def barred(self, tokens: Iterable[str], now: datetime) -> bool:
        at = now.timestamp()
        return any(self._bars.get(token, 0.0) > at for token in tokens)

    def arrivals_since(self, tokens: Iterable[str], since: datetime) -> int:
        at = since.timestamp()
        count = 0
        for token in tokens:
            times = self._arrivals.get(token)
            if times:
                count += len(times) - bisect.bisect_left(times, at)
        return count

    def note_arrival(self, token: str, now: datetime) -> None:
        """Count the arrival at once; the roster gets it behind the call."""
        self._add(token, now.timestamp())
        self._scribe.write(
            functools.partial(writes.note_arrival, token=token, now=now, instance=self._instance),
            "caller_sighting_not_saved",
        )

    # ---- keeping in step with the roster --------------------------------------------------------------

    async def run(self, interval: float = REFRESH_SECONDS) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(interval)

    async def refresh(self) -> None:
        try:
            await self.reload_bars()
            await self._read_arrivals()
        except RosterError as exc:
            log.warning("caller_memory_not_refreshed", error=exc.code)
        except Exception as exc:
            # The type only: a driver's message may quote a token. The next refresh tries again.
            log.error("caller_memory_not_refreshed", error=type(exc).__name__)
        self._forget_old()

    async def reload_bars(self) -> None:
        bars = await self._callers.barred_tokens(self._clock())
        self._bars = {token: until.timestamp() for token, until in bars.items()}

    async def _read_arrivals(self) -> None:
        since = self._clock() - timedelta(seconds=self._keep)
        if not self.loaded:
            # Everything within the window, this instance's own included (from before a restart); the
            # last id first, so that a sighting written meanwhile is read by the next refresh.
            last = await self._callers.last_sighting_id()
            for seen in await self._callers.sightings_after(0, since):
                if seen.id <= last:
                    self._add(seen.token, seen.at.timestamp())
            self._last_id = last
            log.info("caller_memory_loaded", tokens=len(self._arrivals), bars=len(self._bars))
            return
        fresh = await self._callers.sightings_after(self._last_id, since, other_than=self._instance)
        for seen in fresh:
            self._add(seen.token, seen.at.timestamp())
            self._last_id = max(self._last_id, seen.id)

    def _add(self, token: str, at: float) -> None:
        times = self._arrivals.setdefault(token, [])
        if times and at < times[-1]:
            bisect.insort(times, at)
        else:
            times.append(at)

    def _forget_old(self) -> None:
        horizon = self._clock().timestamp() - self._keep
        for token in [t for t, times in self._arrivals.items() if times[-1] < horizon]:
            del self._arrivals[token]
        for times in self._arrivals.values():
            if times[0] < horizon:
                del times[: bisect.bisect_left(times, horizon)]
