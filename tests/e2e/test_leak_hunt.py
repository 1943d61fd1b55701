"""The leak hunt: a caller's number and name, sent in every header SIP allows and in every spelling, reach
no listener's phone, nothing the service receives over ARI or logs, no roster database and no file
Asterisk writes. (The screen's FastAGI request is the one place the number is handed to the service, by
design, to make a keyed token: what it leaves behind — logs, the roster, the key folder — is searched.)

Each case places one whole call on the real Asterisk (queue, ring, answer, bridge, hang-up by one side),
records everything each channel carried, then searches all of it. Every case draws its own fictitious
caller, so a hit can only come from the call under test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import shutil
import string
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from tests.conftest import AsteriskUnderTest
from tests.e2e import harness
from tests.e2e.artefacts import FICTION_PREFIX, CallerIdentity, LeakHunt, Needles
from tests.e2e.conftest import FAST, LINE, Sipp, add_listener, online_phone
from tests.e2e.sipp import SippProcess

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriError
from helpline_pbx.ari.stream import EventStream
from helpline_pbx.core import ConnectCall
from helpline_pbx.logs import configure_logging
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster

PG_HOST = os.environ.get("HELPLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HELPLINE_TEST_PG_PORT", "5432"))
PG_USERS = ("postgres", "root")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Long enough for the REST dumps taken while both sides are bridged.
TALK_MS = 2500
ASTERISK_FOLDERS = ("var/log/asterisk", "var/spool/asterisk", "var/lib/asterisk")
# What ARI lets the service ask Asterisk about a channel's identities.
IDENTITY_FUNCTIONS = (
    "CALLERID(all)",
    "CALLERID(ani-all)",
    "CALLERID(rdnis)",
    "CALLERID(dnid)",
    "CONNECTEDLINE(all)",
    "REDIRECTING(from-all)",
    "REDIRECTING(orig-all)",
    "REDIRECTING(to-all)",
)
TRUNK_DOMAIN = "operator.invalid"


# ---- how the caller presents themselves -------------------------------------------------------------


@dataclass(frozen=True)
class Presentation:
    """Where and how one case's INVITE carries the caller's identity, and who hangs up."""

    case: str
    first_name: str
    uri: str  # the CallerIdentity spelling used in SIP URIs
    shown: str  # the spelling used in free text (display names, custom headers)
    everywhere: bool = True
    privacy: bool = False
    withheld: bool = False
    caller_hangs_up: bool = True
    # The control case: the number is dialled (the line), which the service is meant to see.
    dialled: bool = False

    def invite(self, who: CallerIdentity) -> tuple[str, str, str, set[str]]:
        """(From/Contact user, From display name, extra header lines, headers that hold the identity)."""
        user: str = getattr(who, self.uri)
        shown: str = getattr(who, self.shown)
        tel = who.international
        lines = []
        if self.dialled:
            return "anonymous", "Anonymous", "", {"start line", "To"}
        if self.withheld:
            # RFC 3323/3325: From says nothing; the network asserts the real caller and asks for privacy.
            lines.append(f'P-Asserted-Identity: "{who.name}" <sip:{user}@{TRUNK_DOMAIN};user=phone>')
            lines.append("Privacy: id")
            return "anonymous", "Anonymous", "\r\n".join(lines), {"P-Asserted-Identity"}
        carriers = {"From", "Contact"}
        if self.everywhere:
            privacy = "full" if self.privacy else "off"
            lines += [
                f'P-Asserted-Identity: "{shown}" <sip:{user}@{TRUNK_DOMAIN};user=phone>, <tel:{tel}>',
                f'Remote-Party-ID: "{who.name}" <sip:{user}@{TRUNK_DOMAIN}>'
                f";party=calling;privacy={privacy};screen=yes",
                f'P-Preferred-Identity: "{shown}" <sip:{user}@{TRUNK_DOMAIN}>',
                f'Diversion: "{who.name}" <sip:{user}@{TRUNK_DOMAIN}>'
                f";reason=unconditional;counter=1;privacy={privacy}",
                f"History-Info: <sip:{user}@{TRUNK_DOMAIN}?Reason=SIP%3Bcause%3D302>;index=1,"
                f" <sip:{LINE}@helpline.invalid>;index=1.1",
                f"X-Caller-Number: {shown}",
                f"X-Caller-Name: {who.name}",
                f'X-Original-Caller: "{who.name}" <tel:{tel}>',
            ]
            carriers |= {
                "P-Asserted-Identity",
                "Remote-Party-ID",
                "P-Preferred-Identity",
                "Diversion",
                "History-Info",
                "X-Caller-Number",
                "X-Caller-Name",
                "X-Original-Caller",
            }
        if self.privacy:
            lines.append("Privacy: id")
        return user, who.name, "\r\n".join(lines), carriers


# Every spelling is sent at least once, with and without Privacy: id, and both sides hang up.
PRESENTATIONS = [
    Presentation("from-only-national", "Hélène", "national", "national", everywhere=False),
    Presentation("everywhere-national", "Zoé", "national", "national", caller_hangs_up=False),
    Presentation("everywhere-plus33", "Maëlle", "international", "international"),
    Presentation(
        "everywhere-plus33-privacy",
        "Jérôme",
        "international",
        "spaced_international",
        privacy=True,
        caller_hangs_up=False,
    ),
    Presentation("everywhere-0033-privacy", "Noël", "international_00", "international_00", privacy=True),
    Presentation("everywhere-spaced", "Françoise", "national", "spaced", caller_hangs_up=False),
    Presentation("everywhere-dotted-privacy", "Anaïs", "dotted", "dotted", privacy=True),
    Presentation("withheld-pai-privacy", "Loïc", "international", "international", withheld=True),
    Presentation(
        "withheld-pai-privacy-listener-ends",
        "Célia",
        "national",
        "national",
        withheld=True,
        caller_hangs_up=False,
    ),
]


class IdentityPool:
    """Fictitious callers, never the same number twice in a session nor the one other tests use."""

    def __init__(self) -> None:
        taken = {"1234"}  # tests.e2e.conftest.CALLER_NUMBER's last digits
        self._suffixes = [f"{n:04d}" for n in range(10_000) if f"{n:04d}" not in taken]
        random.SystemRandom().shuffle(self._suffixes)

    def draw(self, first_name: str) -> CallerIdentity:
        surname = "Fictif" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
        return CallerIdentity(FICTION_PREFIX + self._suffixes.pop(), first_name, surname)


@pytest.fixture(scope="session")
def identities() -> IdentityPool:
    return IdentityPool()


# ---- what the service received and logged -------------------------------------------------------


class Frames:
    """Every ARI WebSocket frame the service received, as Asterisk sent it (EventStream.raw_tap)."""

    def __init__(self) -> None:
        self.raw: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, text: str) -> None:
        self.raw.append(text)
        self._changed.set()

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.raw]

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = next((frame for frame in self.parsed() if predicate(frame)), None)
                    if found is not None:
                        return found
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no ARI event {what} within {timeout}s") from None


def tapped_stream(frames: Frames) -> type[EventStream]:
    """An EventStream whose raw tap records every frame from the first one on."""

    class TappedEventStream(EventStream):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.raw_tap = frames

    return TappedEventStream


@dataclass
class ServiceLogs:
    structured: Path
    stdlib: Path


@pytest.fixture
def service_logs(tmp_path: Path) -> Iterator[ServiceLogs]:
    """The service's JSON logs at debug level, and whatever reaches the stdlib root logger, into files."""
    logs = ServiceLogs(tmp_path / "service.jsonl", tmp_path / "stdlib.log")
    handler = logging.FileHandler(logs.stdlib, encoding="utf-8")
    logging.getLogger().addHandler(handler)
    with logs.structured.open("w", encoding="utf-8") as stream:
        configure_logging("debug", stream=stream)
        try:
            yield logs
        finally:
            # Back to the session's setting (tests/conftest.py), before the file closes.
            configure_logging("info")
            logging.getLogger().removeHandler(handler)
            handler.close()


# ---- roster databases ------------------------------------------------------------------------------


@dataclass
class HuntedRoster:
    roster: Roster
    hunt_database: Callable[[LeakHunt], None]
    # Closes the roster's engine after the call (and reads what the hunt needs from the server).
    close: Callable[[], Awaitable[None]] = field(repr=False)


@pytest.fixture
async def sqlite_roster(tmp_path: Path) -> AsyncIterator[HuntedRoster]:
    folder = tmp_path / "roster"
    folder.mkdir()
    url = f"sqlite+aiosqlite:///{folder / 'roster.db'}"
    await upgrade(url)
    engine = make_engine(url)

    def hunt(hunt: LeakHunt) -> None:
        # The database file, its WAL and shared memory, byte by byte, and the SQL dump.
        hunt.tree(folder, "roster SQLite")

    yield HuntedRoster(Roster(engine), hunt, engine.dispose)
    await engine.dispose()


async def _pg_admin(user: str, statement: str) -> None:
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database="postgres", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _pg_user() -> str | None:
    for user in PG_USERS:
        try:
            await _pg_admin(user, "SELECT 1")
        except (OSError, TimeoutError, asyncpg.PostgresError):
            continue
        return user
    return None


async def _pg_rows(user: str, database: str) -> dict[str, list[str]]:
    """Every row of every table, as text, in case pg_dump's COPY format hid something."""
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database=database)
    try:
        tables = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        rows = {}
        for table in tables:
            # Names read from the catalogue, quoted: nothing here comes from outside.
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            rows[name] = [repr(dict(row)) for row in await connection.fetch(f"SELECT * FROM {name}")]  # noqa: S608
        return rows
    finally:
        await connection.close()


@pytest.fixture
async def postgres_roster() -> AsyncIterator[HuntedRoster]:
    user = await _pg_user()
    if user is None:
        reason = f"PostgreSQL unreachable on {PG_HOST}:{PG_PORT} as {', '.join(PG_USERS)}"
        if IN_CI:
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)
    database = f"helpline_leak_hunt_{uuid.uuid4().hex[:12]}"
    await _pg_admin(user, f'CREATE DATABASE "{database}"')
    url = f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{database}"
    try:
        await upgrade(url)
        engine = make_engine(url)
        rows: dict[str, list[str]] = {}

        def hunt(hunt: LeakHunt) -> None:
            assert rows.get('"public"."call_records"'), "the call left no record in PostgreSQL"
            if shutil.which("pg_dump") is not None:
                dump = subprocess.run(
                    ["pg_dump", "-w", "-h", PG_HOST, "-p", str(PG_PORT), "-U", user, "-d", database],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert dump.returncode == 0, f"pg_dump failed: {dump.stderr[-500:]}"
                assert "call_records" in dump.stdout
                hunt.text("roster PostgreSQL (pg_dump)", dump.stdout)
            for table, values in rows.items():
                hunt.text(f"roster PostgreSQL table {table}", "\n".join(values))

        async def dispose() -> None:
            await engine.dispose()
            rows.update(await _pg_rows(user, database))

        yield HuntedRoster(Roster(engine), hunt, dispose)
        await engine.dispose()
    finally:
        await _pg_admin(user, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# ---- one hunted call -------------------------------------------------------------------------------


def _mixing_bridge_with_two(frame: dict[str, Any]) -> bool:
    bridge = frame.get("bridge") or {}
    return (
        frame.get("type") == "ChannelEnteredBridge"
        and bridge.get("bridge_type") == "mixing"
        and len(bridge.get("channels", [])) == 2
    )


async def _ari_views(ari: AriClient, app: str, channels: list[str]) -> list[tuple[str, Any]]:
    """What the service could ask Asterisk about the bridged call over REST."""
    views: list[tuple[str, Any]] = []
    for path in ("/channels", "/bridges", f"/applications/{app}", "/endpoints"):
        views.append((f"ARI GET {path}", await ari.request("GET", path)))
    for channel in channels:
        views.append((f"ARI GET /channels/{channel}", await ari.request("GET", f"/channels/{channel}")))
        for function in IDENTITY_FUNCTIONS:
            where = f"ARI GET /channels/{channel}/variable {function}"
            try:
                views.append((where, await ari.get_variable(channel, function)))
            except AriError as exc:
                views.append((where, f"unavailable: {exc.code}"))
    return views


@dataclass
class HuntedCall:
    """Everything one call left, ready to be searched."""

    hunt: LeakHunt
    control: LeakHunt
    expected_carriers: set[str]


@dataclass
class Hunting:
    """What every hunted call needs besides its roster: Asterisk, SIPp, log files, the key folder."""

    asterisk: AsteriskUnderTest
    sipp: Sipp
    logs: ServiceLogs
    keys_dir: Path
    monkeypatch: pytest.MonkeyPatch


@pytest.fixture
def hunting(
    asterisk: AsteriskUnderTest,
    sipp: Sipp,
    service_logs: ServiceLogs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Hunting:
    return Hunting(asterisk, sipp, service_logs, tmp_path / "keys", monkeypatch)


async def hunted_call(
    presentation: Presentation, identity: CallerIdentity, hunting: Hunting, database: HuntedRoster
) -> HuntedCall:
    """Run one whole call with this caller, then search every channel and artefact it touched."""
    asterisk, sipp, logs = hunting.asterisk, hunting.sipp, hunting.logs
    hunt = LeakHunt(Needles(identity))
    frames = Frames()
    roster = database.roster
    listener = await add_listener(roster, "Veilleur")
    replaced = False
    # The harness wires the service as the other e2e tests run it; only its event stream gains a tap.
    hunting.monkeypatch.setattr(harness, "EventStream", tapped_stream(frames))
    # A number and application of this case's own, so no other test's call can ever mix in.
    app = "t" + secrets.token_hex(4)
    line = identity.national if presentation.dialled else sipp.line
    svc, stack = await harness.start_service(
        ari_url=asterisk.ari_url,
        user=asterisk.ari_user,
        password=asterisk.ari_password,
        app=app,
        roster=roster,
        policy=FAST,
        keys_dir=hunting.keys_dir,
        dids=(line,),
        agi_port=0,
    )
    try:
        if presentation.caller_hangs_up:
            phone = await online_phone(svc, sipp, listener, "listener_answer")
        else:
            phone = await online_phone(svc, sipp, listener, "listener_answer_hangup", pause_ms=TALK_MS)
        user, display, extra, carriers = presentation.invite(identity)
        caller = SippProcess(
            "caller_hangup" if presentation.caller_hangs_up else "caller",
            workdir=sipp.workdir,
            local_ip=asterisk.trunk_ip,
            remote=sipp.remote,
            service=line,
            variables={"caller_user": user, "caller_name": display, "extra_headers": extra},
            calls=1,
            pause_ms=TALK_MS if presentation.caller_hangs_up else None,
            lifetime=60,
        )
        sipp.processes.append(caller)
        caller.start()

        bridged = await frames.wait_for(_mixing_bridge_with_two, 15, "of a caller bridged with a listener")
        views = await _ari_views(svc.ari, app, bridged["bridge"]["channels"])
        [record] = await svc.decisions.wait_records(1, timeout=30)
        assert record.outcome == "served", svc.decisions.describe()
        assert any(isinstance(c, ConnectCall) for c in svc.decisions.commands())
        assert (await caller.wait_async(20)).exit_code == 0, "the caller's SIPp reported a failed call"
        if presentation.caller_hangs_up:
            await phone.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=5)
        await svc.board.executor.lanes.wait_idle()
    except AssertionError:
        # A test's own failure, unless another service took the app away mid-call (said below).
        replaced = any(frame.get("type") == "ApplicationReplaced" for frame in frames.parsed())
        if not replaced:
            raise
    finally:
        if not svc.task.done():
            await svc.stop()
        await stack.aclose()
    if replaced:
        pytest.fail(
            "another service took the Stasis app over during the call: is a second e2e run "
            "using the same Asterisk?",
            pytrace=False,
        )
    await database.close()
    await phone.stop_async()

    # The listener's phone: every message it received, and every file its SIPp wrote.
    assert any(m.startswith("INVITE ") for m in phone.messages()), "the listener's phone was never rung"
    hunt.sip_messages(f"listener softphone {listener.endpoint} received", phone.messages())
    hunt.sip_messages(f"listener softphone {listener.endpoint} sent", phone.sent_messages())
    for trace in (
        phone.message_file,
        phone.error_file,
        phone.screen_file,
        phone.stdout_file,
        phone.stat_file,
    ):
        if trace.exists():
            hunt.file(trace, f"listener softphone file {trace.name}")

    # The service: raw WebSocket frames, REST views, core decisions, logs.
    assert any(f.get("type") == "StasisStart" for f in frames.parsed()), "no StasisStart was received"
    for index, (raw, frame) in enumerate(zip(frames.raw, frames.parsed(), strict=True), 1):
        hunt.json_value(f"ARI WebSocket frame #{index} ({frame.get('type')})", frame)
        hunt.text(f"ARI WebSocket frame #{index} (raw text)", raw)
    for where, view in views:
        hunt.json_value(where, view)
    hunt.text(
        "service core decisions (events and commands)",
        "\n".join(f"{event!r} -> {commands!r}" for _, event, commands in svc.decisions.log),
    )
    structured = logs.structured.read_text(encoding="utf-8")
    assert '"caller_arrived"' in structured, "the service's log file holds none of the call's log lines"
    hunt.json_lines("service JSON log", structured)
    hunt.data("service stdlib log", logs.stdlib.read_bytes())
    hunt.tree(hunting.keys_dir, "service token key folder")

    # The roster database, and every file Asterisk wrote.
    database.hunt_database(hunt)
    root = asterisk.files_root()
    for folder in ASTERISK_FOLDERS:
        hunt.tree(root / folder, f"Asterisk {folder}")
    assert any("astdb" in where for where in hunt.searched), "Asterisk's astdb was not searched"

    # The control: the same hunter finds the identity in the INVITE the caller sent.
    control = LeakHunt(Needles(identity))
    invites = [m for m in caller.sent_messages() if m.startswith("INVITE ")]
    control.sip_messages("the caller's own INVITE", invites)
    return HuntedCall(hunt, control, carriers)


def _found_in(hunt: LeakHunt, place: str) -> bool:
    return any(place in hit.where for hit in hunt.hits)


def assert_no_leak(call: HuntedCall) -> None:
    # The control first: a hunter that cannot see the identity where it was sent proves nothing.
    missing = {
        carrier
        for carrier in call.expected_carriers
        if not _found_in(
            call.control, "in the start line" if carrier == "start line" else f"header {carrier!r}"
        )
    }
    if missing:
        pytest.fail(
            f"the hunter misses the identity in the caller's own INVITE: {sorted(missing)}", pytrace=False
        )
    if call.hunt.hits:
        # pytrace=False: pytest then shows no locals, only this redacted report.
        pytest.fail(call.hunt.report(), pytrace=False)


# ---- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("presentation", PRESENTATIONS, ids=[p.case for p in PRESENTATIONS])
async def test_caller_identity_reaches_no_listener_service_log_database_or_asterisk_file(
    presentation: Presentation,
    identities: IdentityPool,
    hunting: Hunting,
    sqlite_roster: HuntedRoster,
) -> None:
    """A caller's number and name, however the trunk presents them, appear nowhere after a whole call."""
    identity = identities.draw(presentation.first_name)
    call = await hunted_call(presentation, identity, hunting, sqlite_roster)
    assert_no_leak(call)


async def test_caller_identity_reaches_no_postgresql_roster(
    identities: IdentityPool,
    hunting: Hunting,
    postgres_roster: HuntedRoster,
) -> None:
    """With the roster on PostgreSQL, a caller presented everywhere leaves no trace in its dump either."""
    presentation = Presentation(
        "postgres-everywhere-privacy",
        "Gaëlle",
        "international",
        "international",
        privacy=True,
        caller_hangs_up=False,
    )
    identity = identities.draw(presentation.first_name)
    call = await hunted_call(presentation, identity, hunting, postgres_roster)
    assert_no_leak(call)


async def test_the_hunt_finds_a_number_the_service_is_meant_to_see(
    identities: IdentityPool, hunting: Hunting, sqlite_roster: HuntedRoster
) -> None:
    """Control: the same hunt finds a fictitious number dialled as the line in the events, decisions and roster."""
    presentation = Presentation("dialled-line", "Line", "national", "national", dialled=True)
    identity = identities.draw(presentation.first_name)
    call = await hunted_call(presentation, identity, hunting, sqlite_roster)
    for place in ("ARI WebSocket frame", "ARI GET /channels", "service core decisions", "roster SQLite"):
        assert _found_in(call.hunt, place), f"the hunt did not see the dialled line in: {place}"


def test_the_hunter_finds_every_spelling_and_never_prints_it() -> None:
    """Each spelling and encoding of the identity is found, and the report holds none of it."""
    identity = IdentityPool().draw("Hélène")
    needles = Needles(identity)
    samples = [
        *identity.spellings().values(),
        identity.name.upper(),
        json.dumps(identity.name),
        identity.surname,
        "sip:%2B" + identity.international[1:] + "@x",
        "-".join(identity.pairs),
        "%20".join(identity.pairs),
        "(" + identity.pairs[0] + ") " + " ".join(identity.pairs[1:]),
    ]
    hunt = LeakHunt(needles)
    # Booleans only in asserts: pytest's introspection would print the samples.
    for index, sample in enumerate(samples):
        found = bool(hunt.text(f"sample {index}", f"before {sample} after"))
        assert found, f"sample {index} was missed"
    stored = hunt.data("Latin-1 bytes", f"x {identity.name} y".encode("latin-1"))
    found = any(hit.what == "name" for hit in stored)
    assert found, "the name stored in Latin-1 was missed"
    report = hunt.report()
    clean = not needles.spans(report) and identity.national[2:] not in "".join(filter(str.isdigit, report))
    assert clean, "the report itself holds the identity"
    found = bool(LeakHunt(needles).text("clean", "Écoute 4821 <sip:4821@127.0.0.1> 1795902534.683"))
    assert not found, "the hunter finds the identity where there is none"
