"""Parsing ARI events as Asterisk 22 sends them (hand-written, real-looking payloads)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpline_pbx.ari.models import (
    EVENT_TYPES,
    ApplicationReplaced,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    Dial,
    EndpointStateChange,
    EventParseError,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)

SENTINELS = ("CALLER-NUMBER-SENTINEL", "CALLER-NAME-SENTINEL", "RDNIS-SENTINEL")


def channel(channel_id: str = "1738317600.42", state: str = "Ring") -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": "PJSIP/trunk-0000002a",
        "state": state,
        "protocol_id": "a84c3e1f@10.0.0.1",
        "caller": {"name": "CALLER-NAME-SENTINEL", "number": "CALLER-NUMBER-SENTINEL"},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "helpline-in",
            "exten": "s",
            "priority": 4,
            "app_name": "Stasis",
            "app_data": "helpline,line,tok-9f2c",
        },
        "creationtime": "2025-01-31T10:00:00.123+0100",
        "language": "fr",
        "caller_rdnis": "RDNIS-SENTINEL",
    }


def bridge(bridge_id: str = "hold-main") -> dict[str, Any]:
    return {
        "id": bridge_id,
        "technology": "holding_bridge",
        "bridge_type": "holding",
        "bridge_class": "stasis",
        "creator": "Stasis",
        "name": "",
        "channels": [],
        "creationtime": "2025-01-31T09:00:00.000+0100",
        "video_mode": "none",
    }


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "timestamp": "2025-01-31T10:00:01.500+0100",
        "asterisk_id": "00:11:22:33:44:55",
        "application": "helpline",
        **fields,
    }


STASIS_START = event("StasisStart", args=["line", "tok-9f2c"], channel=channel())


def test_stasis_start_with_args() -> None:
    parsed = parse_event(STASIS_START)

    assert isinstance(parsed, StasisStart)
    assert parsed.args == ["line", "tok-9f2c"]
    assert parsed.channel_id == "1738317600.42"
    assert parsed.channel.state == "Ring"
    assert parsed.application == "helpline"
    assert parsed.replace_channel is None
    assert parsed.timestamp == datetime(2025, 1, 31, 9, 0, 1, 500000, tzinfo=UTC)
    assert parsed.channel.creationtime is not None
    assert parsed.channel.creationtime.utcoffset() == timedelta(hours=1)


def test_stasis_start_with_a_replaced_channel() -> None:
    parsed = parse_event({**STASIS_START, "replace_channel": channel("old-1")})

    assert isinstance(parsed, StasisStart)
    assert parsed.replace_channel is not None
    assert parsed.replace_channel.id == "old-1"


def test_parsed_events_never_carry_the_caller_identity() -> None:
    parsed = parse_event(STASIS_START)

    shown = repr(parsed) + str(parsed) + parsed.model_dump_json()
    for sentinel in SENTINELS:
        assert sentinel not in shown


def test_channel_destroyed_with_cause_17() -> None:
    parsed = parse_event(
        event("ChannelDestroyed", cause=17, cause_txt="User busy", channel=channel(state="Up"))
    )

    assert isinstance(parsed, ChannelDestroyed)
    assert (parsed.cause, parsed.cause_txt) == (17, "User busy")
    assert parsed.channel_id == "1738317600.42"


def test_unknown_event_type_keeps_type_and_raw_payload() -> None:
    payload = event("ChannelTalkingStarted", channel=channel(), something_new={"x": [1, 2]})

    parsed = parse_event(payload)

    assert isinstance(parsed, UnknownEvent)
    assert parsed.type == "ChannelTalkingStarted"
    assert parsed.application == "helpline"
    assert parsed.raw["something_new"] == {"x": [1, 2]}
    assert parsed.raw["channel"]["id"] == "1738317600.42"
    assert parsed.channel_id is None


def test_unknown_event_with_an_odd_envelope_is_still_delivered() -> None:
    parsed = parse_event({"type": "FutureThing", "timestamp": "yesterday", "application": 3})

    assert isinstance(parsed, UnknownEvent)
    assert (parsed.type, parsed.timestamp, parsed.raw["timestamp"]) == (
        "FutureThing",
        None,
        "yesterday",
    )


def test_unknown_event_raw_payload_has_caller_ids_removed_at_any_depth() -> None:
    payload = event(
        "BridgeAttendedTransfer",
        transferer_first_leg=channel("a"),
        transferee=channel("b"),
        nested=[{"caller": {"number": "CALLER-NUMBER-SENTINEL"}}],
    )
    original = copy.deepcopy(payload)

    parsed = parse_event(payload)

    assert isinstance(parsed, UnknownEvent)
    flat = str(parsed.raw) + repr(parsed)
    for sentinel in SENTINELS:
        assert sentinel not in flat
    assert parsed.raw["transferee"]["id"] == "b"
    assert payload == original  # the caller's dict is left alone


def test_extra_fields_are_ignored_everywhere() -> None:
    future_channel = {**channel(), "tenantid": "t1", "brand_new": {"deep": True}}
    payload = event("StasisEnd", channel=future_channel, added_in_asterisk_42=True)

    parsed = parse_event(payload)

    assert isinstance(parsed, StasisEnd)
    assert parsed.channel_id == "1738317600.42"
    assert "brand_new" not in parsed.channel.model_dump()


@pytest.mark.parametrize("data", [[1, 2], "StasisStart", None, 17])
def test_data_that_is_not_an_object_is_refused(data: object) -> None:
    with pytest.raises(EventParseError, match="not a JSON object"):
        parse_event(data)


@pytest.mark.parametrize("data", [{}, {"type": None}, {"type": ""}, {"type": 3}])
def test_an_event_without_a_type_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(EventParseError, match="no type"):
        parse_event(data)


def test_a_known_event_missing_fields_names_them_but_not_the_values() -> None:
    broken = event("StasisStart", channel={**channel(), "id": None})

    with pytest.raises(EventParseError) as caught:
        parse_event(broken)

    assert caught.value.event_type == "StasisStart"
    assert "channel.id" in str(caught.value)
    assert "args" in str(caught.value)
    for sentinel in SENTINELS:
        assert sentinel not in str(caught.value)
    assert caught.value.__cause__ is None


PLAYBACK = {
    "id": "pb-1",
    "media_uri": "sound:helpline/welcome",
    "target_uri": "channel:1738317600.42",
    "language": "fr",
    "state": "playing",
}


@pytest.mark.parametrize(
    ("payload", "kind", "channel_id", "bridge_id"),
    [
        (event("StasisEnd", channel=channel()), StasisEnd, "1738317600.42", None),
        (event("ChannelStateChange", channel=channel()), ChannelStateChange, "1738317600.42", None),
        (
            event("ChannelHangupRequest", cause=16, soft=True, channel=channel()),
            ChannelHangupRequest,
            "1738317600.42",
            None,
        ),
        (
            event("ChannelDtmfReceived", digit="#", duration_ms=120, channel=channel()),
            ChannelDtmfReceived,
            "1738317600.42",
            None,
        ),
        (
            event("ChannelEnteredBridge", bridge=bridge(), channel=channel()),
            ChannelEnteredBridge,
            "1738317600.42",
            "hold-main",
        ),
        (
            event("ChannelEnteredBridge", bridge=bridge()),
            ChannelEnteredBridge,
            None,
            "hold-main",
        ),
        (
            event("ChannelLeftBridge", bridge=bridge(), channel=channel()),
            ChannelLeftBridge,
            "1738317600.42",
            "hold-main",
        ),
        (event("PlaybackStarted", playback=PLAYBACK), PlaybackStarted, "1738317600.42", None),
        (
            event("PlaybackFinished", playback={**PLAYBACK, "target_uri": "bridge:hold-main"}),
            PlaybackFinished,
            None,
            "hold-main",
        ),
        (
            event(
                "EndpointStateChange",
                endpoint={
                    "technology": "PJSIP",
                    "resource": "listener-7",
                    "state": "online",
                    "channel_ids": [],
                },
            ),
            EndpointStateChange,
            None,
            None,
        ),
        (
            event(
                "Dial",
                dialstatus="RINGING",
                dialstring="listener-7",
                forward="",
                peer=channel("offer-1"),
            ),
            Dial,
            "offer-1",
            None,
        ),
        (
            event("Dial", dialstatus="ANSWER", peer=channel("offer-1"), caller=channel("c-1")),
            Dial,
            "offer-1",
            None,
        ),
        (event("ApplicationReplaced"), ApplicationReplaced, None, None),
        (event("BridgeDestroyed", bridge=bridge()), BridgeDestroyed, None, "hold-main"),
    ],
)
def test_each_event_exposes_the_ids_a_dispatcher_routes_on(
    payload: dict[str, Any], kind: type, channel_id: str | None, bridge_id: str | None
) -> None:
    parsed = parse_event(payload)

    assert type(parsed) is kind
    assert parsed.channel_id == channel_id
    assert parsed.bridge_id == bridge_id


def test_field_values_of_smaller_events() -> None:
    dtmf = parse_event(event("ChannelDtmfReceived", digit="5", duration_ms=80, channel=channel()))
    hangup = parse_event(event("ChannelHangupRequest", channel=channel()))
    dial = parse_event(event("Dial", dialstatus="NOANSWER", peer=channel("offer-2")))

    assert isinstance(dtmf, ChannelDtmfReceived)
    assert (dtmf.digit, dtmf.duration_ms) == ("5", 80)
    assert isinstance(hangup, ChannelHangupRequest)
    assert (hangup.cause, hangup.soft) == (None, None)
    assert isinstance(dial, Dial)
    assert (dial.dialstatus, dial.caller) == ("NOANSWER", None)


def test_every_modelled_type_is_registered_under_its_own_name() -> None:
    assert set(EVENT_TYPES) == {
        "StasisStart",
        "StasisEnd",
        "ChannelStateChange",
        "ChannelDestroyed",
        "ChannelHangupRequest",
        "ChannelDtmfReceived",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
        "PlaybackStarted",
        "PlaybackFinished",
        "EndpointStateChange",
        "Dial",
        "ApplicationReplaced",
        "BridgeDestroyed",
    }
    for name, model in EVENT_TYPES.items():
        assert model.model_fields["type"].default == name


def test_timestamps_in_other_offsets_compare_as_instants() -> None:
    east = parse_event({**event("ApplicationReplaced"), "timestamp": "2025-01-31T11:00:00.000+0200"})
    west = parse_event({**event("ApplicationReplaced"), "timestamp": "2025-01-31T04:00:00.000-0500"})

    assert east.timestamp == west.timestamp == datetime(2025, 1, 31, 9, tzinfo=UTC)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
FIELD_NAMES = ["channel", "args", "cause", "bridge", "peer", "playback", "timestamp", "x"]


def parse_outcome(data: dict[str, Any]) -> object:
    try:
        return parse_event(data)
    except EventParseError as exc:
        return exc


# Parsing is fast; only a loaded CI machine could trip the timing checks.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from([*EVENT_TYPES, "SomethingElse", "ChannelVarset"]),
    fields=st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=4),
)
def test_any_json_object_parses_or_raises_only_event_parse_error(kind: str, fields: dict[str, Any]) -> None:
    outcome = parse_outcome({"type": kind, **fields})

    if isinstance(outcome, EventParseError):
        assert kind in EVENT_TYPES
        assert outcome.event_type == kind
    else:
        assert getattr(outcome, "type", None) == kind
