"""Feature codes from phones on the real Asterisk: a supervisor bars a caller by the call's code; nobody else
can; listeners' phones reach nothing outside the line."""

from __future__ import annotations

from sqlalchemy import text
from tests.e2e.conftest import ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.harness import RunningService
from tests.e2e.test_screening import refused_channel_seen

from helpline_pbx.roster.repository import Roster


async def _served_call_code(svc: RunningService, sipp: Sipp, number: str) -> str:
    caller = sipp.caller("caller", number=number)
    records = await svc.decisions.wait_records(len(svc.decisions.records()) + 1)
    await svc.board.executor.wait_idle()
    assert (await caller.wait_async(15)).exit_code == 0
    async with svc.roster.engine.connect() as connection:
        code = (
            await connection.execute(
                text("SELECT code FROM recent_calls WHERE call_id = :c"), {"c": records[-1].call_id}
            )
        ).scalar_one()
    return str(code)


async def test_a_supervisor_bars_a_caller_from_their_phone(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """*86 + the call's code, dialled by a supervisor, bars that caller: their next call is refused."""
    camille = await add_listener(roster, "Camille")
    sup = await add_listener(roster, "Sup", role="supervisor")
    svc = await service()
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    code = await _served_call_code(svc, sipp, "0639985601")

    dial = sipp.dial(sup, f"*86{code}")
    assert (await dial.wait_async(30)).exit_code == 0, dial.errors()
    [bar] = await svc.callers.bars(_now())
    assert bar.created_by == sup.id

    again = sipp.caller("caller", number="0639985601")
    assert await refused_channel_seen(svc.ari)
    await again.stop_async()


async def test_a_volunteer_cannot_bar_and_a_listener_phone_cannot_call_out(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A volunteer's *86 is refused (no bar), and an outside number dialled from a listener's phone never
    reaches the trunk: the phone hears that it cannot call out."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    code = await _served_call_code(svc, sipp, "0639985602")

    dial = sipp.dial(camille, f"*86{code}")
    assert (await dial.wait_async(30)).exit_code == 0, dial.errors()
    assert await svc.callers.bars(_now()) == []

    outside = sipp.dial(camille, "0639985603")
    assert (await outside.wait_async(30)).exit_code == 0, outside.errors()
    # Nothing reached the line's queue: the trunk was never dialled and no caller arrived.
    assert len(svc.decisions.records()) == 1


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)
