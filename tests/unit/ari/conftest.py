"""Fixtures for the ARI client tests: the fake server and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from ari_fake_server import FakeAri


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    fake = FakeAri()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    yield fake
    await runner.cleanup()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
