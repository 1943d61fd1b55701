"""A fake ARI server on 127.0.0.1: records REST requests, scripts replies, serves events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ARI_USER = "svc-ari-login"
ARI_PASSWORD = "not-a-real-secret-42"


@dataclass
class Recorded:
    method: str
    raw_path: str  # as it came over the wire, still percent-encoded, without the query
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_target: str  # path and query exactly as sent


@dataclass
class FakeSocket:
    """One accepted events WebSocket, driven by the test."""

    ws: web.WebSocketResponse
    request: web.Request
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_json(event)

    async def close_cleanly(self) -> None:
        await self.ws.close(code=1000)

    def abort(self) -> None:
        # Drop TCP with no close frame, as a crashed Asterisk would.
        assert self.request.transport is not None
        self.request.transport.abort()


class FakeAri:
    HANG = object()

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: dict[tuple[str, str], tuple[int, Any]] = {}
        self.sockets: asyncio.Queue[FakeSocket] = asyncio.Queue()
        self.socket_count = 0
        self._never = asyncio.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    def reply(self, method: str, raw_path: str, status: int = 200, body: Any = None) -> None:
        """Script the reply to ``method`` on ``/ari`` + ``raw_path`` (encoded, no query)."""
        self.replies[(method, "/ari" + raw_path)] = (status, body)

    def hang(self, method: str, raw_path: str) -> None:
        self.replies[(method, "/ari" + raw_path)] = (0, self.HANG)

    def last(self) -> Recorded:
        assert self.requests, "no request reached the fake server"
        return self.requests[-1]

    async def next_socket(self) -> FakeSocket:
        return await asyncio.wait_for(self.sockets.get(), timeout=5)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path, _, _ = request.raw_path.partition("?")
        if raw_path == "/ari/events" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._events(request)
        self.requests.append(
            Recorded(
                method=request.method,
                raw_path=raw_path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=await request.read(),
                raw_target=request.raw_path,
            )
        )
        status, body = self.replies.get((request.method, raw_path), (204, None))
        if body is self.HANG:
            await self._never.wait()
        if body is None:
            return web.Response(status=status)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="text/html")
        return web.json_response(body, status=status)

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        self.requests.append(
            Recorded(
                method=request.method,
                raw_path="/ari/events",
                query=dict(request.query),
                headers=dict(request.headers),
                body=b"",
                raw_target=request.raw_path,
            )
        )
        ws = web.WebSocketResponse(protocols=("ari",))
        await ws.prepare(request)
        sock = FakeSocket(ws, request)
        self.socket_count += 1
        self.sockets.put_nowait(sock)
        async for _ in ws:
            pass  # the ARI client sends nothing we care about
        sock.ended.set()
        return ws


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_on_loopback(handler: Handler) -> tuple[web.AppRunner, int]:
    """An HTTP server answering every path with `handler`, on a free loopback port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]
