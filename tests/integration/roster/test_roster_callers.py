"""Callers by pseudonymous token: bars, arrival counts, recent call codes, and the retention purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.errors import CallNotFound, InvalidListener
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.retention import purge
from helpline_pbx.roster.snapshots import CallRecordData

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def test_a_supervisor_bars_the_caller_of_a_recent_call_by_its_code(engine: AsyncEngine) -> None:
    callers = Callers(engine)
    await callers.remember_call("c-1", "4821", "youth", "k1-aaaa", NOW)
    await callers.remember_call("c-2", "4821", "youth", "k1-bbbb", NOW + timedelta(minutes=5))
    bar = await callers.bar_call(
        "4821", until=NOW + timedelta(days=7), reason="abusive calls", created_by="l-sup", now=NOW
    )
    # The latest call with that code is the one meant.
    assert await callers.active_bar(["k1-bbbb"], NOW) == bar
    assert await callers.active_bar(["k1-aaaa"], NOW) is None
    assert await callers.active_bar(["k1-bbbb"], NOW + timedelta(days=8)) is None
    assert await callers.lift_bar(bar.id, NOW + timedelta(hours=1))
    assert await callers.active_bar(["k1-bbbb"], NOW + timedelta(hours=2)) is None
    assert not await callers.lift_bar(bar.id, NOW + timedelta(hours=3))


async def test_bad_bars_are_refused(engine: AsyncEngine) -> None:
    callers = Callers(engine)
    await callers.remember_call("c-w", "1111", "adult", None, NOW)
    with pytest.raises(CallNotFound, match="withheld"):
        await callers.bar_call("1111", until=NOW + timedelta(days=1), reason="x", created_by="cli", now=NOW)
    with pytest.raises(CallNotFound):
        await callers.bar_call("9999", until=NOW + timedelta(days=1), reason="x", created_by="cli", now=NOW)
    await callers.remember_call("c-t", "2222", "adult", "k1-cccc", NOW)
    with pytest.raises(InvalidListener):
        await callers.bar_call("2222", until=NOW + timedelta(days=1), reason="  ", created_by="cli", now=NOW)
    with pytest.raises(InvalidListener):
        await callers.bar_call("2222", until=NOW, reason="x", created_by="cli", now=NOW)
    assert await callers.bars(NOW) == []


async def test_arrivals_are_counted_per_token_within_a_window(engine: AsyncEngine) -> None:
    callers = Callers(engine)
    for minutes in (0, 10, 50, 70):
        await callers.note_arrival("k1-aaaa", NOW + timedelta(minutes=minutes))
    await callers.note_arrival("k1-other", NOW)
    assert await callers.arrivals_since(["k1-aaaa"], NOW + timedelta(minutes=20)) == 2
    assert await callers.arrivals_since(["k1-aaaa", "k0-prev"], NOW) == 4


async def test_purge_keeps_aggregates_and_forgets_details(engine: AsyncEngine, roster: Roster) -> None:
    old = NOW - timedelta(days=100)
    for n, outcome in enumerate(["served", "served", "abandoned"]):
        await roster.record_call(
            CallRecordData(
                call_id=f"c-old-{n}",
                line="youth",
                queued_at=old,
                ended_at=old + timedelta(minutes=5),
                outcome=outcome,
                instance="helpline",
                wait_seconds=10.0 * (n + 1),
                talk_seconds=60.0,
            )
        )
    await roster.record_call(
        CallRecordData(
            call_id="c-new", line="youth", queued_at=NOW, ended_at=NOW, outcome="served", instance="helpline"
        )
    )
    callers = Callers(engine)
    await callers.remember_call("c-old-0", "1234", "youth", "k1-aaaa", old)
    await callers.note_arrival("k1-aaaa", old)

    report = await purge(engine, NOW)
    assert (report.call_records, report.recent_calls, report.caller_sightings) == (3, 1, 1)
    assert await roster.call_record("c-old-0") is None
    assert await roster.call_record("c-new") is not None
    again = await purge(engine, NOW)
    assert again.call_records == 0

    async with engine.connect() as connection:
        rows = (
            await connection.exec_driver_sql(
                "SELECT day, line, calls, served, abandoned, wait_seconds_total, wait_seconds_max FROM daily_stats"
            )
        ).all()
    assert [tuple(r) for r in rows] == [(old.date().isoformat(), "youth", 3, 2, 1, 60.0, 30.0)]


async def test_purge_keeps_practice_calls_and_alternatives_apart(engine: AsyncEngine, roster: Roster) -> None:
    old = NOW - timedelta(days=100)
    for n, (outcome, practice) in enumerate([("served", False), ("alternatives", False), ("served", True)]):
        await roster.record_call(
            CallRecordData(
                call_id=f"c-old-{n}",
                line="adultes",
                queued_at=old,
                ended_at=old + timedelta(minutes=5),
                outcome=outcome,
                instance="helpline",
                practice=practice,
            )
        )
    await purge(engine, NOW)
    async with engine.connect() as connection:
        rows = (
            await connection.exec_driver_sql(
                "SELECT practice, calls, served, alternatives FROM daily_stats ORDER BY practice"
            )
        ).all()
    assert [(bool(r[0]), *r[1:]) for r in rows] == [(False, 2, 1, 1), (True, 1, 1, 0)]


async def test_purge_forgets_old_supervisions_and_handled_debriefs_but_keeps_open_ones(
    engine: AsyncEngine, roster: Roster
) -> None:
    from sqlalchemy import insert

    from helpline_pbx.roster.debriefs import Debriefs
    from helpline_pbx.roster.tables import Supervision

    listener = await roster.add_listener("Ana", "ana", "volunteer")
    old = NOW - timedelta(days=100)
    debriefs = Debriefs(engine)
    await debriefs.request(listener.id, "c-1", old)
    await debriefs.handle(listener.id, "cli", old + timedelta(hours=1))
    await debriefs.request(listener.id, "c-2", old)  # never handled: stays listed
    async with engine.begin() as connection:
        await connection.execute(
            insert(Supervision).values(
                supervisor_id="l-sup", listener_id=listener.id, call_id="c-1", mode="listen", started_at=old
            )
        )
    report = await purge(engine, NOW)
    assert (report.supervisions, report.handled_debriefs) == (1, 1)
    assert [d.call_id for d in await debriefs.open()] == ["c-2"]


async def test_no_caller_table_has_a_column_able_to_hold_an_identity(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {
                table: [c["name"] for c in inspect(sync).get_columns(table)]
                for table in (
                    "caller_bars",
                    "caller_sightings",
                    "recent_calls",
                    "daily_stats",
                    "call_records",
                )
            }
        )
    forbidden = ("number", "phone", "caller", "name", "ani", "cli", "msisdn", "from")
    for table, names in columns.items():
        for name in names:
            assert not any(word in name for word in forbidden), f"{table}.{name}"
