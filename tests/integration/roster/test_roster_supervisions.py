"""The supervision audit on SQLite and PostgreSQL: who supervised whom, on which call, how, from when to when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.roster.errors import InvalidListener
from helpline_pbx.roster.states import SupervisionMode
from helpline_pbx.roster.supervisions import Supervisions

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def test_a_supervision_is_recorded_from_start_to_end(engine: AsyncEngine) -> None:
    """start() keeps who, whom, which call and mode; end() closes it once; the first end stands."""
    audit = Supervisions(engine)
    sid = await audit.start("l-sup", "l-trainee", "app-c1", SupervisionMode.COACH, NOW)

    [open_row] = await audit.list()
    assert (open_row.id, open_row.supervisor_id, open_row.listener_id, open_row.call_id) == (
        sid,
        "l-sup",
        "l-trainee",
        "app-c1",
    )
    assert open_row.mode is SupervisionMode.COACH
    assert (open_row.started_at, open_row.ended_at) == (NOW, None)

    assert await audit.end(sid, NOW + timedelta(minutes=3))
    assert not await audit.end(sid, NOW + timedelta(minutes=9))
    assert not await audit.end(sid + 100, NOW)
    [closed] = await audit.list()
    assert closed.ended_at == NOW + timedelta(minutes=3)


async def test_list_since_gives_the_recent_ones_oldest_first(engine: AsyncEngine) -> None:
    """list(since) leaves out older supervisions and orders the rest by their start."""
    audit = Supervisions(engine)
    await audit.start("l-sup", "l-a", "app-c1", "listen", NOW + timedelta(hours=2))
    await audit.start("l-sup", "l-b", "app-c2", "join", NOW)
    await audit.start("l-sup", "l-c", None, "listen", NOW - timedelta(days=1))

    recent = await audit.list(since=NOW)
    assert [(s.listener_id, s.mode) for s in recent] == [("l-b", SupervisionMode.JOIN), ("l-a", "listen")]
    assert len(await audit.list()) == 3


async def test_end_open_closes_only_this_instances_stale_rows(engine: AsyncEngine) -> None:
    """After a restart an instance ends its own open rows, not those it still runs nor other instances'."""
    audit = Supervisions(engine)
    stale = await audit.start("l-sup", "l-a", "app1-c1", "listen", NOW)
    running = await audit.start("l-sup", "l-b", "app1-c2", "coach", NOW)
    other = await audit.start("l-sup", "l-c", "app10-c3", "join", NOW)
    # "_" is a LIKE wildcard: a prefix containing it must still match literally.
    underscore = await audit.start("l-sup", "l-d", "appXc4", "join", NOW)
    done = await audit.start("l-sup", "l-e", "app1-c5", "join", NOW)
    await audit.end(done, NOW + timedelta(seconds=5))

    assert await audit.end_open("app1-", NOW + timedelta(minutes=1), keep=[running]) == 1
    assert await audit.end_open("app_", NOW + timedelta(minutes=1)) == 0

    ended = {s.id: s.ended_at for s in await audit.list()}
    assert ended[stale] == NOW + timedelta(minutes=1)
    assert ended[running] is None
    assert ended[other] is None
    assert ended[underscore] is None
    assert ended[done] == NOW + timedelta(seconds=5)


async def test_bad_supervisions_are_refused(engine: AsyncEngine) -> None:
    """An unknown mode, an empty or overlong id is refused and nothing is written."""
    audit = Supervisions(engine)
    with pytest.raises(InvalidListener, match="mode"):
        await audit.start("l-sup", "l-a", "c", "barge", NOW)
    with pytest.raises(InvalidListener):
        await audit.start("", "l-a", "c", "listen", NOW)
    with pytest.raises(InvalidListener):
        await audit.start("l-sup", "l-" + "x" * 40, "c", "listen", NOW)
    with pytest.raises(InvalidListener):
        await audit.start("l-sup", "l-a", "c" * 200, "listen", NOW)
    assert await audit.list() == []
