"""Never strand a caller: the service killed, restarted, or gone for good, on the real Asterisk."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.conftest import AsteriskUnderTest
from tests.e2e.conftest import FAST, ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.harness import start_service, wait_configured, wait_registered
from tests.e2e.process import ServiceProcess
from tests.e2e.proxy import TcpProxy

from helpline_pbx.agi.server import AgiServer
from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.stream import Connected, EventStream
from helpline_pbx.caller_memory import CallerMemory
from helpline_pbx.core import ListenerState, Policy
from helpline_pbx.protocol import agi_of_number, app_of_number, grace_of_app
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import CallRecordData
from helpline_pbx.screening import Screener, ScreeningPolicy
from helpline_pbx.switchboard.inventory import is_caller
from helpline_pbx.switchboard.scribe import Scribe
from helpline_pbx.tokens import KeyRing


@pytest.fixture
async def process(
    asterisk: AsteriskUnderTest, roster: Roster, tmp_path: Path, line: str, app_name: str
) -> AsyncIterator[ServiceProcess]:
    url = str(roster.engine.url)
    proc = ServiceProcess(
        asterisk,
        database_url=url,
        app=app_name,
        did=line,
        workdir=tmp_path / "service",
        extra_env={"HELPLINE_SERVICE_GRACE": "6"},
    )
    yield proc
    proc.stop()


async def _records(roster: Roster, count: int, timeout: float = 60.0) -> list[CallRecordData]:
    """The call records, once `count` exist (the service writes them from its own process)."""
    deadline = time.monotonic() + timeout
    while True:
        records = await roster.call_records()
        if len(records) >= count:
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} call records, found {len(records)}")
        await asyncio.sleep(0.1)


async def _context_of(ari: AriClient, channel_id: str, context: str, timeout: float) -> bool:
    """Whether the channel reaches a dialplan context (polled: once out of Stasis, no app hears of it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        channel = await ari.get_channel(channel_id)
        if channel.dialplan is not None and channel.dialplan.context == context:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_kill_9_with_callers_waiting_and_a_call_bridged_loses_nobody(
    roster: Roster, process: ServiceProcess, sipp: Sipp, ari: AriClient
) -> None:
    """kill -9 mid-call: the bridged call goes on; after the restart it is recognised, and the callers who
    were waiting are served first, in their order of arrival."""
    camille = await add_listener(roster, "Camille")
    await process.start()
    await wait_configured(ari, camille.endpoint)
    phone = sipp.softphone(camille, "listener_answer_hangup", pause_ms=4000)
    await wait_registered(ari, camille.endpoint)
    first = sipp.caller("caller")
    await process.wait_log("caller_arrived")
    await _wait_bridged(ari, 1)
    second = sipp.caller("caller")
    await process.wait_log("caller_arrived", count=2)
    third = sipp.caller("caller")
    await process.wait_log("caller_arrived", count=3)

    process.kill()
    await process.start()
    reconciled = await process.wait_log("reconciled")
    assert reconciled["resumed"] == 1
    assert reconciled["waiting"] == 2

    records = await _records(roster, 3, timeout=60)
    by_queue = sorted(records, key=lambda r: r.queued_at)
    assert [r.outcome for r in by_queue] == ["served", "served", "served"]
    # Served in arrival order, one at a time by the one listener: never two calls at once.
    answered = [r.answered_at for r in by_queue]
    assert answered == sorted(answered)
    for earlier, later in itertools.pairwise(by_queue):
        assert later.answered_at is not None
        assert earlier.ended_at <= later.answered_at
    for caller in (first, second, third):
        assert (await caller.wait_async(30)).exit_code == 0, caller.errors()
    assert phone.running


async def test_callers_reach_the_fallback_when_the_service_does_not_come_back(
    roster: Roster, process: ServiceProcess, sipp: Sipp, ari: AriClient, app_name: str
) -> None:
    """The service dies for good: within the grace time Asterisk itself moves the waiting caller to the
    fallback, which rings the listeners' phones; a caller arriving while it is down rings them too."""
    await process.start()
    busy = await add_listener(roster, "Busy")
    await process.wait_log("phone_configured")
    # A phone that is registered but whose calls the dead service cannot hand out.
    phone = sipp.softphone(busy, "listener_noanswer")
    await wait_registered(ari, busy.endpoint)
    await roster.edit_listener(busy.id, active=True)
    caller = sipp.caller("caller")
    await process.wait_log("caller_arrived")
    # The caller's channel, the far half of their Local channel (the app also holds the music-on-hold
    # announcer of its holding bridge).
    ids = (await ari.get_application(app_name)).channel_ids
    [channel_id] = [c for c in ids if is_caller(await ari.get_channel(c))]

    process.kill()
    assert await _context_of(ari, channel_id, "helpline-fallback", timeout=20)
    # The fallback rings the roster's phones, without the service: the phone gets an anonymous INVITE.
    # (The phone may first have been rung by the service itself, just before it died: "Écoute NNNN".)
    await phone.wait_for_message_async(
        lambda m: m.startswith("INVITE ") and _from(m) == "anonymous", timeout=30
    )
    await caller.stop_async()

    # A new caller while the service is down: Stasis fails, and the fallback rings the phones straight away.
    def anonymous_invites() -> int:
        return sum(1 for m in phone.messages() if m.startswith("INVITE ") and _from(m) == "anonymous")

    before = anonymous_invites()
    late = sipp.caller("caller", number="0639985701")
    await phone.wait_for_message_async(lambda _: anonymous_invites() > before, timeout=15)
    await late.stop_async()


def _from(message: str) -> str:
    header = next((line for line in message.splitlines() if line.lower().startswith("from:")), "")
    return header.split("<sip:", 1)[-1].split("@", 1)[0]


async def _wait_bridged(ari: AriClient, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for b in await ari.list_bridges() if b.id.endswith("-talk") and len(b.channels) == 2) < count:
        if time.monotonic() > deadline:
            raise AssertionError("no call was bridged")
        await asyncio.sleep(0.05)


async def test_a_dropped_websocket_reconnects_and_loses_nobody(
    asterisk: AsteriskUnderTest, roster: Roster, sipp: Sipp, line: str, app_name: str, tmp_path: Path
) -> None:
    """The events WebSocket is cut mid-call: the service reconnects, reconciles, and serves everyone once."""
    proxy = TcpProxy("127.0.0.1", int(asterisk.ari_url.split(":")[2].split("/")[0]))
    await proxy.start()
    camille = await add_listener(roster, "Camille")
    svc, stack = await start_service(
        ari_url=f"http://127.0.0.1:{proxy.port}/ari",
        user=asterisk.ari_user,
        password=asterisk.ari_password,
        app=app_name,
        roster=roster,
        policy=FAST,
        keys_dir=tmp_path / "keys",
        dids=(line,),
        agi_port=0,
    )
    try:
        await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=2500)
        first = sipp.caller("caller")
        await svc.decisions.wait_for(
            lambda: svc.board.queue.listener_state(camille.id) is ListenerState.ON_CALL, 10
        )
        second = sipp.caller("caller")
        await svc.decisions.wait_for(lambda: len(svc.board.queue.waiting()) == 1, 10, "a waiting caller")

        assert proxy.drop_all() >= 1
        await svc.decisions.wait_for(
            lambda: svc.board.queue.listener_state(camille.id) is ListenerState.RESTING, 30
        )
        records = await svc.decisions.wait_records(2, timeout=40)
        assert sorted(r.outcome for r in records) == ["served", "served"]
        assert len({r.call_id for r in records}) == 2
        assert svc.board.connections >= 2
        for caller in (first, second):
            assert (await caller.wait_async(20)).exit_code == 0, caller.errors()
    finally:
        await svc.stop()
        await stack.aclose()
        await proxy.close()


@pytest.mark.parametrize("failure", ["listener_480", "listener_503", "unregistered"])
async def test_a_failing_phone_passes_the_call_to_the_next_listener(
    failure: str, roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A phone answering 480 or 503, or gone without unregistering: the next listener gets the call."""
    flaky = await add_listener(roster, "Flaky")
    svc = await service(
        Policy(ring_timeout=2, rest_after_call=1, missed_offer_delay=30, declined_offer_delay=30)
    )
    phone = await online_phone(
        svc, sipp, flaky, "listener_noanswer" if failure == "unregistered" else failure
    )
    if failure == "unregistered":
        # The phone vanishes (crash, network) while Asterisk still has its registration.
        await phone.stop_async()
    ready = await add_listener(roster, "Ready")
    await online_phone(svc, sipp, ready, "listener_answer_hangup", pause_ms=500)
    caller = sipp.caller("caller")

    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    assert record.listener_id == ready.id
    assert [o.listener_id for o in svc.decisions.offers()] == [flaky.id, ready.id]
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


async def test_unauthenticated_sip_reaches_nothing(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """An INVITE from outside the trunk without valid credentials is refused: no caller, no listener rung."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await online_phone(svc, sipp, camille)
    impostor = dataclasses.replace(camille, sip_password="wrong-password-xxxxxxxx")
    intruder = sipp.dial(impostor, sipp.line)
    # Challenged, then refused again with the wrong credentials: never a 200.
    await intruder.wait_for_message_async(
        lambda _: sum(m.startswith("SIP/2.0 401") for m in intruder.messages()) >= 2, timeout=15
    )
    await intruder.stop_async()
    assert not any(m.startswith("SIP/2.0 200") for m in intruder.messages())
    assert svc.decisions.records() == []
    assert svc.decisions.offers() == []


async def test_a_caller_taken_by_a_service_that_dies_before_its_first_keep_alive_reaches_the_fallback(
    asterisk: AsteriskUnderTest, roster: Roster, sipp: Sipp, ari: AriClient, app_name: str, tmp_path: Path
) -> None:
    """The application holds the caller in Stasis but never sends a request (a service killed between the
    caller's StasisStart and its first keep-alive): the timeout the dialplan set from the service's grace
    still moves the caller to the fallback. (Before, nothing covered that window: the caller waited in
    Stasis, in silence, until they hung up.)"""
    callers = Callers(roster.engine)
    scribe = Scribe(roster.engine)
    memory = CallerMemory(callers, scribe, instance=app_name, keep=ScreeningPolicy().longest_window)
    await memory.refresh()
    agi = AgiServer(Screener(KeyRing(tmp_path / "keys"), memory, ScreeningPolicy()).handle, "127.0.0.1", 0)
    await agi.start()
    try:
        await ari.set_global_variable(app_of_number(sipp.line), app_name)
        await ari.set_global_variable(agi_of_number(sipp.line), f"agi://127.0.0.1:{agi.port}/screen")
        await ari.set_global_variable(grace_of_app(app_name), "3")
        # The application is there (its WebSocket is open) but does nothing with what it is told.
        async with EventStream(
            asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, app_name
        ) as stream:
            async with asyncio.timeout(10):
                async for item in stream:
                    if isinstance(item, Connected):
                        break
            caller = sipp.caller("caller")
            deadline = time.monotonic() + 15
            channel_id = None
            while channel_id is None:
                assert time.monotonic() < deadline, "the caller never entered the application"
                for candidate in (await ari.get_application(app_name)).channel_ids:
                    if is_caller(await ari.get_channel(candidate)):
                        channel_id = candidate
                await asyncio.sleep(0.05)
            assert await _context_of(ari, channel_id, "helpline-fallback", timeout=15)
            await caller.stop_async()
    finally:
        await agi.close()
        await scribe.close()
