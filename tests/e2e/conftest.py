"""Fixtures for end-to-end tests: a fresh roster, the service in-process, SIPp callers and softphones."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import AsteriskUnderTest
from tests.e2e.harness import RunningService, start_service, wait_configured, wait_registered
from tests.e2e.sipp import SippProcess, scenario_path
from tests.pg import PostgresServer, postgres_server

__all__ = ["postgres_server"]

from helpline_pbx.ari.client import AriClient
from helpline_pbx.core import Policy
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.screening import ScreeningPolicy

LINE = "0800123456"
# Test callers: a fictitious number (the ARCEP range reserved for fiction) and name.
CALLER_NUMBER = "0639981234"
CALLER_NAME = "Jeanne Exemple"
FAST = Policy(
    ring_timeout=4.0,
    rest_after_call=1.0,
    missed_offer_delay=1.0,
    declined_offer_delay=1.0,
    # Pauses after missed offers and shift breaks have tests of their own.
    max_missed_offers=0,
    shift_limits={},
)


@pytest.fixture
async def roster(tmp_path: Path) -> AsyncIterator[Roster]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'roster.db'}"
    await upgrade(url)
    engine = make_engine(url)
    yield Roster(engine)
    await engine.dispose()


@pytest.fixture
async def ari(asterisk: AsteriskUnderTest) -> AsyncIterator[AriClient]:
    async with AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password) as client:
        yield client


class Sipp:
    """Starts SIPp processes for one test and always stops them."""

    def __init__(self, asterisk: AsteriskUnderTest, workdir: Path, line: str = LINE) -> None:
        self.asterisk = asterisk
        self.line = line
        self.workdir = workdir
        self.processes: list[SippProcess] = []
        self.remote = f"{asterisk.sip_host}:{asterisk.sip_port}"

    def caller(
        self,
        scenario: str = "caller",
        *,
        talk_ms: int | None = None,
        calls: int = 1,
        rate: float | None = None,
        number: str = CALLER_NUMBER,
        name: str = CALLER_NAME,
        lifetime: float = 120,
        line: str | None = None,
    ) -> SippProcess:
        proc = SippProcess(
            scenario,
            workdir=self.workdir,
            local_ip=self.asterisk.trunk_ip,
            remote=self.remote,
            service=line or self.line,
            variables={"caller_user": number, "caller_name": name},
            calls=calls,
            rate=rate,
            pause_ms=talk_ms,
            lifetime=lifetime,
        )
        self.processes.append(proc)
        return proc.start()

    def softphone(
        self,
        listener: ListenerSnapshot,
        answer: str = "listener_answer",
        *,
        pause_ms: int | None = None,
        local_ip: str = "127.0.0.1",
    ) -> SippProcess:
        proc = SippProcess(
            "softphone",
            workdir=self.workdir,
            local_ip=local_ip,
            remote=self.remote,
            service=listener.endpoint,
            auth_user=listener.endpoint,
            auth_password=sip_password(listener),
            calls=1,
            pause_ms=pause_ms,
            lifetime=300,
            extra_args=["-oocsf", str(scenario_path(answer))],
        )
        self.processes.append(proc)
        return proc.start()

    def dial(self, listener: ListenerSnapshot, number: str) -> SippProcess:
        """The listener's phone dials a number (a feature code, or something it must not reach)."""
        proc = SippProcess(
            "phone_dial",
            workdir=self.workdir,
            remote=self.remote,
            service=number,
            auth_user=listener.endpoint,
            auth_password=sip_password(listener),
            variables={"user": listener.endpoint},
            calls=1,
            lifetime=60,
        )
        self.processes.append(proc)
        return proc.start()

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop()


@pytest.fixture
def line() -> str:
    """A number of this test's own: only this test's service takes it."""
    return "0899" + str(secrets.randbelow(10**6)).zfill(6)


@pytest.fixture
def app_name() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture
def sipp(asterisk: AsteriskUnderTest, tmp_path: Path, line: str) -> Iterator[Sipp]:
    runner = Sipp(asterisk, tmp_path / "sipp", line)
    yield runner
    runner.stop_all()


ServiceFactory = Callable[..., Awaitable[RunningService]]


@pytest.fixture
async def service(
    asterisk: AsteriskUnderTest, roster: Roster, tmp_path: Path, line: str, app_name: str
) -> AsyncIterator[ServiceFactory]:
    stacks = []
    running: list[RunningService] = []

    async def start(
        policy: Policy = FAST,
        screening: ScreeningPolicy = ScreeningPolicy(),
        repeat_hint: bool = False,
        on: Roster | None = None,
    ) -> RunningService:
        svc, stack = await start_service(
            ari_url=asterisk.ari_url,
            user=asterisk.ari_user,
            password=asterisk.ari_password,
            app=app_name,
            roster=on or roster,
            policy=policy,
            keys_dir=tmp_path / "keys",
            dids=(line,),
            agi_port=0,
            screening=screening,
            repeat_hint=repeat_hint,
        )
        stacks.append(stack)
        running.append(svc)
        return svc

    yield start
    for svc in running:
        if not svc.task.done():
            await svc.stop()
    for stack in stacks:
        await stack.aclose()


async def add_listener(
    roster: Roster,
    pseudonym: str,
    role: str = "volunteer",
    skills: tuple[str, ...] = (),
    *,
    on_duty: bool = True,
    trainee: bool = False,
    monitoring_consent: bool = False,
) -> ListenerSnapshot:
    """A listener with a fresh endpoint name (a registration left by an earlier test can never answer for
    it), logged in unless on_duty=False."""
    endpoint = f"{pseudonym.lower()}-{secrets.token_hex(3)}"
    added = await roster.add_listener(
        pseudonym, endpoint, role, skills=skills, trainee=trainee, monitoring_consent=monitoring_consent
    )
    if not on_duty:
        return added
    # The roster keeps only the password's digest: the password comes from what adding returned.
    logged_in = await roster.set_presence(added.id, "on", now=datetime.now(UTC))
    return dataclasses.replace(logged_in, sip_password=added.sip_password)


def sip_password(listener: ListenerSnapshot) -> str:
    """The password a softphone registers with: only the snapshot that add (or a new password) returned
    carries it, since the roster never stores it."""
    assert listener.sip_password is not None, (
        "pass the snapshot add_listener returned: the roster has no password"
    )
    return listener.sip_password


async def online_phone(
    svc: RunningService,
    sipp: Sipp,
    listener: ListenerSnapshot,
    answer: str = "listener_answer",
    *,
    pause_ms: int | None = None,
    local_ip: str = "127.0.0.1",
) -> SippProcess:
    """Log the listener in (as the CLI does), wait until the service pushed their account and put them on
    duty, register a softphone for it, and wait until the service knows the phone is reachable."""
    await svc.roster.set_presence(listener.id, "on", now=datetime.now(UTC))
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(listener.id) is not None, 10, "listener known"
    )
    await wait_configured(svc.ari, listener.endpoint)
    phone = sipp.softphone(listener, answer, pause_ms=pause_ms, local_ip=local_ip)
    try:
        await wait_registered(svc.ari, listener.endpoint)
    except AssertionError as exc:
        # What the phone heard back says why (a listener's phone: no caller data in it).
        heard = [m.split("\r\n", 1)[0] for m in phone.messages()]
        raise AssertionError(f"{exc}; the phone received {heard}; SIPp: {phone.errors()[-400:]}") from None
    await svc.decisions.wait_for(lambda: _reachable(svc, listener.id), 10, "phone reachable")
    return phone


def _reachable(svc: RunningService, listener_id: str) -> bool:
    return any(view.listener_id == listener_id and view.reachable for view in svc.board.queue.listeners())


@pytest.fixture
async def pg_roster(postgres_server: PostgresServer) -> AsyncIterator[Roster]:
    """A roster on a fresh PostgreSQL database of its own."""
    url = postgres_server.create_database()
    await upgrade(url)
    engine = make_engine(url)
    yield Roster(engine)
    await engine.dispose()
