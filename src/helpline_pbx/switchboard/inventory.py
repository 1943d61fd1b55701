"""What Asterisk holds of ours: the channels of our application, read one by one.

The service never lists every channel (`GET /channels`): that list holds the trunk's channels, with the
carrier's SIP Call-ID and, while the screen runs, the caller's number. Our callers are the far halves of
Local channels ([helpline-caller] in the dialplan), our listeners' legs are ours: reading only those, the
service never receives anything the carrier sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import Channel

# The dialplan context a caller's channel is in while the service has it (the far half of their Local
# channel); feature codes come from listeners' phones, in another context.
CALLER_CONTEXT = "helpline-caller"

# Requests in flight at once while reading channels, callers' variables after a restart: well under the ARI
# pool (ari/pool.py; 75 with Asterisk's default session limit), whose other slots the keep-alive, new
# callers and offers keep using meanwhile.
READ_CONCURRENCY = 32


def is_caller(channel: Channel) -> bool:
    return channel.dialplan is not None and channel.dialplan.context == CALLER_CONTEXT


async def read_channels(ari: Ari, channel_ids: Iterable[str]) -> dict[str, Channel]:
    """The channels that still exist among `channel_ids`, by id (a vanished one is left out)."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(channel_id: str) -> Channel | None:
        async with gate:
            try:
                return await ari.get_channel(channel_id)
            except AriNotFound:
                return None

    found = await asyncio.gather(*(one(c) for c in dict.fromkeys(channel_ids)))
    return {channel.id: channel for channel in found if channel is not None}


async def own_channels(ari: Ari, app: str) -> dict[str, Channel]:
    """Every channel of our application (callers, listeners' legs, snoops), by id."""
    return await read_channels(ari, (await ari.get_application(app)).channel_ids)


async def live_among(ari: Ari, app: str, channel_ids: Iterable[str]) -> set[str]:
    """Which of `channel_ids` Asterisk still has: those in our application, and any other confirmed one
    by one (a leg between two states may be briefly outside it; never judge a live call gone)."""
    wanted = set(channel_ids)
    in_app = set((await ari.get_application(app)).channel_ids) & wanted
    return in_app | set(await read_channels(ari, wanted - in_app))
