"""A thin, typed client for the ARI REST API (Asterisk 22) on aiohttp."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from helpline_pbx.ari.errors import AriServerError
from helpline_pbx.ari.http import AriHttp, comma_list, segment
from helpline_pbx.ari.models import (
    Application,
    AsteriskInfo,
    Bridge,
    Channel,
    Endpoint,
    Playback,
)


class AriClient(AriHttp):
    """The ARI resources the service uses: Asterisk's configuration, bridges, channels, applications and
    endpoints, one method per request (typed against ari/interface.py's Ari protocol)."""

    # --- asterisk ---------------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        return await self._one(AsteriskInfo, "GET", "/asterisk/info")

    async def put_config_object(
        self,
        object_type: str,
        object_id: str,
        fields: Mapping[str, str],
        *,
        config_class: str = "res_pjsip",
    ) -> dict[str, str]:
        """Create or update a dynamic (sorcery memory) object; return its fields as stored."""
        body = {"fields": [{"attribute": k, "value": v} for k, v in fields.items()]}
        path = _config_path(config_class, object_type, object_id)
        result = await self.request("PUT", path, json=body)
        try:
            return {str(t["attribute"]): str(t["value"]) for t in result or ()}
        except (TypeError, KeyError):
            raise AriServerError("PUT", path, detail="unexpected ConfigTuple list") from None

    async def delete_config_object(
        self, object_type: str, object_id: str, *, config_class: str = "res_pjsip"
    ) -> None:
        await self.request("DELETE", _config_path(config_class, object_type, object_id))

    # --- bridges ----------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, type: str = "mixing", name: str | None = None) -> Bridge:
        """Create (or update) the bridge with an id we choose; ``type`` e.g. "mixing", "holding"."""
        return await self._one(
            Bridge, "POST", f"/bridges/{segment(bridge_id)}", params={"type": type, "name": name}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{segment(bridge_id)}")

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return await self._one(Bridge, "GET", f"/bridges/{segment(bridge_id)}")

    async def list_bridges(self) -> list[Bridge]:
        return await self._many(Bridge, "/bridges")

    async def add_channel(
        self,
        bridge_id: str,
        channel_id: str | Sequence[str],
        *,
        inhibit_connected_line_updates: bool = True,
        role: str | None = None,
    ) -> None:
        # Connected-line updates would show each party the other's identity: off by default.
        await self.request(
            "POST",
            f"/bridges/{segment(bridge_id)}/addChannel",
            params={
                "channel": comma_list(channel_id),
                "inhibitConnectedLineUpdates": inhibit_connected_line_updates,
                "role": role,
            },
        )

    async def remove_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        await self.request(
            "POST",
            f"/bridges/{segment(bridge_id)}/removeChannel",
            params={"channel": comma_list(channel_id)},
        )

    async def start_moh(self, bridge_id: str, moh_class: str = "default") -> None:
        await self.request("POST", f"/bridges/{segment(bridge_id)}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{segment(bridge_id)}/moh")

    async def play_on_bridge(self, bridge_id: str, media: str | Sequence[str], playback_id: str) -> Playback:
        return await self._one(
            Playback,
            "POST",
            f"/bridges/{segment(bridge_id)}/play/{segment(playback_id)}",
            params={"media": comma_list(media)},
        )

    # --- channels ---------------------------------------------------------------------------

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
    ) -> Channel:
        """Dial ``endpoint`` into Stasis ``app`` as a channel whose id we choose.

        ``app_args`` reach the StasisStart event's ``args``; Asterisk splits them on commas.
        ``timeout`` is how long Asterisk lets the endpoint ring, not an HTTP timeout.
        """
        args = [app_args] if isinstance(app_args, str) else list(app_args)
        if any("," in a for a in args):
            raise ValueError("Stasis arguments cannot contain commas")
        return await self._one(
            Channel,
            "POST",
            f"/channels/{segment(channel_id)}",
            params={
                "endpoint": endpoint,
                "app": app,
                "appArgs": ",".join(args) if args else None,
                "callerId": caller_id,
                "timeout": timeout,
            },
            json={"variables": dict(variables)} if variables else None,
        )

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
    ) -> Channel:
        """Dial ``endpoint`` and, once answered, run the dialplan at ``context``/``extension``, priority 1."""
        return await self._one(
            Channel,
            "POST",
            f"/channels/{segment(channel_id)}",
            params={
                "endpoint": endpoint,
                "context": context,
                "extension": extension,
                "priority": 1,
                "callerId": caller_id,
                "timeout": timeout,
            },
            json={"variables": dict(variables)} if variables else None,
        )

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{segment(channel_id)}", params={"reason": reason})

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{segment(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{segment(channel_id)}/ring")

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str,
        extension: str,
        priority: int | None = 1,
        label: str | None = None,
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{segment(channel_id)}/continue",
            params={
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
            },
        )

    async def play(self, channel_id: str, media: str | Sequence[str], playback_id: str) -> Playback:
        return await self._one(
            Playback,
            "POST",
            f"/channels/{segment(channel_id)}/play/{segment(playback_id)}",
            params={"media": comma_list(media)},
        )

    async def stop_playback(self, playback_id: str) -> None:
        """Stop a playback (or cancel it if it has not started); AriNotFound once it is over."""
        await self.request("DELETE", f"/playbacks/{segment(playback_id)}")

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        app: str,
        spy: str = "none",
        whisper: str = "none",
        app_args: str | Sequence[str] = (),
    ) -> Channel:
        """A channel (id ``snoop_id``) that hears and/or speaks into ``channel_id``, placed in Stasis ``app``.

        ``spy``: which of the channel's audio the snoop hears ("in": what the channel sends, "out": what it
        is sent, "both", "none"); ``whisper``: where the snoop's own audio goes, in the same terms ("out":
        only the channel's device hears it).
        """
        args = [app_args] if isinstance(app_args, str) else list(app_args)
        if any("," in a for a in args):
            raise ValueError("Stasis arguments cannot contain commas")
        return await self._one(
            Channel,
            "POST",
            f"/channels/{segment(channel_id)}/snoop/{segment(snoop_id)}",
            params={
                "spy": spy,
                "whisper": whisper,
                "app": app,
                "appArgs": ",".join(args) if args else None,
            },
        )

    async def get_channel(self, channel_id: str) -> Channel:
        return await self._one(Channel, "GET", f"/channels/{segment(channel_id)}")

    async def list_channels(self) -> list[Channel]:
        return await self._many(Channel, "/channels")

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST",
            f"/channels/{segment(channel_id)}/variable",
            params={"variable": name, "value": value},
        )

    async def set_global_variable(self, name: str, value: str) -> None:
        """A dialplan global (POST /asterisk/variable): what the dialplan reads without the service."""
        await self.request("POST", "/asterisk/variable", params={"variable": name, "value": value})

    async def get_variable(self, channel_id: str, name: str) -> str:
        path = f"/channels/{segment(channel_id)}/variable"
        data = await self.request("GET", path, params={"variable": name})
        if not isinstance(data, dict) or "value" not in data:
            raise AriServerError("GET", path, detail="unexpected Variable")
        return str(data["value"])

    # --- applications and endpoints ---------------------------------------------------------

    async def get_application(self, app: str) -> Application:
        return await self._one(Application, "GET", f"/applications/{segment(app)}")

    async def subscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        """Subscribe ``app`` to e.g. ``"endpoint:PJSIP"`` or ``"bridge:{id}"``."""
        return await self._one(
            Application,
            "POST",
            f"/applications/{segment(app)}/subscription",
            params={"eventSource": comma_list(event_source)},
        )

    async def list_endpoints(self, tech: str = "PJSIP") -> list[Endpoint]:
        return await self._many(Endpoint, f"/endpoints/{segment(tech)}")

    async def get_endpoint(self, tech: str, resource: str) -> Endpoint:
        return await self._one(Endpoint, "GET", f"/endpoints/{segment(tech)}/{segment(resource)}")


def _config_path(config_class: str, object_type: str, object_id: str) -> str:
    return f"/asterisk/config/dynamic/{segment(config_class)}/{segment(object_type)}/{segment(object_id)}"
