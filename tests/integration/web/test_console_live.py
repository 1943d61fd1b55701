"""The live board reaches an open page by itself: a change in the core is pushed within a second."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from tests.integration.web.conftest import Console, sign_in

from helpline_pbx.core.events import CallerArrived


async def _next_board(reader: aiohttp.StreamReader) -> dict[str, Any]:
    """The next board event of the stream (keep-alive comments skipped)."""
    while True:
        text = (await reader.readuntil(b"\n\n")).decode()
        if text.startswith("event: board"):
            board: dict[str, Any] = json.loads(text.split("data: ", 1)[1])
            return board


async def test_a_new_caller_is_pushed_to_the_open_board_within_a_second(console: Console) -> None:
    password = await console.account("watcher", "supervisor")
    feed = asyncio.create_task(console.live.run())
    try:
        async with console.client() as http:
            await sign_in(console, http, "watcher", password)
            async with http.get(console.url("/board/events")) as response:
                assert response.headers["Content-Type"] == "text/event-stream"
                first = await asyncio.wait_for(_next_board(response.content), 5)
                assert first["calls"] == []
                call = console.book.open_call("chan-1", "0800123456", "Écoute")
                event = CallerArrived(call_id=call.call_id, line="0800123456")
                changed_at = time.monotonic()
                console.live.on_decision(event, console.queue.handle(event, time.time()))
                while True:
                    board = await asyncio.wait_for(_next_board(response.content), 1.0)
                    if board["calls"]:
                        break
                pushed_after = time.monotonic() - changed_at
        assert pushed_after < 1.0
        assert board["calls"][0]["code"] == call.code
        assert board["total"]["waiting"] == 1
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)


async def test_the_board_page_carries_the_current_board(console: Console) -> None:
    password = await console.account("reader", "supervisor")
    call = console.book.open_call("chan-2", "0800123456", "Écoute")
    event = CallerArrived(call_id=call.call_id, line="0800123456")
    console.live.on_decision(event, console.queue.handle(event, time.time()))
    async with console.client() as http:
        await sign_in(console, http, "reader", password)
        page = await (await http.get(console.url("/"))).text()
    initial = page.split('<script type="application/json" id="initial-board">', 1)[1].split("</script>", 1)[0]
    board = json.loads(initial)
    assert [c["code"] for c in board["calls"]] == [call.code]
