"""AriClient.snoop: a snoop channel with our id, spy and whisper directions and Stasis arguments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ari_fake_server import ARI_PASSWORD, ARI_USER, FakeAri
from pydantic import SecretStr

from helpline_pbx.ari import AriClient
from helpline_pbx.ari.models import Channel

SNOOP = {"id": "sn-1", "name": "Snoop/1700000000.12-00000001", "state": "Up"}


@pytest.fixture
async def client(fake_ari: FakeAri) -> AsyncIterator[AriClient]:
    async with AriClient(fake_ari.base_url, ARI_USER, SecretStr(ARI_PASSWORD)) as ari:
        yield ari


async def test_snoop_posts_our_id_directions_and_stasis_args(fake_ari: FakeAri, client: AriClient) -> None:
    """The snoop request names the spied channel and our snoop id in the path, the rest as parameters."""
    fake_ari.reply("POST", "/channels/leg-1/snoop/sn-1", 200, SNOOP)

    channel = await client.snoop(
        "leg-1", "sn-1", app="helpline", spy="both", whisper="out", app_args=["snoop", "s1"]
    )

    sent = fake_ari.last()
    assert (sent.method, sent.raw_path) == ("POST", "/ari/channels/leg-1/snoop/sn-1")
    assert sent.query == {"spy": "both", "whisper": "out", "app": "helpline", "appArgs": "snoop,s1"}
    assert isinstance(channel, Channel)
    assert channel.id == "sn-1"


async def test_snoop_refuses_commas_in_stasis_args(fake_ari: FakeAri, client: AriClient) -> None:
    """Asterisk splits Stasis arguments on commas: one containing a comma is refused before any request."""
    with pytest.raises(ValueError, match="commas"):
        await client.snoop("leg-1", "sn-1", app="helpline", app_args="a,b")
    assert fake_ari.requests == []
