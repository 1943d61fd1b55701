"""EventStream against a fake ARI WebSocket: order, markers, reconnects, backoff, slow readers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import structlog
from ari_fake_server import ARI_PASSWORD, ARI_USER, FakeAri

from helpline_pbx.ari.models import ChannelDestroyed, StasisStart, UnknownEvent
from helpline_pbx.ari.stream import (
    Backoff,
    Connected,
    Disconnected,
    EventStream,
    QueueItem,
    StreamItem,
)

WAIT = 5.0  # upper bound for anything awaited; a healthy run takes milliseconds


def stasis_start(channel_id: str) -> dict[str, Any]:
    return {
        "type": "StasisStart",
        "application": "helpline",
        "timestamp": "2025-01-31T10:00:01.500+0100",
        "args": ["line"],
        "channel": {
            "id": channel_id,
            "name": "PJSIP/trunk-00000001",
            "state": "Ring",
            "caller": {"name": "CALLER-NAME-SENTINEL", "number": "CALLER-NUMBER-SENTINEL"},
            "connected": {"name": "", "number": ""},
        },
    }


class FakeSleep:
    """Records requested delays and returns at once, so backoff costs no real time."""

    def __init__(self, *, block_after: int | None = None) -> None:
        self.delays: list[float] = []
        self.block_after = block_after
        self.reached = asyncio.Event()
        self._forever = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.block_after is not None and len(self.delays) >= self.block_after:
            self.reached.set()
            await self._forever.wait()
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sequence(*values: float) -> Callable[[], float]:
    items: Iterator[float] = iter(values)
    return lambda: next(items)


class WatchedQueue(asyncio.Queue[QueueItem]):
    """An unbounded queue that tells when it has held ``target`` items at once."""

    def __init__(self, target: int) -> None:
        super().__init__()
        self.target = target
        self.filled = asyncio.Event()

    def put_nowait(self, item: QueueItem) -> None:
        super().put_nowait(item)
        if self.qsize() >= self.target:
            self.filled.set()


async def next_item(stream: EventStream) -> StreamItem:
    return await asyncio.wait_for(anext(stream), timeout=WAIT)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def stream(fake_ari: FakeAri, fake_sleep: FakeSleep) -> AsyncIterator[EventStream]:
    async with EventStream(
        fake_ari.base_url,
        ARI_USER,
        ARI_PASSWORD,
        "helpline",
        sleep=fake_sleep,
        backoff=Backoff(rand=lambda: 0.5),
    ) as events:
        yield events


async def test_connects_with_app_and_basic_auth_header_only(fake_ari: FakeAri, stream: EventStream) -> None:
    await fake_ari.next_socket()

    handshake = fake_ari.last()
    expected = base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()
    assert handshake.raw_path == "/ari/events"
    assert handshake.query == {"app": "helpline", "subscribeAll": "false"}
    assert handshake.headers["Authorization"] == f"Basic {expected}"
    assert handshake.headers["Sec-WebSocket-Protocol"] == "ari"
    assert ARI_PASSWORD not in handshake.raw_target
    assert ARI_USER not in handshake.raw_target


async def test_subscribe_all_is_passed_through(fake_ari: FakeAri) -> None:
    async with EventStream(fake_ari.base_url, ARI_USER, ARI_PASSWORD, "helpline app", subscribe_all=True):
        await fake_ari.next_socket()

    assert fake_ari.last().query == {"app": "helpline app", "subscribeAll": "true"}


async def test_events_arrive_parsed_and_in_order_after_a_connected_marker(
    fake_ari: FakeAri, stream: EventStream
) -> None:
    sock = await fake_ari.next_socket()
    await sock.send(stasis_start("call-1"))
    await sock.send({"type": "ChannelTalkingStarted", "application": "helpline"})
    await sock.send(
        {
            "type": "ChannelDestroyed",
            "application": "helpline",
            "cause": 16,
            "cause_txt": "Normal Clearing",
            "channel": {"id": "call-1", "name": "PJSIP/trunk-00000001", "state": "Up"},
        }
    )

    items = [await next_item(stream) for _ in range(4)]

    assert items[0] == Connected(1)
    assert isinstance(items[1], StasisStart)
    assert items[1].channel_id == "call-1"
    assert isinstance(items[2], UnknownEvent)
    assert items[2].type == "ChannelTalkingStarted"
    assert isinstance(items[3], ChannelDestroyed)
    assert items[3].cause == 16


@pytest.mark.parametrize(
    ("drop", "reason"),
    [("close_cleanly", "server_closed"), ("abort", "connection_lost")],
)
async def test_reconnects_after_the_server_drops_the_socket(
    fake_ari: FakeAri, stream: EventStream, fake_sleep: FakeSleep, drop: str, reason: str
) -> None:
    first = await fake_ari.next_socket()
    await first.send(stasis_start("before"))
    assert await next_item(stream) == Connected(1)
    assert isinstance(await next_item(stream), StasisStart)

    if drop == "abort":
        first.abort()
    else:
        await first.close_cleanly()

    assert await next_item(stream) == Disconnected(1, reason)
    second = await fake_ari.next_socket()
    assert await next_item(stream) == Connected(2)
    await second.send(stasis_start("after"))
    after = await next_item(stream)
    assert isinstance(after, StasisStart)
    assert after.channel_id == "after"
    assert fake_sleep.delays == [0.25]  # one jittered wait before reconnecting
    assert stream.connections == 2


async def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap(
    closed_port: int,
) -> None:
    sleep = FakeSleep(block_after=8)
    jitter = sequence(0.1, 0.9, 0.5, 0.999, 0.999, 0.999, 0.999, 0.0)

    async with EventStream(
        f"http://127.0.0.1:{closed_port}/ari",
        ARI_USER,
        ARI_PASSWORD,
        "helpline",
        sleep=sleep,
        backoff=Backoff(rand=jitter),
    ) as events:
        await asyncio.wait_for(sleep.reached.wait(), timeout=WAIT)

    # ceilings 0.5, 1, 2, 4, 8, then capped at 10; each delay is jitter * ceiling
    assert sleep.delays == pytest.approx([0.05, 0.9, 1.0, 3.996, 7.992, 9.99, 9.99, 0.0])
    assert events.connections == 0


async def test_backoff_resets_once_a_connection_stayed_up(fake_ari: FakeAri) -> None:
    clock = FakeClock()
    sleep = FakeSleep()
    async with EventStream(
        fake_ari.base_url,
        ARI_USER,
        ARI_PASSWORD,
        "helpline",
        sleep=sleep,
        clock=clock,
        stable_after=30.0,
        backoff=Backoff(rand=lambda: 0.5),
    ) as events:
        for uptime in (0.0, 1.0, 45.0, 0.0):
            sock = await fake_ari.next_socket()
            assert isinstance(await next_item(events), Connected)
            clock.now += uptime
            await sock.close_cleanly()
            assert isinstance(await next_item(events), Disconnected)
        await fake_ari.next_socket()

    # The third connection stayed up 45 s, so the schedule restarts after it.
    assert sleep.delays == [0.25, 0.5, 0.25, 0.5]


async def test_a_slow_consumer_never_blocks_the_reader(fake_ari: FakeAri) -> None:
    total = 1000
    queue = WatchedQueue(total + 1)  # the Connected marker, then every event

    async with EventStream(fake_ari.base_url, ARI_USER, ARI_PASSWORD, "helpline", queue=queue) as events:
        sock = await fake_ari.next_socket()
        for n in range(total):
            await sock.send(stasis_start(f"call-{n}"))

        # Nobody reads until the reader has queued everything.
        await asyncio.wait_for(queue.filled.wait(), timeout=WAIT)
        items = [await next_item(events) for _ in range(total + 1)]

    assert items[0] == Connected(1)
    assert [item.channel_id for item in items[1:]] == [f"call-{n}" for n in range(total)]
    assert events.received == total
    assert events.unparsed == 0


def test_a_bounded_queue_is_refused() -> None:
    bounded: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize=10)

    with pytest.raises(ValueError, match="unbounded"):
        EventStream("http://127.0.0.1:1/ari", ARI_USER, ARI_PASSWORD, "helpline", queue=bounded)


async def test_unparseable_messages_are_counted_and_skipped_without_logging_them(
    fake_ari: FakeAri, stream: EventStream
) -> None:
    sock = await fake_ari.next_socket()
    with structlog.testing.capture_logs() as logs:
        await sock.ws.send_str("{not json CALLER-NUMBER-SENTINEL")
        await sock.send({"no_type": "CALLER-NUMBER-SENTINEL"})
        await sock.send({"type": "StasisStart", "channel": {"id": "CALLER-NUMBER-SENTINEL"}})
        await sock.send(stasis_start("good"))
        assert await next_item(stream) == Connected(1)
        good = await next_item(stream)

    assert isinstance(good, StasisStart)
    assert good.channel_id == "good"
    assert stream.unparsed == 3
    assert stream.received == 4
    unparsed_logs = [entry for entry in logs if entry["event"] == "ari.event_unparsed"]
    assert len(unparsed_logs) == 3
    assert "SENTINEL" not in repr(logs)


async def test_close_ends_iteration_after_what_was_already_queued(
    fake_ari: FakeAri, fake_sleep: FakeSleep
) -> None:
    queue = WatchedQueue(2)
    events = EventStream(fake_ari.base_url, ARI_USER, ARI_PASSWORD, "helpline", sleep=fake_sleep, queue=queue)
    await events.start()
    sock = await fake_ari.next_socket()
    await sock.send(stasis_start("last"))
    await asyncio.wait_for(queue.filled.wait(), timeout=WAIT)
    assert await next_item(events) == Connected(1)

    await events.close()
    await events.close()  # idempotent

    rest = [item async for item in events]
    assert [type(item) for item in rest] == [StasisStart, Disconnected]
    assert rest[1] == Disconnected(1, "stopped")
    assert fake_sleep.delays == []  # close is not a reconnect
    await asyncio.wait_for(sock.ended.wait(), timeout=WAIT)
