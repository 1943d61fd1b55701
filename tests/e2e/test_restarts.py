"""Restarts under a running service, on the real Asterisk: Asterisk itself, PostgreSQL, and two service
instances sharing one PostgreSQL roster."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import subprocess
from pathlib import Path

from tests.conftest import SCRIPT, AsteriskUnderTest
from tests.e2e.conftest import ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.harness import start_service, wait_configured, wait_registered

from helpline_pbx.core import ClaimFailed, ListenerState, OfferCall, Policy
from helpline_pbx.roster.repository import Roster

PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect"]


async def test_asterisk_restart_reconnects_resyncs_and_leaves_no_ghost(
    roster: Roster, service: ServiceFactory, sipp: Sipp, asterisk: AsteriskUnderTest
) -> None:
    """Asterisk restarts under the service: it reconnects within seconds, pushes the phones again, frees the
    listener whose call died with Asterisk, and serves the next caller."""
    camille = await add_listener(roster, "Camille")
    svc = await service(
        Policy(ring_timeout=5, rest_after_call=0.5, missed_offer_delay=1, declined_offer_delay=1)
    )
    phone = await online_phone(svc, sipp, camille)
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) is ListenerState.ON_CALL, 10
    )

    restarted = await asyncio.to_thread(
        subprocess.run, [str(SCRIPT), "restart"], capture_output=True, text=True, timeout=120, check=False
    )
    assert restarted.returncode == 0, restarted.stderr
    # The call died with Asterisk: recorded, and the listener rests then is free again.
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    async with asyncio.timeout(30):
        await svc.board.wait_resynced(2)
    await svc.board.executor.wait_idle()
    await caller.stop_async()
    await phone.stop_async()

    # Phones registered before the restart register again (a real softphone does so by itself).
    again = sipp.softphone(camille, "listener_answer_hangup", pause_ms=500)
    await wait_registered(svc.ari, camille.endpoint, timeout=20)
    next_caller = sipp.caller("caller")
    records = await svc.decisions.wait_records(2, timeout=30)
    assert records[-1].outcome == "served"
    assert (await next_caller.wait_async(15)).exit_code == 0, next_caller.errors()
    await svc.board.executor.wait_idle()
    stored = await roster.get_listener(camille.id)
    assert stored.state in (ListenerState.RESTING, ListenerState.AVAILABLE)
    await again.stop_async()


async def test_postgresql_restart_keeps_callers_waiting_and_leaves_no_ghost(
    pg_roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """PostgreSQL restarts while a caller is being offered: the decision's writes wait and retry, the caller
    is served once it is back, and the listener's row ends consistent."""
    roster = pg_roster
    camille = await add_listener(roster, "Camille")
    svc = await service(
        Policy(ring_timeout=10, rest_after_call=0.5, missed_offer_delay=1, declined_offer_delay=1), on=roster
    )
    await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=800)

    restart = asyncio.create_task(asyncio.to_thread(_restart_postgresql))
    caller = sipp.caller("caller")
    await restart
    [record] = await svc.decisions.wait_records(1, timeout=60)
    assert record.outcome == "served"
    assert (await caller.wait_async(30)).exit_code == 0, caller.errors()
    await svc.board.executor.wait_idle()
    stored = await roster.call_record(record.call_id)
    assert stored is not None
    assert stored.outcome == "served"
    listener = await roster.get_listener(camille.id)
    assert listener.state in (ListenerState.RESTING, ListenerState.AVAILABLE)


def _restart_postgresql() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run([*PG_CLUSTER, version, "main", "restart"], check=True, capture_output=True, timeout=120)


async def test_two_instances_on_one_roster_never_offer_one_listener_two_calls(
    asterisk: AsteriskUnderTest, pg_roster: Roster, sipp: Sipp, tmp_path: Path
) -> None:
    """Two service instances (their own apps and numbers) share one PostgreSQL roster and its listeners;
    calls arrive on both: every caller is served, and no listener ever has two calls at once."""
    roster = pg_roster
    listeners = [await add_listener(roster, name) for name in ("Ana", "Ben", "Cy")]
    services = []
    lines = []
    try:
        for n in range(2):
            line = "0898" + str(secrets.randbelow(10**6)).zfill(6)
            svc, stack = await start_service(
                ari_url=asterisk.ari_url,
                user=asterisk.ari_user,
                password=asterisk.ari_password,
                app=f"t{secrets.token_hex(3)}i{n}",
                roster=roster,
                policy=Policy(
                    ring_timeout=5, rest_after_call=0.3, missed_offer_delay=0.5, declined_offer_delay=0.5
                ),
                keys_dir=tmp_path / f"keys{n}",
                dids=(line,),
                agi_port=0,
            )
            services.append((svc, stack))
            lines.append(line)
        for listener in listeners:
            await services[0][0].decisions.wait_for(
                lambda listener=listener: services[0][0].board.queue.listener_state(listener.id) is not None,
                10,
            )
            await wait_configured(services[0][0].ari, listener.endpoint)
            sipp.softphone(listener, "listener_answer_hangup", pause_ms=1200)
            await wait_registered(services[0][0].ari, listener.endpoint)

        callers = []
        for n in range(8):
            callers.append(sipp.caller("caller", line=lines[n % 2], number=f"063998{5700 + n}"))
        for svc, _ in services:
            await svc.decisions.wait_records(4, timeout=90)

        records = [r for svc, _ in services for r in svc.decisions.records()]
        assert [r.outcome for r in records] == ["served"] * 8
        by_listener = sorted(records, key=lambda r: (r.listener_id, r.answered_at or 0))
        for listener_id, calls in itertools.groupby(by_listener, key=lambda r: r.listener_id):
            spans = [(r.answered_at, r.ended_at) for r in calls]
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert start is not None
                assert start >= end, f"listener {listener_id} had two calls at once"
        # The instances competed for the same listeners: each saw the other's claims win at least once.
        contested = [c for svc, _ in services for c in svc.decisions.events() if isinstance(c, ClaimFailed)]
        offers = [c for svc, _ in services for c in svc.decisions.commands() if isinstance(c, OfferCall)]
        assert len(offers) >= 8
        print(f"two instances: {len(offers)} offers, {len(contested)} claims lost to the other instance")
        for caller in callers:
            assert (await caller.wait_async(30)).exit_code == 0, caller.errors()
    finally:
        for svc, stack in services:
            await svc.stop()
            await stack.aclose()
