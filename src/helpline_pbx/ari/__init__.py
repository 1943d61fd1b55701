"""Our own thin ARI client: REST (``AriClient``), events (``EventStream``), typed models."""

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import (
    AriConflict,
    AriError,
    AriNotFound,
    AriServerError,
    AriUnauthorized,
    AriUnavailable,
    AriUnprocessable,
)
from helpline_pbx.ari.models import Event, EventParseError, UnknownEvent, parse_event
from helpline_pbx.ari.stream import Backoff, Connected, Disconnected, EventStream, StreamItem

__all__ = [
    "AriClient",
    "AriConflict",
    "AriError",
    "AriNotFound",
    "AriServerError",
    "AriUnauthorized",
    "AriUnavailable",
    "AriUnprocessable",
    "Backoff",
    "Connected",
    "Disconnected",
    "Event",
    "EventParseError",
    "EventStream",
    "StreamItem",
    "UnknownEvent",
    "parse_event",
]
