"""Fixtures for the ARI client tests: the fake server and a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from ari_fake_server import FakeAri, serve_on_loopback


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeAri]:
    fake = FakeAri()
    runner, fake.port = await serve_on_loopback(fake.handle)
    yield fake
    await runner.cleanup()


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
