"""Claiming a listener for a call: atomic, conditional, and audited."""

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpline_pbx.roster.database import make_engine
from helpline_pbx.roster.errors import InvalidListener
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.states import ListenerState, Role

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CONTENDERS = 8
LISTENERS = 4


async def _available(roster: Roster, name: str) -> ListenerSnapshot:
    listener = await roster.add_listener(name.title(), name, Role.VOLUNTEER, now=NOW)
    return await roster.set_state(listener.id, ListenerState.AVAILABLE, now=NOW, idle_since=NOW)


async def test_concurrent_claims_from_separate_engines_have_one_winner(
    roster: Roster, database_url: str
) -> None:
    """Every instance races for every listener at once; each listener rings for one call only."""
    listeners = [await _available(roster, f"racer-{index}") for index in range(LISTENERS)]
    engines = [make_engine(database_url) for _ in range(CONTENDERS)]
    try:
        instances = [Roster(engine) for engine in engines]
        # Connect first, so that the claims themselves are what overlaps.
        await asyncio.gather(*(instance.roster_version() for instance in instances))

        attempts = [
            (listener.id, f"call-{listener.endpoint}-{number}", instance)
            for listener in listeners
            for number, instance in enumerate(instances)
        ]
        results = await asyncio.gather(
            *(instance.claim(listener_id, call_id, NOW) for listener_id, call_id, instance in attempts)
        )
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))

    for listener in listeners:
        won = [
            call_id
            for (listener_id, call_id, _), result in zip(attempts, results, strict=True)
            if listener_id == listener.id and result
        ]
        assert len(won) == 1, f"{listener.endpoint} claimed by {won}"
        after = await roster.get_listener(listener.id)
        assert after.state is ListenerState.RINGING
        assert after.state_call_id == won[0]
        claims = [e for e in await roster.listener_events(listener.id) if e.reason == "claimed"]
        assert [event.call_id for event in claims] == won


async def test_claim_takes_an_available_listener_and_audits_it(roster: Roster) -> None:
    listener = await _available(roster, "petrel")
    later = NOW + timedelta(seconds=30)

    assert await roster.claim(listener.id, "call-1", later) is True

    after = await roster.get_listener(listener.id)
    assert (after.state, after.state_call_id, after.state_changed_at) == (
        ListenerState.RINGING,
        "call-1",
        later,
    )
    last = (await roster.listener_events(listener.id))[-1]
    assert (last.state, last.call_id, last.at) == (ListenerState.RINGING, "call-1", later)


async def test_claim_refuses_a_listener_already_ringing(roster: Roster) -> None:
    listener = await _available(roster, "puffin")
    assert await roster.claim(listener.id, "call-1", NOW)
    assert await roster.claim(listener.id, "call-2", NOW) is False
    assert (await roster.get_listener(listener.id)).state_call_id == "call-1"


async def test_claim_refuses_resting_until_the_rest_is_over(roster: Roster) -> None:
    listener = await _available(roster, "plover")
    rest_end = NOW + timedelta(minutes=5)
    await roster.set_state(listener.id, ListenerState.RESTING, until=rest_end, reason="after_call", now=NOW)

    assert await roster.claim(listener.id, "call-1", rest_end - timedelta(microseconds=1)) is False
    assert [item.id for item in await roster.available_listeners(rest_end - timedelta(seconds=1))] == []
    assert [item.id for item in await roster.available_listeners(rest_end)] == [listener.id]
    assert await roster.claim(listener.id, "call-1", rest_end) is True


async def test_claim_compares_instants_not_local_clock_readings(roster: Roster) -> None:
    listener = await _available(roster, "avocet")
    await roster.set_state(listener.id, ListenerState.RESTING, until=NOW + timedelta(minutes=5), now=NOW)
    paris = NOW.astimezone(ZoneInfo("Europe/Paris"))
    assert await roster.claim(listener.id, "call-1", paris + timedelta(minutes=4)) is False
    assert await roster.claim(listener.id, "call-1", paris + timedelta(minutes=5)) is True


async def test_claim_refuses_inactive_offline_on_call_and_unknown(roster: Roster) -> None:
    inactive = await _available(roster, "stilt")
    await roster.edit_listener(inactive.id, active=False)
    offline = await roster.add_listener("Curlew", "curlew", Role.VOLUNTEER)
    busy = await _available(roster, "godwit")
    await roster.set_state(busy.id, ListenerState.ON_CALL, call_id="call-0", now=NOW)

    for listener_id in (inactive.id, offline.id, busy.id, "l-ffffffff"):
        assert await roster.claim(listener_id, "call-1", NOW) is False
    assert (await roster.get_listener(busy.id)).state_call_id == "call-0"
    assert (await roster.get_listener(inactive.id)).state is ListenerState.AVAILABLE


async def test_available_listeners_longest_idle_first(roster: Roster) -> None:
    recent = await roster.add_listener("Recent", "recent", Role.VOLUNTEER)
    await roster.set_state(recent.id, ListenerState.AVAILABLE, now=NOW, idle_since=NOW - timedelta(minutes=1))
    longest = await roster.add_listener("Longest", "longest", Role.VOLUNTEER)
    await roster.set_state(longest.id, ListenerState.AVAILABLE, now=NOW, idle_since=NOW - timedelta(hours=1))
    resting = await roster.add_listener("Resting", "resting", Role.VOLUNTEER)
    await roster.set_state(
        resting.id,
        ListenerState.RESTING,
        until=NOW - timedelta(seconds=1),
        now=NOW,
        idle_since=NOW - timedelta(minutes=30),
    )
    await roster.add_listener("Offline", "offline", Role.VOLUNTEER)

    found = await roster.available_listeners(NOW)

    assert [item.endpoint for item in found] == ["longest", "resting", "recent"]
    assert all(item.is_free(NOW) for item in found)


async def test_set_state_writes_the_audit_row_in_the_same_step(roster: Roster) -> None:
    listener = await roster.add_listener("Eider", "eider", Role.VOLUNTEER)
    until = NOW + timedelta(minutes=3)

    after = await roster.set_state(
        listener.id, "resting", until=until, reason="after_call", now=NOW, idle_since=NOW
    )

    assert (after.state, after.state_until, after.state_reason, after.idle_since) == (
        ListenerState.RESTING,
        until,
        "after_call",
        NOW,
    )
    events = await roster.listener_events(listener.id)
    assert [(e.state, e.reason, e.call_id, e.at) for e in events] == [
        (ListenerState.RESTING, "after_call", None, NOW)
    ]


@pytest.mark.parametrize(
    ("state", "call_id", "until"),
    [("on_call", None, None), ("ringing", None, None), ("resting", None, None), ("asleep", None, None)],
)
async def test_set_state_refuses_incomplete_transitions(
    roster: Roster, state: str, call_id: str | None, until: datetime | None
) -> None:
    listener = await roster.add_listener("Scoter", "scoter", Role.VOLUNTEER)
    with pytest.raises(InvalidListener):
        await roster.set_state(listener.id, state, call_id=call_id, until=until, now=NOW)
    assert (await roster.get_listener(listener.id)).state is ListenerState.OFFLINE
    assert await roster.listener_events(listener.id) == []


async def test_naive_datetimes_are_refused(roster: Roster) -> None:
    listener = await _available(roster, "shag")
    with pytest.raises(ValueError, match="timezone-aware"):
        await roster.claim(listener.id, "call-1", datetime(2025, 3, 1, 12, 0))


async def test_repair_frees_listeners_stuck_on_dead_calls(roster: Roster) -> None:
    stuck_ringing = await _available(roster, "gannet")
    stuck_on_call = await _available(roster, "fulmar")
    live = await _available(roster, "skua")
    resting = await _available(roster, "auk")
    assert await roster.claim(stuck_ringing.id, "dead-1", NOW)
    await roster.set_state(stuck_on_call.id, ListenerState.ON_CALL, call_id="dead-2", now=NOW)
    await roster.set_state(live.id, ListenerState.ON_CALL, call_id="live-1", now=NOW)
    rest_end = NOW + timedelta(minutes=5)
    await roster.set_state(resting.id, ListenerState.RESTING, until=rest_end, now=NOW)
    later = NOW + timedelta(minutes=1)

    assert await roster.repair({"live-1"}, now=later) == 2

    for listener in (stuck_ringing, stuck_on_call):
        after = await roster.get_listener(listener.id)
        assert (after.state, after.state_call_id, after.idle_since) == (
            ListenerState.AVAILABLE,
            None,
            later,
        )
        last = (await roster.listener_events(listener.id))[-1]
        assert (last.state, last.reason) == (ListenerState.AVAILABLE, "repair")
    assert (await roster.get_listener(live.id)).state_call_id == "live-1"
    assert (await roster.get_listener(resting.id)).state_until == rest_end
    assert await roster.repair({"live-1"}, now=later) == 0
    assert await roster.repair(None, now=later) == 1
    assert (await roster.get_listener(live.id)).state is ListenerState.AVAILABLE


async def test_an_instance_never_writes_over_another_instances_claim(roster: Roster) -> None:
    """Two instances share the roster: the one that did not claim a listener (here, a phone that came back
    reachable) cannot make them available again while they ring for the other's caller; the claimer can."""
    listener = await _available(roster, "gannet")
    assert await roster.claim(listener.id, "b-000000000001", NOW)

    kept = await roster.set_state(
        listener.id, ListenerState.AVAILABLE, reason="phone_unreachable", now=NOW, owner="a-"
    )
    assert (kept.state, kept.state_call_id) == (ListenerState.RINGING, "b-000000000001")
    assert await roster.claim(listener.id, "a-000000000002", NOW) is False

    on_call = await roster.set_state(
        listener.id, ListenerState.ON_CALL, call_id="b-000000000001", now=NOW, owner="b-"
    )
    assert on_call.state is ListenerState.ON_CALL
    freed = await roster.set_state(listener.id, ListenerState.AVAILABLE, now=NOW, owner="b-")
    assert (freed.state, freed.state_call_id) == (ListenerState.AVAILABLE, None)
