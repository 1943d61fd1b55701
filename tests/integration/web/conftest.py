"""A console served by aiohttp's test server on a real, migrated SQLite roster, with a real (idle) core
behind its board: what each role may see and do is tested through HTTP, as a browser would."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.pg import run_outside_loop

from helpline_pbx.console.accounts import Accounts
from helpline_pbx.console.live import LiveBoard
from helpline_pbx.console.metrics import Metrics, Sources
from helpline_pbx.console.pages import PARTS_KEY, Parts, console_routes
from helpline_pbx.console.server import build_app
from helpline_pbx.console.statistics import Thresholds
from helpline_pbx.core import CallQueue, Policy
from helpline_pbx.lines.repository import Lines
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.database import make_engine, upgrade
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot
from helpline_pbx.roster.supervisions import Supervisions
from helpline_pbx.switchboard.calls.legs import LegBook

BOARD_TOKEN = "box-token-for-tests"


@pytest.fixture(scope="session")
def console_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-template") / "roster.db"
    run_outside_loop(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@dataclass
class Console:
    server: TestServer
    engine: AsyncEngine
    accounts: Accounts
    roster: Roster
    queue: CallQueue
    book: LegBook
    live: LiveBoard
    metrics: Metrics
    on_roster: dict[str, ListenerSnapshot]

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def client(self) -> aiohttp.ClientSession:
        # unsafe: keep cookies for an IP address host (the test server's 127.0.0.1).
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def account(self, username: str, role: str, listener: str | None = None) -> str:
        """An account whose one-time password has been changed: returns its password."""
        _, once = await self.accounts.add(username, role, listener=listener)
        async with self.client() as http:
            await sign_in(self, http, username, once)
            page = await (await http.get(self.url("/password"))).text()
            password = f"{username}-long-password"
            response = await http.post(
                self.url("/password"),
                data={"csrf": csrf_of(page), "current": once, "new": password, "again": password},
                allow_redirects=False,
            )
            assert response.status == 303, await response.text()
        return password


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def sign_in(
    console: Console, http: aiohttp.ClientSession, username: str, password: str
) -> aiohttp.ClientResponse:
    page = await (await http.get(console.url("/login"))).text()
    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
    assert nonce
    return await http.post(
        console.url("/login"),
        data={"nonce": nonce.group(1), "username": username, "password": password},
        allow_redirects=False,
    )


@pytest.fixture
async def console(console_template: Path, tmp_path: Path) -> AsyncIterator[Console]:
    path = tmp_path / "roster.db"
    shutil.copyfile(console_template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    roster = Roster(engine)
    queue = CallQueue(Policy())
    book = LegBook()
    # What the switchboard's roster sync would hold: tests put listeners here.
    on_roster: dict[str, ListenerSnapshot] = {}
    live = LiveBoard(
        queue=queue,
        book=book,
        lines=lambda: [],
        listeners=lambda: on_roster,
        engine=engine,
        defaults=Thresholds(30, 5),
    )
    metrics = Metrics(
        Sources(
            calls=queue.calls,
            listeners=queue.listeners,
            thresholds=lambda: {},
            ari_connected=lambda: True,
            ari_connections=lambda: 1,
            lane_failures=lambda: 0,
            roster_write_retries=lambda: 0,
        )
    )
    accounts = Accounts(engine)
    app = build_app(accounts, console_routes(), secure=False)
    app[PARTS_KEY] = Parts(
        live=live,
        metrics=metrics,
        roster=roster,
        debriefs=Debriefs(engine),
        supervisions=Supervisions(engine),
        callers=Callers(engine),
        lines=Lines(engine),
        board_token=BOARD_TOKEN,
        bar_days=30,
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Console(server, engine, accounts, roster, queue, book, live, metrics, on_roster)
    finally:
        await server.close()
        await engine.dispose()
