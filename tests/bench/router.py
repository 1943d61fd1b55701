"""The bench's bare ARI router: the least an ARI application must do to put a caller through to a phone,
the floor the line's own time-to-ring is compared with. No database, no policy, no queue.

StasisStart of a caller -> originate to the phone (an id we choose) into the same application; StasisStart
of that leg (the phone answered) -> answer the caller, bridge both; either leaving -> hang up the other.

    python -m tests.bench.router --ari-url URL --user U --password-file F --app APP --endpoint PJSIP/x

Runs until SIGTERM or SIGINT. Prints "ready" on stdout once its WebSocket is connected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp


class Router:
    def __init__(self, session: aiohttp.ClientSession, base: str, app: str, endpoint: str) -> None:
        self.session = session
        self.base = base
        self.app = app
        self.endpoint = endpoint
        # caller channel id <-> phone channel id, both ways.
        self.peer: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def _request(self, method: str, path: str, **params: str) -> None:
        async with self.session.request(method, f"{self.base}{path}", params=params) as reply:
            await reply.read()

    def spawn(self, work: Any) -> None:
        # The WebSocket reader never waits on a REST request.
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        channel = event.get("channel", {}).get("id")
        if kind == "StasisStart" and channel:
            if event.get("args", [])[:1] == ["dialed"]:
                self.spawn(self._bridge(event["args"][1], channel))
            else:
                self.spawn(self._dial(channel))
        elif kind == "StasisEnd" and channel:
            other = self.peer.pop(channel, None)
            if other is not None:
                self.peer.pop(other, None)
                self.spawn(self._request("DELETE", f"/channels/{other}"))

    async def _dial(self, caller: str) -> None:
        phone = f"bench-{uuid.uuid4().hex}"
        self.peer[caller], self.peer[phone] = phone, caller
        await self._request(
            "POST",
            f"/channels/{phone}",
            endpoint=self.endpoint,
            app=self.app,
            appArgs=f"dialed,{caller}",
            timeout="30",
        )

    async def _bridge(self, caller: str, phone: str) -> None:
        bridge = f"bench-{uuid.uuid4().hex}"
        await self._request("POST", f"/channels/{caller}/answer")
        await self._request("POST", f"/bridges/{bridge}", type="mixing")
        await self._request("POST", f"/bridges/{bridge}/addChannel", channel=f"{caller},{phone}")


async def serve(ari_url: str, user: str, password: str, app: str, endpoint: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    auth = aiohttp.BasicAuth(user, password)
    ws_url = ari_url.replace("http", "ws", 1) + "/events"
    async with (
        aiohttp.ClientSession(auth=auth) as session,
        session.ws_connect(ws_url, params={"app": app, "subscribeAll": "false"}) as ws,
    ):
        router = Router(session, ari_url, app, endpoint)
        print("ready", flush=True)

        async def read() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    router.on_event(json.loads(message.data))

        reader = asyncio.create_task(read())
        await asyncio.wait([reader, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def main() -> None:
    parser = argparse.ArgumentParser(description="the bench's bare ARI router")
    parser.add_argument("--ari-url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    password = args.password_file.read_text(encoding="utf-8").strip()
    asyncio.run(serve(args.ari_url, args.user, password, args.app, args.endpoint))


if __name__ == "__main__":
    main()
