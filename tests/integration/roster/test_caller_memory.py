"""The screen's memory of callers: counted at once, written behind, shared between instances, reloaded
after a restart, and bars seen before the next call."""

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.caller_memory import CallerMemory
from helpline_pbx.roster.callers import Callers
from helpline_pbx.switchboard.scribe import Scribe

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEEP = timedelta(days=30)


def _memory(engine: AsyncEngine, scribe: Scribe, instance: str, now: datetime = NOW) -> CallerMemory:
    return CallerMemory(Callers(engine), scribe, instance=instance, keep=KEEP, clock=lambda: now)


async def test_arrivals_count_at_once_and_survive_a_restart(engine: AsyncEngine) -> None:
    scribe = Scribe(engine)
    memory = _memory(engine, scribe, "helpline")
    await memory.refresh()
    for minutes in (50, 20, 1):
        memory.note_arrival("tok-a", NOW - timedelta(minutes=minutes))
    memory.note_arrival("tok-b", NOW)
    assert memory.arrivals_since(["tok-a"], NOW - timedelta(hours=1)) == 3
    assert memory.arrivals_since(["tok-a"], NOW - timedelta(minutes=30)) == 2
    # A rotated key looks a caller up under both tokens.
    assert memory.arrivals_since(["tok-a", "tok-b"], NOW - timedelta(hours=1)) == 4
    await scribe.close()

    again = _memory(engine, Scribe(engine), "helpline")
    await again.refresh()
    assert again.loaded
    assert again.arrivals_since(["tok-a"], NOW - timedelta(hours=1)) == 3
    await again.refresh()
    assert again.arrivals_since(["tok-a"], NOW - timedelta(hours=1)) == 3, "counted twice"


async def test_each_instance_reads_the_others_arrivals_and_never_its_own_twice(
    engine: AsyncEngine,
) -> None:
    scribe = Scribe(engine)
    one = _memory(engine, scribe, "helpline-one")
    two = _memory(engine, scribe, "helpline-two")
    await one.refresh()
    await two.refresh()
    one.note_arrival("tok-a", NOW)
    two.note_arrival("tok-a", NOW)
    two.note_arrival("tok-a", NOW)
    await scribe.wait_idle()
    await one.refresh()
    await two.refresh()
    assert one.arrivals_since(["tok-a"], NOW - timedelta(hours=1)) == 3
    assert two.arrivals_since(["tok-a"], NOW - timedelta(hours=1)) == 3
    await scribe.close()


async def test_a_bar_set_or_lifted_here_is_seen_before_the_next_call(engine: AsyncEngine) -> None:
    callers = Callers(engine)
    scribe = Scribe(engine)
    memory = CallerMemory(callers, scribe, instance="helpline", keep=KEEP, clock=lambda: NOW)
    await memory.refresh()
    await callers.remember_call("helpline-000000000001", "4821", "0800", "tok-a", NOW)
    bar = await callers.bar_call(
        "4821", until=NOW + timedelta(days=1), reason="abuse", created_by="cli", now=NOW
    )
    assert memory.barred(["tok-a"], NOW)
    assert not memory.barred(["tok-b"], NOW)
    assert not memory.barred(["tok-a"], NOW + timedelta(days=2)), "a bar ends when it says"
    await callers.lift_bar(bar.id, NOW)
    assert not memory.barred(["tok-a"], NOW)
    await scribe.close()


async def test_a_bar_set_by_another_process_is_seen_at_the_next_refresh(engine: AsyncEngine) -> None:
    scribe = Scribe(engine)
    memory = _memory(engine, scribe, "helpline")
    await memory.refresh()
    elsewhere = Callers(engine)  # the CLI's own: its hook does not reach this memory
    await elsewhere.remember_call("helpline-000000000001", "4821", "0800", "tok-a", NOW)
    await elsewhere.bar_call("4821", until=NOW + timedelta(days=1), reason="abuse", created_by="cli", now=NOW)
    assert not memory.barred(["tok-a"], NOW)
    await memory.refresh()
    assert memory.barred(["tok-a"], NOW)
    await scribe.close()


async def test_arrivals_older_than_the_longest_window_are_forgotten(engine: AsyncEngine) -> None:
    scribe = Scribe(engine)
    later = NOW + KEEP + timedelta(days=1)
    clock = [NOW]
    memory = CallerMemory(Callers(engine), scribe, instance="helpline", keep=KEEP, clock=lambda: clock[0])
    await memory.refresh()
    memory.note_arrival("tok-a", NOW)
    memory.note_arrival("tok-b", later - timedelta(days=1))
    clock[0] = later
    await memory.refresh()
    assert memory.arrivals_since(["tok-a"], NOW - timedelta(days=1)) == 0
    assert memory.arrivals_since(["tok-b"], NOW) == 1
    assert "tok-a" not in memory._arrivals  # memory stays bounded by the window
    await scribe.close()
