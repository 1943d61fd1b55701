"""The console's server: HTTPS with a generated certificate, Secure cookies, plain HTTP refused off
loopback, sessions that expire, and line edits through the lines' own operations."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError
from tests.integration.web.conftest import Console, csrf_of, sign_in

from helpline_pbx.console.accounts import SESSION_IDLE, SESSION_MAX
from helpline_pbx.console.pages import PARTS_KEY, console_routes
from helpline_pbx.console.server import ConsoleServer, build_app, ensure_certificate, tls_context
from helpline_pbx.settings import Settings


def _settings(**kw: object) -> Settings:
    return Settings(ari_password="not-the-sample-password", **kw)  # type: ignore[arg-type]


def test_plain_http_off_loopback_is_refused_unless_a_proxy_terminates_tls() -> None:
    with pytest.raises(ValidationError, match="plain HTTP"):
        _settings(console_host="192.0.2.10", console_tls="off")
    assert _settings(console_host="192.0.2.10").console_https()
    assert not _settings().console_https()
    assert not _settings(
        console_host="192.0.2.10", console_tls="off", console_allow_plain_http=True
    ).console_https()


async def test_https_with_a_generated_certificate_and_a_secure_cookie(
    console: Console, tmp_path: Path
) -> None:
    cert, key = tmp_path / "console" / "cert.pem", tmp_path / "console" / "key.pem"
    ensure_certificate(cert, key, "127.0.0.1")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    app = build_app(console.accounts, console_routes(), secure=True)
    app[PARTS_KEY] = console.server.app[PARTS_KEY]
    server = ConsoleServer(app, "127.0.0.1", 0, tls_context(cert, key))
    url = await server.start(tmp_path / "console")
    try:
        assert url.startswith("https://127.0.0.1:")
        assert (tmp_path / "console" / "url").read_text().strip() == url
        password = await console.account("tls", "supervisor")
        trust = ssl.create_default_context(cafile=str(cert))
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(ssl=trust)) as http:
            page = await (await http.get(f"{url}/login")).text()
            nonce = page.split('name="nonce" value="', 1)[1].split('"', 1)[0]
            signed = await http.post(
                f"{url}/login",
                data={"nonce": nonce, "username": "tls", "password": password},
                allow_redirects=False,
            )
            assert signed.status == 303
            assert signed.cookies["helpline_session"]["secure"] is True
            board = await http.get(f"{url}/")
            assert board.status == 200
            assert board.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        await server.close()


async def test_an_idle_session_expires_and_none_outlives_its_maximum(console: Console) -> None:
    password = await console.account("idle", "supervisor")
    start = datetime.now(UTC)
    opened = await console.accounts.sign_in("idle", password, now=start)
    assert opened.secret is not None
    assert await console.accounts.session(opened.secret, now=start + SESSION_IDLE - timedelta(seconds=5))
    assert (
        await console.accounts.session(opened.secret, now=start + 2 * SESSION_IDLE + timedelta(seconds=1))
        is None
    )
    kept = await console.accounts.sign_in("idle", password, now=start)
    assert kept.secret is not None
    moment = start
    while moment < start + SESSION_MAX - SESSION_IDLE:
        moment += SESSION_IDLE - timedelta(minutes=1)
        assert await console.accounts.session(kept.secret, now=moment), moment
    assert await console.accounts.session(kept.secret, now=start + SESSION_MAX + timedelta(seconds=1)) is None


async def test_a_coordinator_edits_a_lines_hours_and_thresholds_as_the_cli_would(console: Console) -> None:
    lines = console.server.app[PARTS_KEY].lines
    await lines.add("jeunes", label="Jeunes", numbers=["0800111222"])
    password = await console.account("lines", "coordinator")
    async with console.client() as http:
        await sign_in(console, http, "lines", password)
        page = await (await http.get(console.url("/lines"))).text()
        saved = await http.post(
            console.url("/lines/jeunes"),
            data={
                "csrf": csrf_of(page),
                "hours": "mon-fri 18:00-23:00",
                "service_level": "20",
                "short_abandon": "",
                "add_number": "0800333444",
                "closed_on": "2026-12-25",
                "support": "psy social",
            },
            allow_redirects=False,
        )
        assert "done=" in saved.headers["Location"], saved.headers["Location"]
        refused = await http.post(
            console.url("/lines/jeunes"),
            data={"csrf": csrf_of(page), "service_level": "0"},
            allow_redirects=False,
        )
        # The lines' own validator speaks: the same message as `lines edit`.
        assert "error=" in refused.headers["Location"]
    line = await lines.get("jeunes")
    assert line.service_level == 20
    assert line.short_abandon is None
    assert set(line.numbers) == {"0800111222", "0800333444"}
    assert "18:00-23:00" in line.hours.weekly_text()
    assert "2026-12-25 closed" in line.hours.exceptions_text()
    assert list(line.support) == ["psy", "social"]
    assert (await console.accounts.audit_entries())[0].action == "line_edited"


async def test_statistics_and_their_csv_are_for_staff_only(console: Console) -> None:
    listener = await console.roster.add_listener("Eden", "eden", "volunteer")
    passwords = {
        "supervisor": await console.account("stats-s", "supervisor"),
        "listener": await console.account("stats-l", "listener", listener=listener.id),
    }
    for role, user in (("supervisor", "stats-s"), ("listener", "stats-l")):
        async with console.client() as http:
            await sign_in(console, http, user, passwords[role])
            page = await http.get(console.url("/stats"))
            csv = await http.get(console.url("/stats.csv?table=summary"))
            expected = 200 if role == "supervisor" else 403
            assert (page.status, csv.status) == (expected, expected)
            if role == "supervisor":
                text = await csv.text()
                assert text.startswith("figure,label,value,unit,definition")
                assert "answered ÷ (offered − short abandons)" in text
                assert csv.headers["Content-Disposition"].startswith("attachment;")
                bad = await http.get(console.url("/stats?start=2026-13-01"))
                assert bad.status == 400


async def test_a_database_that_does_not_answer_gives_a_clear_page_not_a_crash(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestServer

    from helpline_pbx.console.accounts import Accounts
    from helpline_pbx.roster.database import make_engine

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'roster.db'}")
    app = build_app(Accounts(engine), console_routes(), secure=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(server.make_url("/login"))).text()
            nonce = page.split('name="nonce" value="', 1)[1].split('"', 1)[0]
            response = await http.post(
                server.make_url("/login"), data={"nonce": nonce, "username": "x", "password": "y"}
            )
            assert response.status == 503
            assert "calls go on" in await response.text()
    finally:
        await server.close()
        await engine.dispose()
