"""The FastAGI server, spoken to over real TCP the way Asterisk does.

Every identity here is fictitious (06 39 98 and 01 99 00 are ARCEP's ranges for fiction); the logs are
checked never to hold any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from helpline_pbx.agi import AgiRequest, AgiServer

CALLER_NUMBER = "0639981234"
CALLER_NAME = "Camille Exemple"
DNID = "0199001234"
RDNIS = "0639981111"
IDENTITIES = (CALLER_NUMBER, "39981234", CALLER_NAME, "Camille", DNID, RDNIS)
UNIQUEID = "1730800000.42"
WAIT = 5.0  # bounds every await on the client side: a broken server fails the test instead of hanging it


def asterisk_environment(**overrides: str) -> dict[str, str]:
    """What Asterisk 22 sends for AGI(agi://127.0.0.1:4573/screen,first,second)."""
    env = {
        "agi_network": "yes",
        "agi_network_script": "screen",
        "agi_request": "agi://127.0.0.1:4573/screen",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "fr",
        "agi_type": "PJSIP",
        "agi_uniqueid": UNIQUEID,
        "agi_version": "22.10.1",
        "agi_callerid": CALLER_NUMBER,
        "agi_calleridname": CALLER_NAME,
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": DNID,
        "agi_rdnis": RDNIS,
        "agi_context": "from-trunk",
        "agi_extension": "s",
        "agi_priority": "2",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140234",
        "agi_arg_1": "first",
        "agi_arg_2": "second",
    }
    env.update(overrides)
    return env


def encode_environment(env: Mapping[str, str]) -> bytes:
    return "".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n"


class Asterisk:
    """The Asterisk side of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_environment(self, env: Mapping[str, str] | None = None) -> None:
        await self.send(encode_environment(asterisk_environment() if env is None else env))

    async def command(self) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), WAIT)

    async def reply(self, line: str) -> None:
        await self.send(line.encode() + b"\n")

    async def rest(self) -> bytes:
        """Everything the server still sends, up to its closing the connection."""
        return await asyncio.wait_for(self.reader.read(), WAIT)

    async def hang_up_our_side(self) -> None:
        self.writer.write_eof()
        await self.writer.drain()


@contextlib.asynccontextmanager
async def connect(server: AgiServer) -> AsyncIterator[Asterisk]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        yield Asterisk(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def running(handler: Any, **options: Any) -> AsyncIterator[AgiServer]:
    server = AgiServer(handler, port=0, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def assert_no_identity(logs: list[dict[str, Any]]) -> None:
    assert logs, "nothing was logged: the privacy check would prove nothing"
    text = repr(logs)
    for identity in IDENTITIES:
        assert identity not in text


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


class Recorder:
    """A handler that records its requests and answers with fixed variables."""

    def __init__(self, variables: Mapping[str, str] | None = None) -> None:
        self.requests: list[AgiRequest] = []
        self.variables = {"HELPLINE_TOKEN": "k20241027-0123abcd"} if variables is None else variables

    def __call__(self, request: AgiRequest) -> Mapping[str, str]:
        self.requests.append(request)
        return self.variables


async def test_sets_the_handlers_variables_and_closes() -> None:
    handler = Recorder({"HELPLINE_TOKEN": "k20241027-0123abcd", "HELPLINE_NOTE": 'say "hi" \\ bye'})
    with capture_logs() as logs:
        async with running(handler) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert await asterisk.command() == b'SET VARIABLE HELPLINE_TOKEN "k20241027-0123abcd"\n'
            await asterisk.reply("200 result=1")
            assert await asterisk.command() == b'SET VARIABLE HELPLINE_NOTE "say \\"hi\\" \\\\ bye"\n'
            await asterisk.reply("200 result=1")
            assert await asterisk.rest() == b""

    [request] = handler.requests
    assert request.path == "/screen"
    assert request.caller_number == CALLER_NUMBER
    assert request.get("calleridname") == CALLER_NAME
    assert request.get("agi_accountcode") == ""
    assert request.uniqueid == UNIQUEID
    assert request.channel == "PJSIP/trunk-00000001"
    assert request.args == ("first", "second")
    [served] = events(logs, "agi.served")
    assert served == {
        "event": "agi.served",
        "log_level": "info",
        "path": "/screen",
        "uniqueid": UNIQUEID,
        "variables": 2,
    }
    assert_no_identity(logs)


async def test_coroutine_handlers_are_awaited() -> None:
    async def handler(request: AgiRequest) -> Mapping[str, str]:
        await asyncio.sleep(0)
        return {"HELPLINE_SCREEN": "barred" if request.caller_number else "ok"}

    async with running(handler) as server, connect(server) as asterisk:
        await asterisk.send_environment()
        assert await asterisk.command() == b'SET VARIABLE HELPLINE_SCREEN "barred"\n'
        await asterisk.reply("200 result=1")
        assert await asterisk.rest() == b""


async def test_an_empty_answer_sets_nothing() -> None:
    with capture_logs() as logs:
        async with running(Recorder({})) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert await asterisk.rest() == b""
    assert events(logs, "agi.served")[0]["variables"] == 0


async def test_conversations_run_concurrently() -> None:
    arrived: list[str] = []
    both_here = asyncio.Event()

    async def handler(request: AgiRequest) -> Mapping[str, str]:
        arrived.append(request.uniqueid or "")
        if len(arrived) == 2:
            both_here.set()
        await both_here.wait()  # a serial server would never get here for the first caller
        return {"ORDER": str(len(arrived))}

    async with running(handler) as server, connect(server) as first, connect(server) as second:
        await first.send_environment(asterisk_environment(agi_uniqueid="1730800000.1"))
        await second.send_environment(asterisk_environment(agi_uniqueid="1730800000.2"))
        for asterisk in (first, second):
            assert await asterisk.command() == b'SET VARIABLE ORDER "2"\n'
            await asterisk.reply("200 result=1")
            assert await asterisk.rest() == b""


async def test_handler_exception_is_logged_without_the_environment_and_the_server_goes_on() -> None:
    calls = 0

    def handler(request: AgiRequest) -> Mapping[str, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError(f"cannot screen {request.caller_number} ({request.get('calleridname')})")
        return {"HELPLINE_TOKEN": "k20241027-0123abcd"}

    with capture_logs() as logs:
        async with running(handler) as server:
            async with connect(server) as asterisk:
                await asterisk.send_environment()
                assert await asterisk.rest() == b""  # nothing set: the dialplan carries on without a token
            async with connect(server) as asterisk:
                await asterisk.send_environment()
                assert (await asterisk.command()).startswith(b"SET VARIABLE HELPLINE_TOKEN")
                await asterisk.reply("200 result=1")
                assert await asterisk.rest() == b""

    [failed] = events(logs, "agi.failed")
    assert failed["reason"] == "handler_error"
    assert failed["error"] == "RuntimeError"
    assert failed["uniqueid"] == UNIQUEID
    assert "exc_info" not in failed
    assert len(events(logs, "agi.served")) == 1
    assert_no_identity(logs)


@pytest.mark.parametrize(
    "variables",
    [
        {"GOOD": "1", "BAD NAME": "x"},
        {"GOOD": "1", "INJECTED": 'x"\nEXEC Dial PJSIP/elsewhere'},
        {"GOOD": "1", "NUL": "a\x00b"},
        {"GOOD": "1", "LONG": "x" * 5000},
        {"GOOD": "1", "NOT_TEXT": 42},
    ],
)
async def test_invalid_variables_set_nothing_at_all(variables: Mapping[str, Any]) -> None:
    with capture_logs() as logs:
        async with running(Recorder(variables)) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert await asterisk.rest() == b""
    assert events(logs, "agi.failed")[0]["reason"] == "invalid_variable"


async def test_a_handler_answering_something_else_than_a_mapping_fails_cleanly() -> None:
    with capture_logs() as logs:
        async with running(lambda _request: ["HELPLINE_TOKEN"]) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert await asterisk.rest() == b""
    assert events(logs, "agi.failed")[0]["reason"] == "handler_error"


async def test_a_stalled_handler_is_abandoned() -> None:
    never = asyncio.Event()

    async def handler(_request: AgiRequest) -> Mapping[str, str]:
        await never.wait()
        return {}

    with capture_logs() as logs:
        async with running(handler, handler_timeout=0.05) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert await asterisk.rest() == b""
    assert events(logs, "agi.failed")[0]["reason"] == "handler_timeout"
    assert_no_identity(logs)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET /screen HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "malformed_environment"),
        (b"\x00\xff\xfe\x80 binary\n\n", "malformed_environment"),
        (b"\n", "malformed_environment"),
        (b"agi_network: yes\nnot an environment line\n\n", "malformed_environment"),
        (b"agi_network: yes\nAGI_CALLERID: " + CALLER_NUMBER.encode() + b"\n\n", "malformed_environment"),
        (b"agi_network: yes\n" * 2 + b"\n", "malformed_environment"),
        (b"".join(b"agi_arg_%d: x\n" % n for n in range(1, 301)) + b"\n", "malformed_environment"),
        (b"agi_callerid: " + CALLER_NUMBER.encode() + b"x" * 10_000 + b"\n\n", "line_too_long"),
    ],
)
async def test_garbage_is_refused_without_echoing_it(data: bytes, reason: str) -> None:
    handler = Recorder()
    with capture_logs() as logs:
        async with running(handler) as server:
            async with connect(server) as asterisk:
                await asterisk.send(data)
                assert await asterisk.rest() == b""
            async with connect(server) as asterisk:  # still serving
                await asterisk.send_environment()
                assert (await asterisk.command()).startswith(b"SET VARIABLE")
                await asterisk.reply("200 result=1")
                assert await asterisk.rest() == b""

    assert len(handler.requests) == 1
    assert events(logs, "agi.failed")[0]["reason"] == reason
    assert_no_identity(logs)


async def test_a_silent_client_is_dropped() -> None:
    handler = Recorder()
    with capture_logs() as logs:
        async with running(handler, read_timeout=0.05) as server, connect(server) as asterisk:
            assert await asterisk.rest() == b""
    assert handler.requests == []
    [failed] = events(logs, "agi.failed")
    assert failed["reason"] == "timeout"
    assert failed["uniqueid"] is None


async def test_an_environment_that_never_ends_is_dropped() -> None:
    env = encode_environment(asterisk_environment())[:-1]  # no empty line
    with capture_logs() as logs:
        async with running(Recorder(), read_timeout=0.05) as server, connect(server) as asterisk:
            await asterisk.send(env)
            assert await asterisk.rest() == b""
    assert events(logs, "agi.failed")[0]["reason"] == "timeout"
    assert_no_identity(logs)


async def test_a_client_that_never_answers_a_command_is_dropped() -> None:
    with capture_logs() as logs:
        async with running(Recorder(), read_timeout=0.05) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert (await asterisk.command()).startswith(b"SET VARIABLE")
            assert await asterisk.rest() == b""
    [failed] = events(logs, "agi.failed")
    assert failed["reason"] == "timeout"
    assert failed["uniqueid"] == UNIQUEID


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("HANGUP", "hangup"),
        ("511 Command Not Permitted on a dead channel or intercepted by a hook", "hangup"),
        ("200 result=-1", "hangup"),
        ("510 Invalid or unknown command", "command_rejected"),
        (
            "520-Invalid command syntax.  Proper usage follows:\n"
            "Usage: SET VARIABLE <variablename> <value>\n"
            "520 End of proper usage.",
            "command_rejected",
        ),
        ("what?", "malformed_reply"),
        ("200 ok", "malformed_reply"),
    ],
)
async def test_hang_up_or_refusal_mid_way_stops_the_conversation(reply: str, reason: str) -> None:
    handler = Recorder({"FIRST": "1", "SECOND": "2"})
    with capture_logs() as logs:
        async with running(handler) as server, connect(server) as asterisk:
            await asterisk.send_environment()
            assert await asterisk.command() == b'SET VARIABLE FIRST "1"\n'
            await asterisk.reply(reply)
            assert await asterisk.rest() == b""  # SECOND never sent
    [failed] = events(logs, "agi.failed")
    assert failed["reason"] == reason
    assert failed["path"] == "/screen"
    assert_no_identity(logs)


async def test_the_connection_closing_mid_way_is_handled() -> None:
    with capture_logs() as logs:
        async with running(Recorder({"FIRST": "1", "SECOND": "2"})) as server:
            async with connect(server) as asterisk:
                await asterisk.send_environment()
                await asterisk.command()
                await asterisk.hang_up_our_side()
                assert await asterisk.rest() == b""
            async with connect(server) as asterisk:
                await asterisk.send(encode_environment(asterisk_environment())[:200])
                await asterisk.hang_up_our_side()
                assert await asterisk.rest() == b""
    assert [entry["reason"] for entry in events(logs, "agi.failed")] == ["connection_lost"] * 2
    assert_no_identity(logs)


async def test_close_cuts_conversations_in_progress() -> None:
    entered = asyncio.Event()
    never = asyncio.Event()

    async def handler(_request: AgiRequest) -> Mapping[str, str]:
        entered.set()
        await never.wait()
        return {}

    server = AgiServer(handler, port=0, handler_timeout=60)
    await server.start()
    async with connect(server) as asterisk:
        await asterisk.send_environment()
        await asyncio.wait_for(entered.wait(), WAIT)
        await asyncio.wait_for(server.close(), WAIT)
        assert await asterisk.rest() == b""
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_start_twice_is_refused() -> None:
    async with running(Recorder()) as server:
        assert server.port != 0
        with pytest.raises(RuntimeError, match="already started"):
            await server.start()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org", ""])  # noqa: S104
def test_refuses_non_loopback_hosts_unless_allowed(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        AgiServer(Recorder(), host=host)
    assert AgiServer(Recorder(), host=host, allow_remote=True).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_accepts_loopback_hosts(host: str) -> None:
    assert AgiServer(Recorder(), host=host).port == 4573


def test_request_repr_shows_no_identity() -> None:
    request = AgiRequest.from_environment(asterisk_environment())
    text = repr(request)
    assert text == f"AgiRequest(path='/screen', uniqueid='{UNIQUEID}', env_keys=24)"
    assert str(request) == text


@pytest.mark.parametrize(
    ("overrides", "path", "query"),
    [
        ({"agi_network_script": "screen?line=main"}, "/screen", "line=main"),
        ({"agi_network_script": "/screen"}, "/screen", ""),
        ({"agi_network_script": ""}, "/", ""),
    ],
)
def test_request_path_and_query(overrides: dict[str, str], path: str, query: str) -> None:
    request = AgiRequest.from_environment(asterisk_environment(**overrides))
    assert (request.path, request.query) == (path, query)


def test_request_path_from_the_url_when_asterisk_sends_no_script() -> None:
    env = asterisk_environment(agi_request="agi://127.0.0.1:4573/screen")
    del env["agi_network_script"]
    assert AgiRequest.from_environment(env).path == "/screen"


async def test_paths_and_ids_that_could_hold_a_number_are_not_logged() -> None:
    env = asterisk_environment(agi_network_script=f"screen/{CALLER_NUMBER}", agi_uniqueid=CALLER_NUMBER)
    handler = Recorder({})
    with capture_logs() as logs:
        async with running(handler) as server, connect(server) as asterisk:
            await asterisk.send_environment(env)
            assert await asterisk.rest() == b""
    assert handler.requests[0].path == f"/screen/{CALLER_NUMBER}"
    [served] = events(logs, "agi.served")
    assert (served["path"], served["uniqueid"]) == ("[unlisted]", None)
    assert_no_identity(logs)
    assert CALLER_NUMBER not in repr(handler.requests[0])
