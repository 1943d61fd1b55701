"""Daily housekeeping: forget what is past its retention, and destroy caller-token keys past their overlap.

The service runs it at start-up and then every day; `helpline-pbx purge` runs it by hand.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.console.statistics import LineRules
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.retention import PurgeReport, Retention, purge
from helpline_pbx.tokens import KeyRing, KeyRingError

log = structlog.get_logger(__name__)

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HousekeepingReport:
    purged: PurgeReport
    destroyed_keys: list[str]

    def summary(self) -> str:
        p = self.purged
        return (
            f"purged: {p.call_records} call records (kept as daily aggregates), {p.listener_events} "
            f"listener events, {p.recent_calls} call codes, {p.caller_sightings} caller sightings, "
            f"{p.expired_bars} expired bars; {len(self.destroyed_keys)} old keys destroyed"
        )


def retention_of(days: int) -> Retention:
    return Retention(call_records=timedelta(days=days), listener_events=timedelta(days=days))


async def housekeep(engine: AsyncEngine, keyring: KeyRing, retention: Retention) -> HousekeepingReport:
    destroyed = await asyncio.to_thread(keyring.rotate)
    # The aggregates count each line's days in its zone and judge its calls by its thresholds as they are
    # today: the statistics of purged days then read like those of recorded ones.
    rules = {line.name: LineRules.of_line(line) for line in await Lines(engine).list()}
    report = await purge(engine, datetime.now(UTC), retention, rules)
    return HousekeepingReport(report, destroyed)


async def run_daily(engine: AsyncEngine, keyring: KeyRing, retention: Retention) -> None:
    """Forever: housekeep now, then once a day. A failed run is logged and retried the next day."""
    while True:
        try:
            report = await housekeep(engine, keyring, retention)
            log.info(
                "housekeeping_done",
                call_records=report.purged.call_records,
                keys_destroyed=len(report.destroyed_keys),
            )
        except (RosterError, KeyRingError) as exc:
            log.warning("housekeeping_failed", error=type(exc).__name__)
        await asyncio.sleep(DAY.total_seconds())
