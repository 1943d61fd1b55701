"""A supervision's record while it runs, and how its channels are told from callers' and listeners'."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from helpline_pbx.ari.models import Channel
from helpline_pbx.protocol import channel_lane
from helpline_pbx.roster.states import SupervisionMode

# What the snoop hears of the listener's channel and where it speaks: "out" is what the listener's phone is
# sent, so a whisper "out" reaches the listener and nobody else.
SPY_WHISPER: dict[SupervisionMode, tuple[str, str]] = {
    SupervisionMode.LISTEN: ("both", "none"),
    SupervisionMode.COACH: ("both", "out"),
}


def is_supervision_channel(channel: Channel) -> bool:
    """A supervisor's phone in a supervision, or a snoop channel: never a caller, never a listener's leg."""
    if channel.name.startswith("Snoop/"):
        return True
    dialplan = channel.dialplan
    if dialplan is None or dialplan.app_name != "Stasis" or not dialplan.app_data:
        return False
    args = dialplan.app_data.split(",")
    return len(args) >= 3 and args[1] == "feature" and args[2] in {mode.value for mode in SupervisionMode}


class Interrupted(Exception):
    """A channel of the supervision ended while it was being set up."""


@dataclass(slots=True, eq=False)
class Session:
    token: str
    mode: SupervisionMode
    supervisor_id: str
    listener_id: str
    call_id: str
    supervisor_channel: str
    listener_channel: str
    record_id: int | None = None
    bridge_id: str | None = None  # ours (listen, coach); a join uses the call's talk bridge
    snoop_channel: str | None = None
    snoop_started: bool = False
    in_talk: bool = False
    gone: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    ended: bool = False

    @property
    def lane(self) -> str:
        # Feature codes run on the phone's channel lane: a supervision's end waits for its start.
        return channel_lane(self.supervisor_channel)

    def channels(self) -> list[str]:
        return [c for c in (self.supervisor_channel, self.listener_channel, self.snoop_channel) if c]
