"""Anonymous call records: stored once, purged on time, unable to hold a caller's identity."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import CallRecordData
from helpline_pbx.roster.tables import CallRecord, ListenerEvent

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _record(call_id: str, ended_at: datetime, **changes: object) -> CallRecordData:
    values: dict[str, object] = {
        "call_id": call_id,
        "line": "main",
        "queued_at": ended_at - timedelta(minutes=20),
        "first_offered_at": ended_at - timedelta(minutes=19),
        "answered_at": ended_at - timedelta(minutes=18),
        "ended_at": ended_at,
        "outcome": "served",
        "instance": "pbx-a",
        "listener_id": "l-0a1b2c3d",
        "offers": 2,
        "wait_seconds": 120.5,
        "talk_seconds": 1080.0,
    }
    values.update(changes)
    return CallRecordData(**values)  # type: ignore[arg-type]


async def test_record_round_trips_with_aware_utc_times(roster: Roster) -> None:
    record = _record("call-1", NOW)
    assert await roster.record_call(record) is True
    stored = await roster.call_record("call-1")
    assert stored == record
    assert stored is not None
    assert stored.ended_at.utcoffset() == timedelta(0)


async def test_recording_the_same_call_twice_keeps_the_first(roster: Roster) -> None:
    first = _record("call-1", NOW)
    assert await roster.record_call(first) is True
    assert await roster.record_call(_record("call-1", NOW, outcome="abandoned")) is False
    assert await roster.call_record("call-1") == first


async def test_abandoned_call_without_listener(roster: Roster) -> None:
    record = _record(
        "call-2",
        NOW,
        outcome="abandoned",
        first_offered_at=None,
        answered_at=None,
        listener_id=None,
        offers=0,
        talk_seconds=0.0,
    )
    assert await roster.record_call(record)
    stored = await roster.call_record("call-2")
    assert stored is not None
    assert (stored.outcome, stored.listener_id, stored.answered_at) == ("abandoned", None, None)


async def test_unknown_outcome_is_refused(roster: Roster) -> None:
    with pytest.raises(ValueError, match="outcome"):
        await roster.record_call(_record("call-3", NOW, outcome="transferred"))
    assert await roster.call_record("call-3") is None


async def test_purge_deletes_records_older_than_the_cutoff(roster: Roster) -> None:
    for days in (40, 31, 29, 1):
        await roster.record_call(_record(f"call-{days}", NOW - timedelta(days=days)))

    assert await roster.purge_call_records(NOW - timedelta(days=30)) == 2

    assert await roster.call_record("call-40") is None
    assert await roster.call_record("call-31") is None
    assert await roster.call_record("call-29") is not None
    assert await roster.call_record("call-1") is not None
    assert await roster.purge_call_records(NOW - timedelta(days=30)) == 0


async def test_purge_listener_events(roster: Roster) -> None:
    listener = await roster.add_listener("Loon", "loon", "volunteer")
    await roster.set_state(listener.id, "available", now=NOW - timedelta(days=100))
    await roster.set_state(listener.id, "offline", now=NOW)
    assert await roster.purge_listener_events(NOW - timedelta(days=90)) == 1
    assert [event.at for event in await roster.listener_events(listener.id)] == [NOW]


def _columns(connection: Connection, table: str) -> list[str]:
    return [column["name"] for column in inspect(connection).get_columns(table)]


async def test_no_column_can_hold_a_callers_identity(engine: AsyncEngine) -> None:
    """The stored schema, not just the model, has exactly these columns and nothing else."""
    async with engine.connect() as connection:
        records = await connection.run_sync(_columns, "call_records")
        events = await connection.run_sync(_columns, "listener_events")

    assert sorted(records) == sorted(
        [
            "call_id",
            "line",
            "queued_at",
            "first_offered_at",
            "answered_at",
            "ended_at",
            "outcome",
            "listener_id",
            "offers",
            "wait_seconds",
            "talk_seconds",
            "instance",
            "practice",
        ]
    )
    assert sorted(events) == sorted(["id", "listener_id", "at", "state", "reason", "call_id"])
    assert sorted(records) == sorted(CallRecord.__table__.columns.keys())
    assert sorted(events) == sorted(ListenerEvent.__table__.columns.keys())
    identity_words = ("number", "caller", "phone", "cid", "ani", "name", "from", "token", "dnid")
    for column in (*records, *events):
        assert not any(word in column for word in identity_words), column
