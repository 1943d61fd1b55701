"""Typed views of the ARI resources and events the service uses.

Field names follow Asterisk's own models (``/ari/api-docs/*.json``) so a test can check them
against the spec. Models keep only what the service needs: in particular ``Channel`` does not
declare ``caller``, ``connected`` or ``caller_rdnis``, so a caller's number or name never
enters our objects (``extra="ignore"`` drops them while parsing). ``hide_input_in_errors``
keeps raw values out of validation messages that might end up in a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeAlias, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class AriModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


# --- resources -------------------------------------------------------------------------------


class DialplanCEP(AriModel):
    context: str
    exten: str
    priority: int
    app_name: str | None = None
    app_data: str | None = None


class Channel(AriModel):
    id: str
    name: str
    state: str
    protocol_id: str | None = None
    dialplan: DialplanCEP | None = None
    creationtime: datetime | None = None
    language: str | None = None
    # Only the variables listed in ari.conf's channelvars; kept out of repr in case one of
    # them ever carries something personal.
    channelvars: dict[str, str] | None = Field(default=None, repr=False)


class Bridge(AriModel):
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)
    creationtime: datetime | None = None


class Endpoint(AriModel):
    technology: str
    resource: str
    state: str | None = None
    channel_ids: list[str] = Field(default_factory=list)


class Application(AriModel):
    name: str
    channel_ids: list[str] = Field(default_factory=list)
    bridge_ids: list[str] = Field(default_factory=list)
    endpoint_ids: list[str] = Field(default_factory=list)
    device_names: list[str] = Field(default_factory=list)


class Playback(AriModel):
    id: str
    media_uri: str
    target_uri: str
    state: str
    next_media_uri: str | None = None
    language: str | None = None


class SystemInfo(AriModel):
    version: str
    entity_id: str


class StatusInfo(AriModel):
    startup_time: datetime
    last_reload_time: datetime


class AsteriskInfo(AriModel):
    system: SystemInfo | None = None
    status: StatusInfo | None = None


# --- events ----------------------------------------------------------------------------------


class EventBase(AriModel):
    type: str
    application: str = ""
    timestamp: datetime | None = None
    asterisk_id: str | None = None

    @property
    def channel_id(self) -> str | None:
        """The channel this event is about, for per-channel routing; None if none."""
        return None

    @property
    def bridge_id(self) -> str | None:
        return None


class _ChannelEvent(EventBase):
    channel: Channel

    @property
    def channel_id(self) -> str | None:
        return self.channel.id


class StasisStart(_ChannelEvent):
    type: Literal["StasisStart"] = "StasisStart"
    args: list[str]
    replace_channel: Channel | None = None


class StasisEnd(_ChannelEvent):
    type: Literal["StasisEnd"] = "StasisEnd"


class ChannelStateChange(_ChannelEvent):
    type: Literal["ChannelStateChange"] = "ChannelStateChange"


class ChannelDestroyed(_ChannelEvent):
    type: Literal["ChannelDestroyed"] = "ChannelDestroyed"
    cause: int
    cause_txt: str


class ChannelHangupRequest(_ChannelEvent):
    type: Literal["ChannelHangupRequest"] = "ChannelHangupRequest"
    cause: int | None = None
    soft: bool | None = None


class ChannelDtmfReceived(_ChannelEvent):
    type: Literal["ChannelDtmfReceived"] = "ChannelDtmfReceived"
    digit: str
    duration_ms: int


class ChannelEnteredBridge(EventBase):
    type: Literal["ChannelEnteredBridge"] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel | None = None

    @property
    def channel_id(self) -> str | None:
        return self.channel.id if self.channel is not None else None

    @property
    def bridge_id(self) -> str | None:
        return self.bridge.id


class ChannelLeftBridge(_ChannelEvent):
    type: Literal["ChannelLeftBridge"] = "ChannelLeftBridge"
    bridge: Bridge

    @property
    def bridge_id(self) -> str | None:
        return self.bridge.id


class _PlaybackEvent(EventBase):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        return _target_id(self.playback.target_uri, "channel:")

    @property
    def bridge_id(self) -> str | None:
        return _target_id(self.playback.target_uri, "bridge:")


class PlaybackStarted(_PlaybackEvent):
    type: Literal["PlaybackStarted"] = "PlaybackStarted"


class PlaybackFinished(_PlaybackEvent):
    type: Literal["PlaybackFinished"] = "PlaybackFinished"


class EndpointStateChange(EventBase):
    type: Literal["EndpointStateChange"] = "EndpointStateChange"
    endpoint: Endpoint


class Dial(EventBase):
    type: Literal["Dial"] = "Dial"
    dialstatus: str
    peer: Channel
    caller: Channel | None = None
    dialstring: str | None = None

    @property
    def channel_id(self) -> str | None:
        # The peer is the leg we originated (we chose its id); route the event to it.
        return self.peer.id


class ApplicationReplaced(EventBase):
    type: Literal["ApplicationReplaced"] = "ApplicationReplaced"


class BridgeDestroyed(EventBase):
    type: Literal["BridgeDestroyed"] = "BridgeDestroyed"
    bridge: Bridge

    @property
    def bridge_id(self) -> str | None:
        return self.bridge.id


class UnknownEvent(EventBase):
    """Any event type we do not model; ``raw`` keeps the payload minus caller identities."""

    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


Event: TypeAlias = (
    StasisStart
    | StasisEnd
    | ChannelStateChange
    | ChannelDestroyed
    | ChannelHangupRequest
    | ChannelDtmfReceived
    | ChannelEnteredBridge
    | ChannelLeftBridge
    | PlaybackStarted
    | PlaybackFinished
    | EndpointStateChange
    | Dial
    | ApplicationReplaced
    | BridgeDestroyed
    | UnknownEvent
)

EVENT_TYPES: Mapping[str, type[EventBase]] = {
    cls.__name__: cls
    for cls in (
        StasisStart,
        StasisEnd,
        ChannelStateChange,
        ChannelDestroyed,
        ChannelHangupRequest,
        ChannelDtmfReceived,
        ChannelEnteredBridge,
        ChannelLeftBridge,
        PlaybackStarted,
        PlaybackFinished,
        EndpointStateChange,
        Dial,
        ApplicationReplaced,
        BridgeDestroyed,
    )
}

RESOURCE_MODELS: tuple[type[AriModel], ...] = (
    DialplanCEP,
    Channel,
    Bridge,
    Endpoint,
    Application,
    Playback,
    SystemInfo,
    StatusInfo,
    AsteriskInfo,
)


class EventParseError(ValueError):
    """An event could not be understood. The message never contains payload values."""

    def __init__(self, reason: str, *, event_type: str | None = None) -> None:
        self.event_type = event_type
        super().__init__(f"{event_type}: {reason}" if event_type else reason)


def parse_event(data: object) -> Event:
    """Turn one decoded ARI WebSocket message into a typed event.

    Unknown types become ``UnknownEvent`` and extra fields are ignored. Raises
    ``EventParseError`` only when ``data`` is not an object, has no string ``type``, or a
    known type lacks a field we rely on.
    """
    if not isinstance(data, dict):
        raise EventParseError("event is not a JSON object")
    event_type = data.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise EventParseError("event has no type")
    model = EVENT_TYPES.get(event_type)
    if model is None:
        return _unknown(event_type, data)
    try:
        return cast(Event, model.model_validate(data))
    except ValidationError as exc:
        where = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise EventParseError(f"invalid fields {where}", event_type=event_type) from None


def _unknown(event_type: str, data: dict[str, Any]) -> UnknownEvent:
    raw = _without_caller_ids(data)
    envelope = {k: data[k] for k in ("application", "timestamp", "asterisk_id") if k in data}
    try:
        return UnknownEvent.model_validate({**envelope, "type": event_type, "raw": raw})
    except ValidationError:
        # Whatever a future Asterisk puts in the envelope, an unknown event is still delivered.
        return UnknownEvent(type=event_type, raw=raw)


_CALLER_ID_KEYS = frozenset({"caller", "connected", "caller_rdnis"})


def _without_caller_ids(value: Any) -> Any:
    """Copy of a JSON value minus CallerID objects (name/number), at any depth."""
    if isinstance(value, dict):
        return {
            key: _without_caller_ids(item)
            for key, item in value.items()
            if not (key in _CALLER_ID_KEYS and _is_caller_id(item))
        }
    if isinstance(value, list):
        return [_without_caller_ids(item) for item in value]
    return value


def _is_caller_id(value: Any) -> bool:
    # caller_rdnis is a bare string; CallerID objects have name/number. A Dial's "caller" is
    # a whole Channel (it has an "id") and is kept, its own caller field being removed.
    return isinstance(value, str) or (isinstance(value, dict) and "id" not in value)


def _target_id(uri: str, prefix: str) -> str | None:
    return uri[len(prefix) :] if uri.startswith(prefix) else None
