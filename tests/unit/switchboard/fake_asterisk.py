"""Asterisk played in memory: the REST calls the switchboard makes, and the events it reads.

`FakeAsterisk` answers from a small model of channels and bridges (a missing channel or bridge is a 404,
as in Asterisk), records every call, and can be told to fail or to hold a chosen call. `FakeEvents` is the
event stream: the test queues items and `drained()` returns once the switchboard has handled them all.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from helpline_pbx.ari.errors import AriError, AriNotFound, AriUnprocessable
from helpline_pbx.ari.models import (
    Application,
    Bridge,
    Channel,
    ChannelDestroyed,
    Endpoint,
    Playback,
    StasisEnd,
    StasisStart,
    parse_event,
)
from helpline_pbx.ari.stream import StreamItem

APP = "helpline"
HOLDING = f"{APP}-waiting"
LINE = "0800123456"  # the helpline's own number (the dialled DID), never a caller's
# Q.850 causes Asterisk reports in ChannelDestroyed.
CAUSE_NORMAL, CAUSE_BUSY, CAUSE_NO_ANSWER, CAUSE_CONGESTION = 16, 17, 19, 34
EPOCH = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)
# How long a test waits for something it expects before failing.
WAIT = 5.0


# ---- ARI events ----------------------------------------------------------------------------------------


def channel_json(
    channel_id: str,
    name: str,
    *,
    state: str = "Ring",
    context: str = "helpline-caller",
    exten: str = LINE,
    created: datetime = EPOCH,
) -> dict[str, Any]:
    """A channel as Asterisk 22 serialises it; the caller id is the dialplan's wiped one."""
    return {
        "id": channel_id,
        "name": name,
        "state": state,
        "protocol_id": "",
        "caller": {"name": "", "number": "anonymous"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": context,
            "exten": exten,
            "priority": 3,
            "app_name": "Stasis",
            "app_data": f"{APP},caller,{exten},,0",
        },
        "creationtime": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "language": "fr",
    }


def _envelope(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "application": APP,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "asterisk_id": "02:42:ac:11:00:02",
        **fields,
    }


def stasis_start(channel: dict[str, Any], args: Sequence[str]) -> StasisStart:
    return cast(StasisStart, parse_event(_envelope("StasisStart", channel=channel, args=list(args))))


def stasis_end(channel: dict[str, Any]) -> StasisEnd:
    return cast(StasisEnd, parse_event(_envelope("StasisEnd", channel=channel)))


def channel_destroyed(channel: dict[str, Any], cause: int) -> ChannelDestroyed:
    texts = {
        16: "Normal Clearing",
        17: "User busy",
        19: "No user responding",
        34: "Circuit/channel congestion",
    }
    return cast(
        ChannelDestroyed,
        parse_event(
            _envelope("ChannelDestroyed", channel=channel, cause=cause, cause_txt=texts.get(cause, ""))
        ),
    )


def caller_args(exten: str = LINE) -> list[str]:
    return ["caller", exten, "", "0"]


# ---- the fake Asterisk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AriCall:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class _Failure:
    method: str
    error: Callable[[AriCall], AriError]
    when: Callable[[AriCall], bool]
    times: int


class FakeAsterisk:
    """The subset of AriClient the switchboard uses, over a model of channels and bridges."""

    def __init__(self, app: str = APP) -> None:
        self.app = app
        self.calls: list[AriCall] = []
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, list[str]] = {}
        self.in_app: set[str] = set()
        # Every channel ever seen, as Asterisk serialised it, so events about one already gone describe it.
        self.seen: dict[str, dict[str, Any]] = {}
        self._failures: list[_Failure] = []
        self._holds: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Event()
        self._numbers = itertools.count(0x100)
        # Channel variables, as the dialplan or the service set them.
        self.variables: dict[tuple[str, str], str] = {}
        # Endpoints whose phone has no registration: the switchboard must never ring them.
        self.unregistered: set[str] = set()

    # -- test controls --

    def fail(
        self,
        method: str,
        error: Callable[[AriCall], AriError],
        *,
        when: Callable[[AriCall], bool] = lambda call: True,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` that match `when` raise `error(call)`."""
        self._failures.append(_Failure(method, error, when, times))

    def hold(self, method: str) -> asyncio.Event:
        """Calls of `method` block (after being recorded) until the returned event is set."""
        gate = self._holds[method] = asyncio.Event()
        return gate

    def enter_stasis(self, channel: dict[str, Any]) -> None:
        """A channel entered our application (a caller from the dialplan, or an originated leg)."""
        self.channels[channel["id"]] = Channel.model_validate(channel)
        self.seen[channel["id"]] = channel
        self.in_app.add(channel["id"])

    def vanish(self, channel_id: str) -> None:
        """The channel ended on its own (the phone hung up): Asterisk forgets it."""
        self.channels.pop(channel_id, None)
        self.in_app.discard(channel_id)
        for members in self.bridges.values():
            if channel_id in members:
                members.remove(channel_id)

    def restart(self) -> None:
        """Asterisk restarted: every channel and bridge is gone."""
        self.channels.clear()
        self.bridges.clear()
        self.in_app.clear()

    def named(self, method: str) -> list[AriCall]:
        return [call for call in self.calls if call.method == method]

    def originated(self) -> list[str]:
        return [call.args[0] for call in self.named("originate")]

    def hung_up(self) -> list[str]:
        return [call.args[0] for call in self.named("hangup")]

    async def wait_call(
        self, method: str, when: Callable[[AriCall], bool] = lambda call: True, *, count: int = 1
    ) -> AriCall:
        """The `count`-th recorded call of `method` matching `when`, once it has been made."""
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    matches = [call for call in self.named(method) if when(call)]
                    if len(matches) >= count:
                        return matches[count - 1]
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            made = "\n".join(f"{call.method}{call.args}" for call in self.calls)
            raise AssertionError(f"no {method} call #{count} within {WAIT}s; calls made:\n{made}") from None

    async def _enter(self, method: str, *args: Any, **kwargs: Any) -> AriCall:
        call = AriCall(method, args, kwargs)
        self.calls.append(call)
        self._changed.set()
        gate = self._holds.get(method)
        if gate is not None:
            await gate.wait()
        for failure in self._failures:
            if failure.method == method and failure.times > 0 and failure.when(call):
                failure.times -= 1
                raise failure.error(call)
        return call

    def _channel(self, method: str, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise AriNotFound(method, f"/channels/{channel_id}", status=404, detail="Channel not found")
        return channel

    def _bridge(self, method: str, bridge_id: str) -> list[str]:
        members = self.bridges.get(bridge_id)
        if members is None:
            raise AriNotFound(method, f"/bridges/{bridge_id}", status=404, detail="Bridge not found")
        return members

    def _bridge_model(self, bridge_id: str) -> Bridge:
        kind = "holding" if bridge_id == HOLDING else "mixing"
        return Bridge(
            id=bridge_id,
            technology="simple_bridge",
            bridge_type=kind,
            bridge_class="stasis",
            creator="Stasis",
            name=bridge_id,
            channels=list(self.bridges[bridge_id]),
        )

    # -- bridges --

    async def get_bridge(self, bridge_id: str) -> Bridge:
        await self._enter("get_bridge", bridge_id)
        self._bridge("GET", bridge_id)
        return self._bridge_model(bridge_id)

    async def create_bridge(self, bridge_id: str, type: str = "mixing", name: str | None = None) -> Bridge:
        await self._enter("create_bridge", bridge_id, type=type, name=name)
        self.bridges.setdefault(bridge_id, [])
        return self._bridge_model(bridge_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._enter("destroy_bridge", bridge_id)
        self._bridge("DELETE", bridge_id)
        del self.bridges[bridge_id]

    async def list_bridges(self) -> list[Bridge]:
        await self._enter("list_bridges")
        return [self._bridge_model(bridge_id) for bridge_id in self.bridges]

    async def start_moh(self, bridge_id: str, moh_class: str = "default") -> None:
        await self._enter("start_moh", bridge_id)
        self._bridge("POST", bridge_id)

    async def add_channel(
        self,
        bridge_id: str,
        channel_id: str | Sequence[str],
        *,
        inhibit_connected_line_updates: bool = True,
        role: str | None = None,
    ) -> None:
        ids = [channel_id] if isinstance(channel_id, str) else list(channel_id)
        await self._enter("add_channel", bridge_id, tuple(ids))
        members = self._bridge("POST", bridge_id)
        for one in ids:
            self._channel("POST", one)
        for one in ids:
            for other in self.bridges.values():
                if one in other:
                    other.remove(one)
            members.append(one)

    async def remove_channel(self, bridge_id: str, channel_id: str | Sequence[str]) -> None:
        ids = [channel_id] if isinstance(channel_id, str) else list(channel_id)
        await self._enter("remove_channel", bridge_id, tuple(ids))
        members = self._bridge("POST", bridge_id)
        for one in ids:
            if one not in members:
                raise AriUnprocessable("POST", f"/bridges/{bridge_id}/removeChannel", status=422)
            members.remove(one)

    # -- channels --

    async def originate(
        self,
        channel_id: str,
        endpoint: str,
        *,
        app: str,
        app_args: str | Sequence[str] = (),
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        await self._enter("originate", channel_id, endpoint, app=app, app_args=app_args, caller_id=caller_id)
        data = channel_json(
            channel_id,
            f"{endpoint}-{next(self._numbers):08x}",
            state="Down",
            context="from-listeners",
            exten="s",
            created=datetime.now(UTC),
        )
        channel = Channel.model_validate(data)
        self.channels[channel_id] = channel
        self.seen[channel_id] = data
        self.in_app.add(channel_id)
        return channel

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._enter("hangup", channel_id)
        self._channel("DELETE", channel_id)
        self.vanish(channel_id)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str,
        extension: str,
        priority: int | None = 1,
        label: str | None = None,
    ) -> None:
        await self._enter("continue_in_dialplan", channel_id, context, extension)
        self._channel("POST", channel_id)
        self.in_app.discard(channel_id)

    async def get_channel(self, channel_id: str) -> Channel:
        await self._enter("get_channel", channel_id)
        return self._channel("GET", channel_id)

    async def answer(self, channel_id: str) -> None:
        await self._enter("answer", channel_id)
        self._channel("POST", channel_id)

    async def play(self, channel_id: str, media: str | Sequence[str], playback_id: str) -> Playback:
        await self._enter("play", channel_id, media, playback_id)
        self._channel("POST", channel_id)
        return _playback(playback_id, media, f"channel:{channel_id}")

    async def play_on_bridge(self, bridge_id: str, media: str | Sequence[str], playback_id: str) -> Playback:
        await self._enter("play_on_bridge", bridge_id, media, playback_id)
        self._bridge("POST", bridge_id)
        return _playback(playback_id, media, f"bridge:{bridge_id}")

    async def stop_playback(self, playback_id: str) -> None:
        await self._enter("stop_playback", playback_id)

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
        await self._enter("snoop", channel_id, snoop_id, spy=spy, whisper=whisper)
        self._channel("POST", channel_id)
        data = channel_json(snoop_id, f"Snoop/{channel_id}-{next(self._numbers):08x}", state="Up")
        channel = Channel.model_validate(data)
        self.channels[snoop_id] = channel
        self.seen[snoop_id] = data
        self.in_app.add(snoop_id)
        return channel

    async def list_channels(self) -> list[Channel]:
        # The service must never list every channel: that list holds the trunk's, with the carrier's data.
        raise AssertionError("the service listed every channel (GET /channels)")

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._enter("set_variable", channel_id, name, value)
        self._channel("POST", channel_id)
        self.variables[(channel_id, name)] = value

    async def get_variable(self, channel_id: str, name: str) -> str:
        """A channel variable; an unset one reads as empty, as Asterisk answers for dialplan variables."""
        await self._enter("get_variable", channel_id, name)
        self._channel("GET", channel_id)
        return self.variables.get((channel_id, name), "")

    async def set_global_variable(self, name: str, value: str) -> None:
        await self._enter("set_global_variable", name, value)

    # -- configuration and application --

    async def put_config_object(
        self, object_type: str, object_id: str, fields: Mapping[str, str], *, config_class: str = "res_pjsip"
    ) -> dict[str, str]:
        await self._enter("put_config_object", object_type, object_id)
        return dict(fields)

    async def delete_config_object(
        self, object_type: str, object_id: str, *, config_class: str = "res_pjsip"
    ) -> None:
        await self._enter("delete_config_object", object_type, object_id)

    async def get_application(self, app: str) -> Application:
        await self._enter("get_application", app)
        return Application(name=app, channel_ids=sorted(self.in_app), bridge_ids=sorted(self.bridges))

    async def subscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        await self._enter("subscribe", app, event_source)
        return Application(name=app)

    # -- endpoints: every phone configured is registered unless a test unplugs it --

    async def list_endpoints(self, tech: str = "PJSIP") -> list[Endpoint]:
        await self._enter("list_endpoints", tech)
        configured = {call.args[1] for call in self.named("put_config_object") if call.args[0] == "endpoint"}
        return [
            Endpoint(
                technology=tech,
                resource=name,
                state="offline" if name in self.unregistered else "online",
            )
            for name in sorted(configured)
        ]

    async def originate_to_dialplan(
        self,
        channel_id: str,
        endpoint: str,
        *,
        context: str,
        extension: str,
        caller_id: str | None = None,
        timeout: int | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        await self._enter("originate_to_dialplan", channel_id, endpoint, context, extension, variables)
        return Channel(id=channel_id, name=f"{endpoint}-00000001", state="Down")


def _playback(playback_id: str, media: str | Sequence[str], target: str) -> Playback:
    uris = [media] if isinstance(media, str) else list(media)
    return Playback(id=playback_id, media_uri=uris[0], target_uri=target, state="queued")


# ---- the fake event stream -----------------------------------------------------------------------------


class _End:
    pass


class FakeEvents:
    """What the switchboard iterates instead of the WebSocket stream."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[StreamItem | _End] = asyncio.Queue()
        self._waiting = asyncio.Event()

    def put(self, *items: StreamItem) -> None:
        for item in items:
            self._waiting.clear()
            self._queue.put_nowait(item)

    def __aiter__(self) -> FakeEvents:
        return self

    async def __anext__(self) -> StreamItem:
        if self._queue.empty():
            # The consumer asks for more with nothing queued: everything before was handled.
            self._waiting.set()
        item = await self._queue.get()
        if isinstance(item, _End):
            raise StopAsyncIteration
        return item

    async def drained(self) -> None:
        await self._waiting.wait()

    async def close(self) -> None:
        self._queue.put_nowait(_End())
