"""Debrief requests after difficult calls: listed oldest first until a supervisor handles them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.errors import InvalidListener, ListenerNotFound
from helpline_pbx.roster.repository import Roster

NOW = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


async def test_requests_stay_listed_oldest_first_until_handled(engine: AsyncEngine, roster: Roster) -> None:
    """Open requests come oldest first; handling one listener's requests closes all of theirs, only theirs."""
    camille = await roster.add_listener("Camille", "camille", "volunteer", now=NOW)
    dom = await roster.add_listener("Dominique", "dominique", "volunteer", now=NOW)
    debriefs = Debriefs(engine)
    late = await debriefs.request(dom.id, "helpline-c2", NOW + timedelta(minutes=5))
    early = await debriefs.request(camille.id, "helpline-c1", NOW)
    again = await debriefs.request(camille.id, "helpline-c3", NOW + timedelta(minutes=9))
    assert [d.id for d in await debriefs.open()] == [early.id, late.id, again.id]
    assert early.handled_at is None
    assert early.call_id == "helpline-c1"

    assert await debriefs.handle("camille", "l-sup", NOW + timedelta(minutes=10)) == 2
    [left] = await debriefs.open()
    assert left == late
    assert await debriefs.handle(camille.id, "l-sup", NOW + timedelta(minutes=11)) == 0


async def test_a_listener_is_named_by_short_code_and_by_id_after_removal(
    engine: AsyncEngine, roster: Roster
) -> None:
    """A supervisor's phone names the listener by short code; a removed listener's id still closes theirs."""
    camille = await roster.add_listener("Camille", "camille", "volunteer", now=NOW)
    sam = await roster.add_listener("Sam", "sam", "volunteer", now=NOW)
    debriefs = Debriefs(engine)
    await debriefs.request(camille.id, "helpline-c1", NOW)
    await debriefs.request(sam.id, None, NOW)
    assert camille.code is not None
    assert await debriefs.handle(camille.code, "l-sup", NOW + timedelta(minutes=1)) == 1

    await roster.remove_listener(sam.id)
    assert await debriefs.handle(sam.id, "cli", NOW + timedelta(minutes=2)) == 1
    assert await debriefs.open() == []


async def test_the_same_call_asked_twice_is_one_request(engine: AsyncEngine, roster: Roster) -> None:
    """Marking the same call difficult twice lists one request, with the first request's time."""
    camille = await roster.add_listener("Camille", "camille", "volunteer", now=NOW)
    debriefs = Debriefs(engine)
    first = await debriefs.request(camille.id, "helpline-c1", NOW)
    second = await debriefs.request(camille.id, "helpline-c1", NOW + timedelta(minutes=1))
    assert second == first
    first_unknown = await debriefs.request(camille.id, None, NOW)
    assert await debriefs.request(camille.id, None, NOW + timedelta(seconds=5)) == first_unknown
    assert len(await debriefs.open()) == 2


async def test_handled_requests_keep_who_and_when(engine: AsyncEngine, roster: Roster) -> None:
    """A handled request records who handled it and when, and a new request opens afresh."""
    camille = await roster.add_listener("Camille", "camille", "volunteer", now=NOW)
    debriefs = Debriefs(engine)
    await debriefs.request(camille.id, "helpline-c1", NOW)
    await debriefs.handle("Camille", "cli", NOW + timedelta(minutes=3))
    fresh = await debriefs.request(camille.id, "helpline-c1", NOW + timedelta(minutes=4))
    assert fresh.handled_at is None
    assert [d.id for d in await debriefs.open()] == [fresh.id]
    async with engine.connect() as connection:
        rows = (
            await connection.execute(text("SELECT handled_by, handled_at FROM debriefs ORDER BY id"))
        ).all()
    assert rows[0][0] == "cli"
    assert rows[0][1] is not None
    assert rows[1] == (None, None)


async def test_bad_requests_are_refused(engine: AsyncEngine, roster: Roster) -> None:
    """Unknown listeners, overlong call ids, naive times and an empty handler are refused, nothing stored."""
    camille = await roster.add_listener("Camille", "camille", "volunteer", now=NOW)
    debriefs = Debriefs(engine)
    with pytest.raises(ListenerNotFound):
        await debriefs.request("l-nobody", "helpline-c1", NOW)
    with pytest.raises(InvalidListener):
        await debriefs.request(camille.id, "x" * 129, NOW)
    with pytest.raises(ValueError, match="timezone"):
        await debriefs.request(camille.id, "helpline-c1", NOW.replace(tzinfo=None))
    with pytest.raises(ListenerNotFound):
        await debriefs.handle("nobody", "cli", NOW)
    await debriefs.request(camille.id, "helpline-c1", NOW)
    with pytest.raises(InvalidListener):
        await debriefs.handle("camille", "", NOW)
    assert len(await debriefs.open()) == 1
