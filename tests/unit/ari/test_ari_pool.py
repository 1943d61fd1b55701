"""The ARI request pool: never more in flight than its size, the rest served in order of arrival, a clear
error (never a silent loss) for a request that waits too long; and the client using it, against a server
that counts how many requests it holds at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from ari_fake_server import ARI_PASSWORD, ARI_USER, serve_on_loopback
from structlog.testing import capture_logs

from helpline_pbx.ari import AriClient, AriUnavailable
from helpline_pbx.ari.pool import RequestPool, RequestQueueTimeout, pool_size


def test_the_pool_is_derived_from_asterisks_session_limit_with_room_left() -> None:
    assert pool_size(100) == 75  # Asterisk's default limit
    assert pool_size(200) == 150  # the project's
    assert pool_size(8) == 4  # a quarter, but never fewer than four sessions spare
    for limit in range(5, 2000):
        assert 1 <= pool_size(limit) <= limit - 4
    with pytest.raises(ValueError, match="no room"):
        pool_size(4)


class Started(list[str]):
    """Names of the requests that got their slot, in order; `reached(n)` waits for the n-th."""

    def __init__(self) -> None:
        super().__init__()
        self._grew = asyncio.Condition()

    async def add(self, name: str) -> None:
        self.append(name)
        async with self._grew:
            self._grew.notify_all()

    async def reached(self, count: int) -> None:
        async with self._grew:
            await self._grew.wait_for(lambda: len(self) >= count)


async def _hold(pool: RequestPool, name: str, started: Started, release: asyncio.Event) -> str:
    async with pool.slot():
        await started.add(name)
        await release.wait()
    return name


async def _turns(count: int = 10) -> None:
    """Let the loop run `count` rounds: what could happen by itself (a queue overtaken) has happened."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_never_more_in_flight_than_the_size_and_the_rest_in_order() -> None:
    pool = RequestPool(3, wait_limit=5.0)
    started = Started()
    release = asyncio.Event()
    tasks = [asyncio.create_task(_hold(pool, f"r{n}", started, release)) for n in range(10)]
    await started.reached(3)
    await _turns()

    assert started == ["r0", "r1", "r2"]
    assert (pool.in_flight, pool.queued) == (3, 7)

    release.set()
    assert await asyncio.gather(*tasks) == [f"r{n}" for n in range(10)]
    assert started == [f"r{n}" for n in range(10)]  # served in the order they asked
    assert (pool.in_flight, pool.queued) == (0, 0)
    figures = pool.take_figures()
    assert (figures.peak, figures.queued_peak, figures.served) == (3, 7, 10)


async def test_a_newcomer_never_overtakes_the_queue() -> None:
    pool = RequestPool(1, wait_limit=5.0)
    order = Started()
    release = asyncio.Event()
    first = asyncio.create_task(_hold(pool, "first", order, release))
    queued = asyncio.create_task(_hold(pool, "queued", order, asyncio.Event()))
    await order.reached(1)
    release.set()
    await first
    # The slot "first" gave back went to "queued", even though this newcomer asks in the same instant.
    late = asyncio.create_task(_hold(pool, "late", order, asyncio.Event()))
    await order.reached(2)
    await _turns()  # time enough for "late" to overtake, if it could
    assert order == ["first", "queued"]
    assert (pool.in_flight, pool.queued) == (1, 1)
    queued.cancel()
    late.cancel()
    await asyncio.gather(queued, late, return_exceptions=True)
    assert (pool.in_flight, pool.queued) == (0, 0)


async def test_waiting_too_long_is_an_error_and_leaves_the_queue() -> None:
    pool = RequestPool(1, wait_limit=0.05)
    release = asyncio.Event()
    held = Started()
    holder = asyncio.create_task(_hold(pool, "holder", held, release))
    await held.reached(1)

    with pytest.raises(RequestQueueTimeout) as caught:
        async with pool.slot():
            pytest.fail("no slot should be free")

    assert caught.value.waited >= 0.05
    assert pool.queued == 0  # the request that gave up is no longer queued
    release.set()
    await holder
    assert pool.in_flight == 0
    async with pool.slot():  # the pool still works
        assert pool.in_flight == 1


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    pool = RequestPool(1, wait_limit=5.0)
    release = asyncio.Event()
    order = Started()
    holder = asyncio.create_task(_hold(pool, "holder", order, release))
    doomed = asyncio.create_task(_hold(pool, "doomed", order, asyncio.Event()))
    patient = asyncio.create_task(_hold(pool, "patient", order, asyncio.Event()))
    await order.reached(1)
    await _turns()  # both others queued
    release.set()
    doomed.cancel()  # handed the slot, maybe, but cancelled before it could use it
    await asyncio.gather(holder, doomed, return_exceptions=True)
    await order.reached(2)
    assert order == ["holder", "patient"]
    assert pool.in_flight == 1
    patient.cancel()
    await asyncio.gather(patient, return_exceptions=True)
    assert (pool.in_flight, pool.queued) == (0, 0)


@dataclass
class CountingAri:
    """An ARI stand-in that holds every request until released and counts how many it holds at once."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    full: asyncio.Event = field(default_factory=asyncio.Event)
    full_at: int = 0
    holding: int = 0
    most: int = 0
    served: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.holding += 1
        self.most = max(self.most, self.holding)
        if self.holding >= self.full_at > 0:
            self.full.set()
        try:
            await self.release.wait()
        finally:
            self.holding -= 1
        self.served.append(request.query.get("variable", ""))
        return web.json_response({"value": "x"})


@pytest.fixture
async def counting_ari() -> AsyncIterator[CountingAri]:
    fake = CountingAri()
    runner, fake.port = await serve_on_loopback(fake.handle)
    yield fake
    fake.release.set()
    await runner.cleanup()


async def test_the_client_keeps_asterisk_under_the_bound(counting_ari: CountingAri) -> None:
    """40 requests at once through a pool of 5: the server never holds more than 5, every one is answered,
    in the order they were made."""
    url = f"http://127.0.0.1:{counting_ari.port}/ari"
    counting_ari.full_at = 5
    async with AriClient(url, ARI_USER, ARI_PASSWORD, max_in_flight=5) as ari:
        requests = [asyncio.create_task(ari.get_variable("chan", f"V{n}")) for n in range(40)]
        await asyncio.wait_for(counting_ari.full.wait(), 5)
        # Any request over the bound would be on its way now: nothing to await, it must not come.
        await asyncio.sleep(0.05)
        assert counting_ari.holding == 5
        assert ari.pool.queued == 35
        counting_ari.release.set()
        assert await asyncio.gather(*requests) == ["x"] * 40

    assert counting_ari.most == 5
    assert counting_ari.served == [f"V{n}" for n in range(40)]


async def test_a_request_that_waits_too_long_fails_clearly(counting_ari: CountingAri) -> None:
    url = f"http://127.0.0.1:{counting_ari.port}/ari"
    async with AriClient(url, ARI_USER, ARI_PASSWORD, max_in_flight=2, queue_wait=0.1, timeout=5) as ari:
        with capture_logs() as logs:
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(ari.get_variable("chan", f"V{n}") for n in range(5)),
                    _release_after(counting_ari, 0.3),
                    return_exceptions=True,
                ),
                5,
            )
    answered = [r for r in results[:5] if r == "x"]
    refused = [r for r in results[:5] if isinstance(r, AriUnavailable)]
    # Two got their slot and were answered; the three queued behind them gave up with an error each.
    assert (len(answered), len(refused)) == (2, 3)
    assert all("queued too long" in str(r) for r in refused)
    timeouts = [e for e in logs if e["event"] == "ari.request_queue_timeout"]
    assert len(timeouts) == 3
    assert all(e["log_level"] == "warning" and e["queued"] >= 0 for e in timeouts)
    assert counting_ari.most == 2


async def _release_after(fake: CountingAri, delay: float) -> None:
    await asyncio.sleep(delay)
    fake.release.set()
