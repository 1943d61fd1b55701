"""Abuse protection without identity, on the real Asterisk: the dialplan's FastAGI screen turns the number into
a keyed token before wiping it; bars and rate limits act on tokens; withheld callers get none."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import ServiceFactory, Sipp, add_listener, online_phone

from helpline_pbx.ari.client import AriClient
from helpline_pbx.roster.repository import Roster
from helpline_pbx.screening import ScreeningPolicy

NUMBER = "0639985501"  # fictitious


async def refused_channel_seen(ari: AriClient, timeout: float = 10.0) -> bool:
    """Whether a trunk channel reaches the [helpline-refused] context (it never enters Stasis)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for channel in await ari.list_channels():
            if channel.dialplan is not None and channel.dialplan.context == "helpline-refused":
                return True
        await asyncio.sleep(0.05)
    return False


async def test_a_barred_caller_hears_the_refusal_and_never_reaches_the_queue(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A caller barred by the code of their previous call is refused kindly on their next call."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    first = sipp.caller("caller", number=NUMBER)
    [record] = await svc.decisions.wait_records(1)
    await svc.board.executor.wait_idle()
    assert (await first.wait_async(15)).exit_code == 0

    [call] = [c for c in svc.board.book.calls()] or [None]  # the call is forgotten once its legs are gone
    assert call is None
    now = datetime.now(UTC)
    # The supervisor names the call by the short code the listener heard; the service knows the token.
    code = next(iter(await _codes(svc, record.call_id)))
    bar = await svc.callers.bar_call(
        code, until=now + timedelta(days=1), reason="test", created_by="cli", now=now
    )
    assert bar.until > now

    arrivals_before = len(svc.decisions.events())
    second = sipp.caller("caller", number=NUMBER)
    assert await refused_channel_seen(svc.ari)
    assert len(svc.decisions.events()) == arrivals_before, (
        "a barred caller must not reach the service's queue"
    )
    await second.stop_async()

    # Another number is not affected.
    third = sipp.caller("caller", number="0639985502")
    await svc.decisions.wait_records(2)
    assert (await third.wait_async(15)).exit_code == 0


async def _codes(svc: object, call_id: str) -> set[str]:
    from sqlalchemy import text

    engine = svc.roster.engine  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT code, token FROM recent_calls WHERE call_id = :c"), {"c": call_id}
            )
        ).all()
    assert rows, "the call's code was not remembered"
    assert rows[0][1], "a caller with a number gets a token"
    return {rows[0][0]}


async def test_a_caller_over_the_rate_limit_is_refused_kindly(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """With a limit of two calls an hour, the third call from the same number hears the refusal."""
    svc = await service(screening=ScreeningPolicy(rate_limit_calls=2))
    for n in range(2):
        caller = sipp.caller("caller_hangup", talk_ms=1500, number="0639985510")
        await svc.decisions.wait_records(n + 1)
        await caller.wait_async(15)
    third = sipp.caller("caller", number="0639985510")
    assert await refused_channel_seen(svc.ari)
    await third.stop_async()


async def test_withheld_callers_get_no_token_and_are_never_pooled(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """Withheld callers (From anonymous) get no token, so they are never rate-limited together."""
    svc = await service(screening=ScreeningPolicy(rate_limit_calls=1))
    for n in range(3):
        caller = sipp.caller("caller_hangup", talk_ms=1500, number="anonymous", name="Anonymous")
        await svc.decisions.wait_records(n + 1)
        await caller.wait_async(15)
    from sqlalchemy import text

    async with svc.roster.engine.connect() as connection:
        tokens = (await connection.execute(text("SELECT token FROM recent_calls"))).scalars().all()
        sightings = (await connection.execute(text("SELECT count(*) FROM caller_sightings"))).scalar_one()
    assert tokens == [None, None, None]
    assert sightings == 0


async def test_the_listener_sees_how_often_a_caller_called_when_the_line_allows_it(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """With the repeat hint on, the listener's display shows the caller's second call this period."""
    camille = await add_listener(roster, "Camille")
    svc = await service(repeat_hint=True)
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=300)
    for n in range(2):
        caller = sipp.caller("caller", number="0639985520")
        await svc.decisions.wait_records(n + 1)
        await caller.wait_async(15)
    invites = [m for m in phone.messages() if m.startswith("INVITE ")]
    assert len(invites) == 2
    assert "e appel" not in invites[0]
    assert "2e appel" in invites[1], [line for line in invites[1].splitlines() if line.startswith("From")]
