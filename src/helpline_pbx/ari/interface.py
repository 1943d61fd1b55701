"""The ARI calls the switchboard makes, as a typed Protocol.

AriClient is the real one; the fake Asterisk of the unit tests is another. Typing the switchboard against
this, not the client, lets mypy check the fake too, and lists in one place what the service asks of
Asterisk. Never GET /channels: that list holds the trunk's own channels, with the carrier's data; the
service reads only the channels of its own application (inventory.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from helpline_pbx.ari.models import Application, Bridge, Channel, Endpoint, Playback


class Ari(Protocol):
    # -- PJSIP objects pushed at run time (listeners' phones) --
    async def put_config_object(
        self,
        object_type: str,
        object_id: str,
        fields: Mapping[str, str],
        *,
        config_class: str = "res_pjsip",
    ) -> dict[str, str]: ...

    async def delete_config_object(
        self, object_type: str, object_id: str, *, config_class: str = "res_pjsip"
    ) -> None: ...

    async def list_endpoints(self, tech: str = "PJSIP") -> list[Endpoint]: ...

    # -- bridges --
    async def create_bridge(
        self, bridge_id: str, type: str = "mixing", name: str | None = None
    ) -> Bridge: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def get_bridge(self, bridge_id: str) -> Bridge: ...

    async def list_bridges(self) -> list[Bridge]: ...

    async def add_channel(
        self,
        bridge_id: str,
        channel_id: str | Sequence[str],
        *,
        inhibit_connected_line_updates: bool = True,
        role: str | None = None,
    ) -> None: ...

    async def remove_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None: ...

    async def start_moh(self, bridge_id: str, moh_class: str = "default") -> None: ...

    async def play_on_bridge(
        self, bridge_id: str, media: str | Sequence[str], playback_id: str
    ) -> Playback: ...

    # -- channels --
    async def originate(
        self,
        channel_id: str,
        endpoint: str,
        *,
        app: str,
        app_args: str | Sequence[str] = (),
        caller_id: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - Asterisk's ring time, in seconds
        variables: Mapping[str, str] | None = None,
    ) -> Channel: ...

    async def originate_to_dialplan(
        self,
        channel_id: str,
        endpoint: str,
        *,
        context: str,
        extension: str,
        caller_id: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - Asterisk's ring time, in seconds
        variables: Mapping[str, str] | None = None,
    ) -> Channel: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def answer(self, channel_id: str) -> None: ...

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str,
        extension: str,
        priority: int | None = 1,
        label: str | None = None,
    ) -> None: ...

    async def play(self, channel_id: str, media: str | Sequence[str], playback_id: str) -> Playback: ...

    async def stop_playback(self, playback_id: str) -> None: ...

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        app: str,
        spy: str = "none",
        whisper: str = "none",
        app_args: str | Sequence[str] = (),
    ) -> Channel: ...

    async def get_channel(self, channel_id: str) -> Channel: ...

    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...

    async def get_variable(self, channel_id: str, name: str) -> str: ...

    async def set_global_variable(self, name: str, value: str) -> None: ...

    # -- the application --
    async def get_application(self, app: str) -> Application: ...
