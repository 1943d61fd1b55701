"""The console in a real browser (Debian's Chromium driven by Playwright) against the real service and
Asterisk: a supervisor signs in, sees a SIPp caller arrive on the live board, sees the listener go on call,
reads the statistics with their charts drawn, and signs out. Everything the browser received is searched for
the caller's number and name."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright
from tests.conftest import IN_CI, AsteriskUnderTest
from tests.e2e.artefacts import FICTION_PREFIX, CallerIdentity, LeakHunt, Needles
from tests.e2e.conftest import Sipp, add_listener
from tests.e2e.harness import wait_configured, wait_registered
from tests.e2e.process import ServiceProcess

from helpline_pbx.ari.client import AriClient
from helpline_pbx.roster.repository import Roster

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        message = "Debian's chromium is needed for the console's browser test (make test installs it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    async with async_playwright() as playwright:
        # Root in CI: Chromium's sandbox needs an unprivileged user, so it is turned off for the test only.
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def service(
    asterisk: AsteriskUnderTest, roster: Roster, tmp_path: Path, line: str, app_name: str
) -> AsyncIterator[ServiceProcess]:
    proc = ServiceProcess(
        asterisk,
        database_url=str(roster.engine.url),
        app=app_name,
        did=line,
        workdir=tmp_path / "service",
        extra_env={"HELPLINE_REST_AFTER_CALL": "30"},
    )
    yield proc
    proc.stop()


def _console_url(service: ServiceProcess, app: str) -> str:
    return (service.workdir / f"console-{app}" / "url").read_text().strip()


async def _sign_in_first_time(page: Page, url: str, username: str, once: str, password: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#username", username)
    await page.fill("#password", once)
    await page.click("#sign-in")
    await page.wait_for_url(f"{url}/password")
    await page.fill("#current", once)
    await page.fill("#new", password)
    await page.fill("#again", password)
    await page.click("#save-password")
    await page.wait_for_url(f"{url}/")


async def test_a_supervisor_watches_a_call_arrive_and_be_answered_then_reads_the_charts(
    service: ServiceProcess,
    roster: Roster,
    sipp: Sipp,
    ari: AriClient,
    browser: Browser,
    app_name: str,
    tmp_path: Path,
) -> None:
    shots = tmp_path / "screenshots"
    who = CallerIdentity(
        FICTION_PREFIX + f"{random.SystemRandom().randrange(10_000):04d}", "Maëlle", "Fictifconsole"
    )
    camille = await add_listener(roster, "Camille")
    await service.start()
    await wait_configured(ari, camille.endpoint)
    # The phone rings four seconds before it answers: long enough to see the caller wait on the board.
    phone = sipp.softphone(camille, "listener_answer_delay", pause_ms=4000)
    await wait_registered(ari, camille.endpoint)
    printed = service.cli("accounts", "add", "superviseur", "--role", "supervisor")
    once = re.search(r"one-time password: (\S+)", printed)
    assert once, printed
    url = _console_url(service, app_name)

    context = await browser.new_context()
    page = await context.new_page()
    pushed: list[str] = []
    page.on("console", lambda message: pushed.append(message.text))
    await _sign_in_first_time(page, url, "superviseur", once.group(1), "supervise-the-line-well")
    # Camille is on duty and free before any call.
    await page.wait_for_selector("#listeners tbody tr:has-text('Camille') .state-available", timeout=5000)
    assert await page.locator("#calls tbody tr").count() == 0

    caller = sipp.caller("caller", talk_ms=3000, number=who.national, name=who.name)
    arrived = await service.wait_log("caller_arrived")
    seen_at = time.monotonic()
    # Within 2 s of the service taking the call, pushed to the open page (no reload).
    row = page.locator("#calls tbody tr").first
    await row.wait_for(timeout=2000)
    appeared = time.monotonic() - seen_at
    code = (await row.locator("td").nth(0).inner_text()).strip()
    assert re.fullmatch(r"\d{4}", code), code
    assert arrived["call_id"]
    # Answered: the caller leaves the waiting list and Camille is on that call.
    await page.wait_for_selector("#listeners tbody tr:has-text('Camille') .state-on_call", timeout=15000)
    await page.wait_for_function("document.querySelectorAll('#calls tbody tr').length === 0", timeout=5000)
    on_call_note = await page.locator("#listeners tbody tr:has-text('Camille') td").nth(5).inner_text()
    assert on_call_note == f"call {code}"
    shots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shots / "board-on-call.png"), full_page=True)
    board_html = await page.content()

    assert (await caller.wait_async(60)).exit_code == 0, caller.errors()
    # Resting after the call, with the time left shown; today's figures count the answered call.
    await page.wait_for_selector("#listeners tbody tr:has-text('Camille') .state-resting", timeout=15000)
    await page.wait_for_function(
        "[...document.querySelectorAll('#lines tbody tr')].some(r => r.cells[6].textContent === '1')",
        timeout=10000,
    )

    await page.goto(f"{url}/stats")
    await page.wait_for_selector("body[data-charts-drawn='2']", timeout=10000)
    painted = await page.evaluate(
        """() => [...document.querySelectorAll('canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
            return n; })"""
    )
    assert len(painted) == 2
    assert all(n > 1000 for n in painted), painted
    answered = await page.locator("#figures tr[data-figure='answered'] td").nth(1).inner_text()
    assert answered == "1"
    assert "answered ÷" in await page.locator("#figures").inner_text()
    await page.screenshot(path=str(shots / "statistics.png"), full_page=True)
    stats_html = await page.content()

    # Everything else the browser may fetch: the board's JSON, the CSVs, the metrics.
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        fetched = {}
        for path in ("/api/board", "/metrics", "/listeners", "/bars", "/debriefs", "/supervisions"):
            async with http.get(f"{url}{path}") as response:
                assert response.status == 200, path
                fetched[path] = await response.text()
        for table in ("summary", "daily", "heatmap", "load"):
            async with http.get(f"{url}/stats.csv?table={table}") as response:
                assert response.status == 200
                fetched[f"/stats.csv {table}"] = await response.text()
        async with http.get(f"{url}/board/events") as response:
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
            fetched["/board/events"] = first.decode()
    # The terminal's board, for ops on the box: the same snapshot, read with the box's token.
    terminal = service.cli("board", "--once")
    assert "Camille" in terminal
    assert "resting" in terminal
    fetched["helpline-pbx board"] = terminal
    assert "helpline_calls_total" in fetched["/metrics"]
    assert 'outcome="served"' in fetched["/metrics"]

    await page.goto(f"{url}/")
    await page.click("#logout")
    await page.wait_for_url(re.compile(r".*/login.*"))
    async with aiohttp.ClientSession(cookies=cookies) as http, http.get(f"{url}/api/board") as response:
        assert response.status == 401

    hunt = LeakHunt(Needles(who))
    hunt.text("board page", board_html)
    hunt.text("statistics page", stats_html)
    for where, text in fetched.items():
        hunt.text(where, text)
    for message in pushed:
        hunt.text("browser console", message)
    assert hunt.hits == [], [h.describe() for h in hunt.hits]
    assert len(hunt.searched) >= 12
    phone.stop()
    print(
        f"board showed the caller {appeared * 1000:.0f} ms after the service took the call; screenshots in {shots}"
    )
