"""The scribe writes the roster behind the calls: in order, batched, never losing a write."""

import asyncio
import functools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster import database, writes
from helpline_pbx.roster.database import make_engine, sqlite_path
from helpline_pbx.roster.errors import DatabaseUnavailable
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import CallRecordData, ListenerSnapshot
from helpline_pbx.roster.states import ListenerState, Role
from helpline_pbx.switchboard import scribe as scribe_module
from helpline_pbx.switchboard.scribe import Scribe

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def _available(roster: Roster, name: str) -> ListenerSnapshot:
    listener = await roster.add_listener(name.title(), name, Role.VOLUNTEER, now=NOW)
    return await roster.set_state(listener.id, ListenerState.AVAILABLE, now=NOW, idle_since=NOW)


def _state(listener_id: str, state: ListenerState, **kwargs: object) -> functools.partial[object]:
    return functools.partial(writes.set_state, listener_id=listener_id, state=state, now=NOW, **kwargs)


def _claim(listener_id: str, call_id: str) -> functools.partial[bool]:
    # Keywords: the scribe passes the session first.
    return functools.partial(writes.claim, listener_id=listener_id, call_id=call_id, now=NOW)


def _record(call_id: str, listener_id: str) -> functools.partial[bool]:
    data = CallRecordData(
        call_id=call_id,
        line="0800",
        queued_at=NOW,
        ended_at=NOW,
        outcome="served",
        instance="helpline",
        first_offered_at=NOW,
        answered_at=NOW,
        listener_id=listener_id,
        offers=1,
        wait_seconds=1.0,
        talk_seconds=2.0,
        practice=False,
    )
    return functools.partial(writes.record_call, record=data)


async def test_a_surge_of_calls_is_written_in_order_in_few_transactions(
    roster: Roster, engine: AsyncEngine
) -> None:
    """Each listener goes through claim, on call, rest and free for every call: the last write wins, every
    claim but the one on a busy listener succeeds, and far fewer transactions than writes are made."""
    listeners = [await _available(roster, f"surge-{n}") for n in range(5)]
    scribe = Scribe(engine)
    claims: list[asyncio.Future[bool]] = []
    for call in range(40):
        listener = listeners[call % 5].id
        call_id = f"helpline-{call:012x}"
        claims.append(scribe.ask(_claim(listener, call_id), "claim_failed"))
        # A second claim on the same listener, queued behind the first, must lose.
        claims.append(scribe.ask(_claim(listener, "helpline-other"), "x"))
        scribe.write(_state(listener, ListenerState.ON_CALL, call_id=call_id), "x")
        until = NOW + timedelta(seconds=5)
        scribe.write(_state(listener, ListenerState.RESTING, until=until, reason="after_call"), "x")
        scribe.write(_state(listener, ListenerState.AVAILABLE), "x")
        scribe.write(_record(call_id, listener), "x")
    results = await asyncio.gather(*claims)
    await scribe.wait_idle()
    await scribe.close()

    assert results == [True, False] * 40
    assert scribe.written == 40 * 6
    assert scribe.batches < 40, f"{scribe.batches} transactions for {scribe.written} writes"
    for listener in listeners:
        assert (await roster.get_listener(listener.id)).state is ListenerState.AVAILABLE
    assert len(await roster.call_records()) == 40
    # The audit shows each listener's transitions in the order decided.
    events = [e.state for e in await roster.listener_events(listeners[0].id, limit=100)]
    assert events[-4:] == [
        ListenerState.RINGING,
        ListenerState.ON_CALL,
        ListenerState.RESTING,
        ListenerState.AVAILABLE,
    ]


async def test_a_write_that_fails_on_its_own_does_not_take_its_batch_with_it(
    roster: Roster, engine: AsyncEngine
) -> None:
    camille = await _available(roster, "camille")
    scribe = Scribe(engine)
    with structlog.testing.capture_logs() as logs:
        scribe.write(_record("helpline-000000000001", camille.id), "call_record_not_saved")
        scribe.write(_state("no-such-listener", ListenerState.AVAILABLE), "listener_state_not_saved")
        scribe.write(_state(camille.id, ListenerState.PAUSED, reason="paused"), "x")
        await scribe.wait_idle()
    await scribe.close()

    assert (await roster.get_listener(camille.id)).state is ListenerState.PAUSED
    assert [r.call_id for r in await roster.call_records()] == ["helpline-000000000001"]
    failed = [e for e in logs if e["event"] == "listener_state_not_saved"]
    assert failed
    assert failed[0]["error"] == "listener_not_found"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_locked_database_delays_the_writes_and_loses_none(
    roster: Roster, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds SQLite's write lock past the busy timeout: the batch is retried, in order,
    until the lock is released; a claim asked meanwhile is answered once it is written."""
    camille = await _available(roster, "camille")
    monkeypatch.setattr(database, "DEFAULT_BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(scribe_module, "RETRY_FIRST_DELAY", 0.05)
    scribe = Scribe(engine)
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with structlog.testing.capture_logs() as logs:
        claim = scribe.ask(_claim(camille.id, "helpline-000000000002"), "x")
        scribe.write(_state(camille.id, ListenerState.ON_CALL, call_id="helpline-000000000002"), "x")
        await asyncio.wait_for(scribe.stalled.wait(), 10)
        assert not claim.done()
        holder.execute("ROLLBACK")
        assert await asyncio.wait_for(claim, 10) is True
        await scribe.wait_idle()
    assert not scribe.stalled.is_set()
    assert any(e["event"] == "roster_unavailable" for e in logs)
    holder.close()
    await scribe.close()
    listener = await roster.get_listener(camille.id)
    assert (listener.state, listener.state_call_id) == (ListenerState.ON_CALL, "helpline-000000000002")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_claim_is_answered_unavailable_when_the_database_stays_down(
    roster: Roster, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    camille = await _available(roster, "camille")
    monkeypatch.setattr(database, "DEFAULT_BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(scribe_module, "RETRY_FIRST_DELAY", 0.05)
    monkeypatch.setattr(scribe_module, "ASK_PATIENCE", 0.3)
    scribe = Scribe(engine)
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        claim = scribe.ask(_claim(camille.id, "helpline-000000000003"), "x")
        with pytest.raises(DatabaseUnavailable):
            await asyncio.wait_for(claim, 10)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await scribe.wait_idle()
    await scribe.close()
    # Given up means not written: the listener was never reserved for a call nobody rings.
    assert (await roster.get_listener(camille.id)).state is ListenerState.AVAILABLE


async def test_closing_writes_what_is_queued(roster: Roster, database_url: str, tmp_path: Path) -> None:
    camille = await _available(roster, "camille")
    engine = make_engine(database_url)
    try:
        scribe = Scribe(engine)
        for n in range(20):
            scribe.write(_record(f"helpline-{n:012x}", camille.id), "x")
        await scribe.close()
    finally:
        await engine.dispose()
    assert len(await roster.call_records()) == 20
