"""The AMI session keeps only the headers asked for; the auth-failure file is private; the watcher logs."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpline_pbx.ami import AmiError, AmiSession
from helpline_pbx.auth_log import AuthFailureFile, AuthFailureWatcher

EVENT = (
    b"Event: ChallengeResponseFailed\r\nPrivilege: security,all\r\nService: PJSIP\r\n"
    b"AccountID: dominique-a1b2c3\r\nSessionID: 0639981234-1@192.0.2.7\r\n"
    b"RemoteAddress: IPV4/UDP/192.0.2.7/5062\r\nChallenge: 1/abc\r\n\r\n"
)


class FakeManager:
    """A TCP server speaking just enough AMI; records what the client sent."""

    def __init__(self, reply: bytes, events: bytes) -> None:
        self.reply = reply
        self.events = events
        self.received = b""
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        self.received = await reader.readuntil(b"\r\n\r\n")
        writer.write(self.reply + self.events)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> FakeManager:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def manager() -> AsyncIterator[FakeManager]:
    async with FakeManager(b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n", EVENT) as fake:
        yield fake


async def test_the_session_logs_in_for_security_events_and_keeps_only_asked_headers(
    manager: FakeManager,
) -> None:
    async with AmiSession("127.0.0.1", manager.port, "helpline", "s3cret-0123456789") as ami:
        events = ami.events({"AccountID", "RemoteAddress"})
        first = await anext(events)
        with pytest.raises(ConnectionError):
            await anext(events)
    assert b"Action: Login\r\nUsername: helpline\r\nSecret: s3cret-0123456789\r\nEvents: security" in (
        manager.received
    )
    # The Call-ID (SessionID) and the nonce were dropped as they were read.
    assert first == {
        "Event": "ChallengeResponseFailed",
        "AccountID": "dominique-a1b2c3",
        "RemoteAddress": "IPV4/UDP/192.0.2.7/5062",
    }


async def test_a_refused_login_is_an_error() -> None:
    async with FakeManager(b"Response: Error\r\nMessage: Authentication failed\r\n\r\n", b"") as fake:
        with pytest.raises(AmiError, match="refused"):
            async with AmiSession("127.0.0.1", fake.port, "helpline", "wrong-0123456789abc"):
                pass


def test_the_file_is_created_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = AuthFailureFile(tmp_path / "log" / "sip-auth-failures.log")
        out.append("one\n")
        out.append("two\n")
    finally:
        os.umask(old)
    assert out.path.read_text() == "one\ntwo\n"
    assert stat.S_IMODE(out.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.path.parent.stat().st_mode) == 0o700


async def test_the_watcher_writes_a_line_per_failure_and_nothing_of_the_session_id(
    manager: FakeManager, tmp_path: Path
) -> None:
    written = asyncio.Event()

    class Signalling(AuthFailureFile):
        def append(self, line: str) -> None:
            super().append(line)
            written.set()

    out = Signalling(tmp_path / "auth.log")

    async def endpoints() -> frozenset[str]:
        return frozenset({"dominique-a1b2c3"})

    watcher = AuthFailureWatcher(
        lambda: AmiSession("127.0.0.1", manager.port, "helpline", "s3cret-0123456789"), endpoints, out
    )
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(5):
            await written.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    text = out.path.read_text()
    assert " remote=192.0.2.7 port=5062 endpoint=dominique-a1b2c3\n" in text
    assert "0639981234" not in text


def test_the_service_reads_failures_only_when_asterisk_has_an_ami_password_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpline_pbx.app import auth_failure_watcher
    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.roster.repository import Roster
    from helpline_pbx.settings import Settings

    for name in list(os.environ):
        if name.startswith("HELPLINE_"):
            monkeypatch.delenv(name)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ari-password").write_text("generated-secret-0123456789abcdef")
    settings = Settings(state_dir=tmp_path)
    roster = Roster(make_engine(f"sqlite+aiosqlite:///{tmp_path}/roster.db"))
    assert auth_failure_watcher(settings, roster) is None
    (secrets / "ami-password").write_text("generated-secret-fedcba9876543210")
    watcher = auth_failure_watcher(settings, roster)
    assert watcher is not None
    # Both default to the state folder, as scripts/asterisk.sh lays it out.
    assert settings.ami_password_file == secrets / "ami-password"
    assert settings.auth_failure_log == tmp_path / "log" / "sip-auth-failures.log"
