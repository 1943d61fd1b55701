"""The ARI events WebSocket: reconnects forever and never waits for its consumer.

Asterisk drops a WebSocket reader that falls ~100 ms behind, and a slow app backs up Stasis
until PJSIP refuses calls. So the reader only parses and ``put_nowait``s into an unbounded
queue; the consumer reads at its own pace. Each time the socket opens a ``Connected`` marker
is queued (the consumer resyncs from REST before handling what follows), and each time it
drops a ``Disconnected`` marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeAlias

import aiohttp
import structlog
from pydantic import SecretStr
from yarl import URL

from helpline_pbx.ari.http import basic_auth_header
from helpline_pbx.ari.models import Event, EventParseError, parse_event

log = structlog.get_logger(__name__)

# A clean close from Asterisk is still a disconnect: it happens on shutdown or module reload.
_NORMAL_CLOSE_CODES = frozenset({1000, 1001})


@dataclass(frozen=True, slots=True)
class Connected:
    """The socket (re)opened; ``connection`` counts openings from 1."""

    connection: int

    @property
    def channel_id(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The socket dropped. ``reason``: "server_closed", "connection_lost" or "stopped"."""

    connection: int
    reason: str

    @property
    def channel_id(self) -> None:
        return None


StreamItem: TypeAlias = Event | Connected | Disconnected


class _Closed:
    """Queued once the stream has stopped so readers blocked on the queue wake up."""


_CLOSED = _Closed()

QueueItem: TypeAlias = StreamItem | _Closed

Sleep: TypeAlias = Callable[[float], Awaitable[None]]


class Backoff:
    """Exponential backoff with full jitter: a delay uniform in [0, min(cap, base * 2**n))."""

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 10.0,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.cap = cap
        self._rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        # Bounding the exponent keeps 2**n finite after days of failed attempts.
        ceiling = min(self.cap, self.base * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return self._rand() * ceiling

    def reset(self) -> None:
        self.attempt = 0


class EventStream:
    """Events of one Stasis app, as an async iterator of ``StreamItem``.

    ``async with EventStream(...) as stream: async for item in stream: ...``. The iterator
    ends after ``close()``, once everything queued before it has been read.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr | str,
        app: str,
        *,
        subscribe_all: bool = False,
        session: aiohttp.ClientSession | None = None,
        queue: asyncio.Queue[QueueItem] | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        stable_after: float = 30.0,
        heartbeat: float | None = 20.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if queue is not None and queue.maxsize:
            raise ValueError("the event queue must be unbounded so the reader never waits")
        self.app = app
        self._url = _events_url(base_url, app, subscribe_all=subscribe_all)
        self._auth = basic_auth_header(username, password)
        self._session = session
        self._owns_session = session is None
        self._queue: asyncio.Queue[QueueItem] = queue if queue is not None else asyncio.Queue()
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self._stable_after = stable_after
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self._finished = False
        self.connections = 0
        self.received = 0
        # Sees every frame exactly as Asterisk sent it (the leak hunt checks what the service received).
        self.raw_tap: Callable[[str], None] | None = None
        self.unparsed = 0

    @property
    def queue(self) -> asyncio.Queue[QueueItem]:
        return self._queue

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name=f"ari-events-{self.app}")

    async def close(self) -> None:
        """Stop reading and close the socket; safe to call more than once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
        if not self._finished:
            self._finished = True
            self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamItem:
        item = await self._queue.get()
        if isinstance(item, _Closed):
            # Leave the marker for any other reader of the same queue.
            self._queue.put_nowait(item)
            raise StopAsyncIteration
        return item

    async def _run(self) -> None:
        while True:
            try:
                opened_at = await self._connect_and_read()
            except Exception as exc:  # the reader must outlive any one failure
                # Only the type: a traceback's locals could hold an event payload.
                log.error("ari.events_reader_failed", app=self.app, error=type(exc).__name__)
                opened_at = None
            if opened_at is not None and self._clock() - opened_at >= self._stable_after:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            log.info("ari.events_reconnect_wait", app=self.app, delay=round(delay, 3))
            await self._sleep(delay)

    async def _connect_and_read(self) -> float | None:
        """One connection's life; returns when it opened (clock time) or None if it never did."""
        assert self._session is not None
        try:
            # The handshake gets its own bound: an Asterisk that accepts TCP but never answers
            # must not hold us past the backoff schedule.
            async with asyncio.timeout(self._connect_timeout):
                ws = await self._session.ws_connect(
                    self._url,
                    headers={"Authorization": self._auth},
                    protocols=("ari",),
                    heartbeat=self._heartbeat,
                )
            async with ws:
                return await self._read(ws)
        except asyncio.CancelledError:
            raise
        except aiohttp.WSServerHandshakeError as exc:
            log.warning("ari.events_refused", app=self.app, status=exc.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("ari.events_unreachable", app=self.app, error=type(exc).__name__)
        return None

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> float:
        opened_at = self._clock()
        self.connections += 1
        connection = self.connections
        log.info("ari.events_connected", app=self.app, connection=connection)
        self._queue.put_nowait(Connected(connection))
        reason = "connection_lost"
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._deliver(message.data)
                elif message.type is aiohttp.WSMsgType.ERROR:
                    break
            if ws.close_code in _NORMAL_CLOSE_CODES:
                reason = "server_closed"
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            log.info(
                "ari.events_disconnected",
                app=self.app,
                connection=connection,
                reason=reason,
                close_code=ws.close_code,
            )
            self._queue.put_nowait(Disconnected(connection, reason))
        return opened_at

    def _deliver(self, text: str) -> None:
        self.received += 1
        if self.raw_tap is not None:
            self.raw_tap(text)
        try:
            event = parse_event(json.loads(text))
        except EventParseError as exc:
            # Never log the payload: it may hold a caller's number or name.
            self._count_unparsed(str(exc))
            return
        except ValueError:
            self._count_unparsed("invalid JSON")
            return
        except Exception as exc:  # one odd message must not drop the socket
            self._count_unparsed(type(exc).__name__)
            return
        self._queue.put_nowait(event)

    def _count_unparsed(self, error: str) -> None:
        self.unparsed += 1
        log.warning("ari.event_unparsed", app=self.app, error=error, unparsed=self.unparsed)


def _events_url(base_url: str, app: str, *, subscribe_all: bool) -> URL:
    url = URL(base_url.rstrip("/"))
    if url.user is not None or url.password is not None:
        raise ValueError("put ARI credentials in username/password, not in the URL")
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
    return (url.with_scheme(scheme) / "events").with_query(
        app=app, subscribeAll="true" if subscribe_all else "false"
    )
