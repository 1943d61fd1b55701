"""The leak hunt: a caller's number and name, sent in every header SIP allows and in every spelling, reach
no listener's phone, nothing the service receives over ARI or logs, no roster database and no file
Asterisk writes. Nor do a hostile carrier's own data (a Call-ID carrying the number, Request-URI
parameters, a STIR/SHAKEN Identity header, the same again in a re-INVITE) or a display name that is not
valid UTF-8. (The screen's FastAGI request is the one place the number is handed to the service, by
design, to make a keyed token: what it leaves behind — logs, the roster, the key folder — is searched.)

Each case places one whole call on the real Asterisk (queue, ring, answer, bridge, hang-up by one side),
records everything each channel carried, then searches all of it. Every case draws its own fictitious
caller, so a hit can only come from the call under test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import secrets
import shutil
import string
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]
import pytest
from tests.conftest import AsteriskUnderTest
from tests.e2e import harness
from tests.e2e.artefacts import FICTION_PREFIX, CallerIdentity, LeakHunt, Needles
from tests.e2e.conftest import FAST, LINE, Sipp, add_listener, online_phone
from tests.e2e.proxy import TcpProxy
from tests.e2e.sipp import SippProcess, scenario_path

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriError
from helpline_pbx.ari.stream import EventStream
from helpline_pbx.core import ConnectCall
from helpline_pbx.logs import configure_logging
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.repository import Roster
from helpline_pbx.screening import AgiLike, Screener

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
# What ARI lets the service read of a channel's SIP session (only a PJSIP channel has one): the original
# INVITE's headers, its Call-ID and URIs, and the Call-ID a bridge copies onto the peer's channel.
CARRIER_FUNCTIONS = (
    "PJSIP_HEADER(read,From)",
    "PJSIP_HEADER(read,P-Asserted-Identity)",
    "PJSIP_HEADER(read,Identity)",
    "CHANNEL(pjsip,call-id)",
    "CHANNEL(pjsip,target_uri)",
    "CHANNEL(pjsip,remote_uri)",
    "BRIDGEPVTCALLID",
)
TRUNK_DOMAIN = "operator.invalid"
# The hostile caller's re-INVITE comes this long after the answer (the call is bridged by then), and the
# listener hangs up this long after answering (the re-INVITE has long been answered by then).
REINVITE_MS = 1500
HOSTILE_TALK_MS = 4000


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
    # The From display name as raw bytes that are not UTF-8: "latin-1", or "cut-utf-8" (a long name cut
    # in the middle of a character).
    raw_name: str | None = None
    # A hostile carrier: the number in the Call-ID and in Request-URI parameters, a PASSporT carrying it,
    # all of it again in a re-INVITE during the call.
    hostile: bool = False

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
        if self.hostile:
            lines += [
                f'P-Asserted-Identity: "{shown}" <sip:{tel}@{TRUNK_DOMAIN};user=phone>',
                f"Identity: {passport(who)};info=<https://cert.{TRUNK_DOMAIN}/shaken.pem>;alg=ES256;ppt=shaken",
            ]
            carriers |= {"P-Asserted-Identity", "Identity", "Call-ID", "start line", "To"}
        if self.privacy:
            lines.append("Privacy: id")
        return user, who.name, "\r\n".join(lines), carriers

    def display_bytes(self, who: CallerIdentity) -> bytes:
        """The raw From display name of a `raw_name` case."""
        if self.raw_name == "latin-1":
            return who.name.encode("latin-1")
        # A carrier cut a long name at 120 bytes: the last "é" loses its second byte.
        long = (who.name + " de la Fontaine-" + "é" * 60).encode()
        cut = long[: 120 if long[119] == 0xC3 else 121]
        assert cut[-1] == 0xC3
        return cut


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def passport(who: CallerIdentity) -> str:
    """A STIR/SHAKEN PASSporT (RFC 8225/8588) as a carrier signs it: the caller's number in its payload
    (base64url, so it is in none of the number's plain spellings). The signature is random bytes."""
    header = {
        "alg": "ES256",
        "ppt": "shaken",
        "typ": "passport",
        "x5u": f"https://cert.{TRUNK_DOMAIN}/shaken.pem",
    }
    payload = {
        "attest": "A",
        "dest": {"tn": ["33" + LINE[1:]]},
        "iat": int(time.time()),
        "orig": {"tn": who.international[1:]},
        "origid": str(uuid.uuid4()),
    }
    parts = [json.dumps(part, separators=(",", ":")).encode() for part in (header, payload)]
    return ".".join([*map(_b64url, parts), _b64url(secrets.token_bytes(64))])


@dataclass(frozen=True)
class HostileCarrier:
    """What a hostile carrier puts around one call besides its headers: a Call-ID holding the number and
    a token, and Request-URI user parameters holding the number."""

    token: str
    call_id: str
    uri_parameters: str

    @classmethod
    def of(cls, who: CallerIdentity) -> HostileCarrier:
        token = secrets.token_hex(8)
        return cls(token, f"{token}-{who.national}@{TRUNK_DOMAIN}", f";isub={who.national};oli=62")

    def needles(self) -> dict[str, str]:
        """What none of the line's parts may hold, by labels that do not show it."""
        return {
            "the carrier's Call-ID": self.call_id,
            "the carrier's Call-ID token": self.token,
            "the Request-URI's isub parameter": "isub=",
            "the Request-URI's oli parameter": "oli=",
        }


def raw_name_scenario(base: str, display: bytes, workdir: Path) -> Path:
    """`base` with the From display name replaced by `display`, byte for byte: SIPp's -set goes through
    its command line, which is no place for bytes that are not text."""
    raw = scenario_path(base).read_bytes()
    assert b'"[$caller_name]"' in raw
    path = workdir / f"{base}_raw_{secrets.token_hex(3)}.xml"
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.replace(b'"[$caller_name]"', b'"' + display + b'"'))
    return path


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


def recording_screener(requests: list[dict[str, str]]) -> type[Screener]:
    """A Screener that keeps the environment of every FastAGI request it answers."""

    class RecordingScreener(Screener):
        async def handle(self, request: AgiLike) -> dict[str, str]:
            requests.append(dict(request.env))
            return await super().handle(request)

    return RecordingScreener


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
    """What the service could ask Asterisk about the call over REST: its application and every channel of
    it (the service never lists all channels: that list holds the trunk's), the bridges and endpoints, and
    of each of its channels and the bridged ones the identities and SIP session data ARI can read."""
    views: list[tuple[str, Any]] = []
    for path in ("/bridges", f"/applications/{app}", "/endpoints"):
        views.append((f"ARI GET {path}", await ari.request("GET", path)))
    own = (await ari.get_application(app)).channel_ids
    assert set(channels) <= set(own), "a bridged channel is not the service's"
    for channel in dict.fromkeys([*own, *channels]):
        try:
            views.append((f"ARI GET /channels/{channel}", await ari.request("GET", f"/channels/{channel}")))
        except AriError as exc:
            views.append((f"ARI GET /channels/{channel}", f"unavailable: {exc.code}"))
        for function in (*IDENTITY_FUNCTIONS, *CARRIER_FUNCTIONS):
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
    # A raw_name case: the INVITE SIPp sent holds the display name's bytes, unchanged.
    sent_raw_name: bool = False
    # A hostile case: the caller's re-INVITE was answered while the call was bridged.
    reinvited: bool = False


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
    carrier = HostileCarrier.of(identity) if presentation.hostile else None
    extra = carrier.needles() if carrier is not None else {}
    hunt = LeakHunt(Needles(identity, extra))
    frames = Frames()
    roster = database.roster
    listener = await add_listener(roster, "Veilleur")
    replaced = False
    reinvited = False
    # The harness wires the service as the other e2e tests run it; only its event stream gains a tap.
    hunting.monkeypatch.setattr(harness, "EventStream", tapped_stream(frames))
    # The screen's requests too: the number is their one argument, by design, and must be all they carry.
    screened: list[dict[str, str]] = []
    hunting.monkeypatch.setattr(harness, "Screener", recording_screener(screened))
    # And every byte Asterisk sends it, REST responses included, is kept on the way.
    ari_host, ari_port = asterisk.ari_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    wire = TcpProxy(ari_host, int(ari_port), record=True)
    await wire.start()
    # A number and application of this case's own, so no other test's call can ever mix in.
    app = "t" + secrets.token_hex(4)
    line = identity.national if presentation.dialled else sipp.line
    svc, stack = await harness.start_service(
        ari_url=asterisk.ari_url.replace(f":{ari_port}/", f":{wire.port}/", 1),
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
            talk = HOSTILE_TALK_MS if presentation.hostile else TALK_MS
            phone = await online_phone(svc, sipp, listener, "listener_answer_hangup", pause_ms=talk)
        user, display, extra_headers, carriers = presentation.invite(identity)
        scenario: str | Path = "caller_hangup" if presentation.caller_hangs_up else "caller"
        extra_args: list[str] = []
        if presentation.raw_name is not None:
            scenario = raw_name_scenario(str(scenario), presentation.display_bytes(identity), sipp.workdir)
        if carrier is not None:
            scenario = "caller_reinvite"
            extra_args = ["-cid_str", carrier.call_id]
        caller = SippProcess(
            scenario,
            workdir=sipp.workdir,
            local_ip=asterisk.trunk_ip,
            remote=sipp.remote,
            service=line + (carrier.uri_parameters if carrier is not None else ""),
            variables={"caller_user": user, "caller_name": display, "extra_headers": extra_headers},
            calls=1,
            pause_ms=REINVITE_MS
            if carrier is not None
            else TALK_MS
            if presentation.caller_hangs_up
            else None,
            lifetime=60,
            extra_args=extra_args,
        )
        sipp.processes.append(caller)
        caller.start()

        bridged = await frames.wait_for(_mixing_bridge_with_two, 15, "of a caller bridged with a listener")
        views = await _ari_views(svc.ari, app, bridged["bridge"]["channels"])
        if carrier is not None:
            # Once the re-INVITE is answered, what it carried is all Asterisk has: read everything again.
            await caller.wait_for_message_async(
                lambda m: m.startswith("SIP/2.0 200") and "CSeq: 2 INVITE" in m, timeout=15
            )
            views += await _ari_views(svc.ari, app, bridged["bridge"]["channels"])
            reinvited = not any(f.get("type") == "StasisEnd" for f in frames.parsed())
        [record] = await svc.decisions.wait_records(1, timeout=30)
        assert record.outcome == "served", svc.decisions.describe()
        assert any(isinstance(c, ConnectCall) for c in svc.decisions.commands())
        assert (await caller.wait_async(20)).exit_code == 0, "the caller's SIPp reported a failed call"
        if presentation.caller_hangs_up:
            await phone.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=5)
        await svc.board.executor.wait_idle()
    except AssertionError:
        # A test's own failure, unless another service took the app away mid-call (said below).
        replaced = any(frame.get("type") == "ApplicationReplaced" for frame in frames.parsed())
        if not replaced:
            raise
    finally:
        if not svc.task.done():
            await svc.stop()
        await stack.aclose()
        await wire.close()
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

    # The service: every byte Asterisk sent it, raw WebSocket frames, REST views, core decisions, logs.
    wire_bytes = b"".join(wire.received)
    assert b"StasisStart" in wire_bytes, "the tap on the service's ARI connections saw no StasisStart"
    # Compressed bodies or frames would hide what they carry from the search.
    assert b"Content-Encoding" not in wire_bytes
    assert b"permessage-deflate" not in wire_bytes
    for index, received in enumerate(wire.received, 1):
        hunt.data(f"ARI connection #{index}: bytes Asterisk sent the service", bytes(received))
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
    assert screened, "the screen was never asked"
    for index, env in enumerate(screened, 1):
        where = f"the screen's FastAGI request #{index}"
        hunt.json_value(f"{where} (all but its argument)", {k: v for k, v in env.items() if k != "agi_arg_1"})
        # The argument is the From URI's user: no carrier data besides the number.
        argument = LeakHunt(hunt.needles)
        hunt.hits += [
            hit for hit in argument.text(f"{where} argument", env.get("agi_arg_1", "")) if hit.what in extra
        ]
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
    control = LeakHunt(Needles(identity, extra))
    invites = [m for m in caller.sent_messages() if m.startswith("INVITE ")]
    control.sip_messages("the caller's own INVITE", invites)
    sent_raw = False
    if presentation.raw_name is not None:
        # SIPp's own trace of what it sent, as bytes: the display name went out as it was written.
        sent_raw = (
            b'From: "' + presentation.display_bytes(identity) + b'" <sip:' in caller.message_file.read_bytes()
        )
    return HuntedCall(hunt, control, carriers, sent_raw_name=sent_raw, reinvited=reinvited)


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


RAW_NAMES = [
    Presentation(
        "latin-1-display-name", "Jérôme", "national", "national", everywhere=False, raw_name="latin-1"
    ),
    Presentation(
        "long-display-name-cut-in-a-character",
        "Éléonore",
        "national",
        "national",
        everywhere=False,
        raw_name="cut-utf-8",
        caller_hangs_up=False,
    ),
]


@pytest.mark.parametrize("presentation", RAW_NAMES, ids=[p.case for p in RAW_NAMES])
async def test_a_display_name_that_is_not_utf8_leaves_no_trace(
    presentation: Presentation,
    identities: IdentityPool,
    hunting: Hunting,
    sqlite_roster: HuntedRoster,
) -> None:
    """A From display name in Latin-1, or cut in the middle of a UTF-8 character, sent as those very bytes:
    neither the name nor the number reaches any Asterisk file (res_pjsip, parsing such a name, logged a
    WARNING with both), the service's logs, the roster or the listener's phone."""
    identity = identities.draw(presentation.first_name)
    call = await hunted_call(presentation, identity, hunting, sqlite_roster)
    assert call.sent_raw_name, "SIPp did not send the display name's bytes unchanged"
    assert_no_leak(call)


async def test_a_hostile_carrier_reaches_nothing_the_service_receives_or_can_read(
    identities: IdentityPool, hunting: Hunting, sqlite_roster: HuntedRoster
) -> None:
    """The number in the Call-ID and in ;isub= of the Request-URI, a PAI, a STIR/SHAKEN Identity header whose
    PASSporT carries the number, the same headers in a re-INVITE during the call: no byte Asterisk sends
    the service (REST and WebSocket, tapped on the wire), no ARI read of the service's own channels (the
    caller's and the listener's: their JSON, their SIP headers, Call-ID and URIs, BRIDGEPVTCALLID) holds
    the number, the name, the Call-ID or those parameters, nor does any log or file. The caller is served:
    the parameters do not make the line's number unknown."""
    presentation = Presentation(
        "hostile-carrier",
        "Aurélien",
        "international",
        "international",
        everywhere=False,
        hostile=True,
        caller_hangs_up=False,
    )
    identity = identities.draw(presentation.first_name)
    call = await hunted_call(presentation, identity, hunting, sqlite_roster)
    assert call.reinvited, "the caller's re-INVITE was not answered during the call"
    assert_no_leak(call)


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
        "sip:" + quote(identity.spaced_international, safe="") + "@x",
    ]
    # Base64 and base64url, at each byte alignment, of the number inside a JSON payload and of the name.
    for lead in ("", "x", "xy"):
        for raw in (
            f'{lead}{{"orig":{{"tn":"{identity.international[1:]}"}}}}'.encode(),
            f"{lead}{identity.name}".encode(),
            f"{lead}{identity.name}".encode("latin-1"),
        ):
            samples += [base64.b64encode(raw).decode(), _b64url(raw)]
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
    carrier = HostileCarrier.of(identity)
    marked = Needles(identity, carrier.needles())
    found = all(bool(LeakHunt(marked).text("c", f"x {value} y")) for value in carrier.needles().values())
    assert found, "a carrier's Call-ID or Request-URI parameter was missed"
    report = LeakHunt(marked)
    report.text("call-id", f"Call-ID: {carrier.call_id}")
    assert carrier.token not in report.report(), "the report holds the carrier's Call-ID"
