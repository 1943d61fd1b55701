"""AriClient against a fake ARI server: errors, auth, quoting and request shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from ari_fake_server import ARI_PASSWORD, ARI_USER, FakeAri
from pydantic import SecretStr

from helpline_pbx.ari import (
    AriClient,
    AriConflict,
    AriError,
    AriNotFound,
    AriServerError,
    AriUnauthorized,
    AriUnavailable,
    AriUnprocessable,
)
from helpline_pbx.ari.models import Application, Bridge, Channel, Endpoint, Playback

CHANNEL = {
    "id": "call-1",
    "name": "PJSIP/trunk-00000001",
    "state": "Up",
    "caller": {"name": "CALLER-NAME-SENTINEL", "number": "CALLER-NUMBER-SENTINEL"},
    "connected": {"name": "", "number": ""},
    "accountcode": "",
    "dialplan": {"context": "helpline-in", "exten": "s", "priority": 3},
    "creationtime": "2025-01-31T10:00:00.000+0100",
    "language": "fr",
}
BRIDGE = {
    "id": "hold-1",
    "technology": "holding_bridge",
    "bridge_type": "holding",
    "bridge_class": "stasis",
    "creator": "Stasis",
    "name": "waiting",
    "channels": ["call-1"],
    "creationtime": "2025-01-31T10:00:00.000+0100",
    "video_mode": "none",
}
PLAYBACK = {
    "id": "pb-1",
    "media_uri": "sound:hello-world",
    "target_uri": "channel:call-1",
    "language": "fr",
    "state": "queued",
}


@pytest.fixture
async def client(fake_ari: FakeAri) -> AsyncIterator[AriClient]:
    async with AriClient(fake_ari.base_url, ARI_USER, SecretStr(ARI_PASSWORD)) as ari:
        yield ari


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (400, AriUnprocessable, "bad_request"),
        (401, AriUnauthorized, "unauthorized"),
        (404, AriNotFound, "not_found"),
        (409, AriConflict, "conflict"),
        (422, AriUnprocessable, "bad_request"),
        (500, AriServerError, "server_error"),
        (503, AriServerError, "server_error"),
    ],
)
async def test_http_errors_map_to_stable_codes(
    fake_ari: FakeAri, client: AriClient, status: int, error: type[AriError], code: str
) -> None:
    fake_ari.reply("POST", "/channels/call-1/answer", status, {"message": "Channel not found"})

    with pytest.raises(error) as caught:
        await client.answer("call-1")

    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.detail == "Channel not found"
    assert "POST /channels/call-1/answer" in str(caught.value)


async def test_unlisted_status_is_a_plain_ari_error(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("GET", "/channels", 418, {"message": "teapot"})

    with pytest.raises(AriError) as caught:
        await client.list_channels()

    assert type(caught.value) is AriError
    assert caught.value.code == "ari_error"


async def test_error_message_never_carries_the_request_body_or_query(
    fake_ari: FakeAri, client: AriClient
) -> None:
    fake_ari.reply("POST", "/channels/out-1", 400, {"message": "Invalid parameters"})

    with pytest.raises(AriUnprocessable) as caught:
        await client.originate(
            "out-1",
            "PJSIP/listener-7",
            app="helpline",
            caller_id="QUERY-SENTINEL",
            variables={"X": "BODY-SENTINEL"},
        )

    assert "QUERY-SENTINEL" not in str(caught.value)
    assert "BODY-SENTINEL" not in str(caught.value)
    assert str(caught.value) == "POST /channels/out-1 -> 400: Invalid parameters"


async def test_connection_refused_is_unavailable(closed_port: int) -> None:
    async with AriClient(f"http://127.0.0.1:{closed_port}/ari", ARI_USER, ARI_PASSWORD) as ari:
        with pytest.raises(AriUnavailable) as caught:
            await ari.list_bridges()

    assert caught.value.code == "unavailable"
    assert caught.value.status is None
    assert "GET /bridges" in str(caught.value)


async def test_timeout_is_unavailable(fake_ari: FakeAri) -> None:
    fake_ari.hang("GET", "/asterisk/info")

    async with AriClient(fake_ari.base_url, ARI_USER, ARI_PASSWORD, timeout=0.2) as ari:
        with pytest.raises(AriUnavailable) as caught:
            await ari.asterisk_info()

    assert caught.value.code == "unavailable"
    assert "timed out" in str(caught.value)


async def test_basic_auth_goes_in_a_header_and_never_in_the_url(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("GET", "/channels", 200, [])

    await client.list_channels()

    sent = fake_ari.last()
    expected = base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()
    assert sent.headers["Authorization"] == f"Basic {expected}"
    assert ARI_PASSWORD not in sent.raw_target
    assert ARI_USER not in sent.raw_target
    assert "api_key" not in sent.query


def test_credentials_in_the_base_url_are_refused() -> None:
    with pytest.raises(ValueError, match="credentials"):
        AriClient("http://user:pw@127.0.0.1:8088/ari", ARI_USER, ARI_PASSWORD)


async def test_path_segments_are_quoted(fake_ari: FakeAri, client: AriClient) -> None:
    await client.answer("odd id/with?hash#")
    await client.put_config_object("endpoint", "a/b", {"context": "x"})

    assert fake_ari.requests[0].raw_path == "/ari/channels/odd%20id%2Fwith%3Fhash%23/answer"
    assert fake_ari.requests[1].raw_path == "/ari/asterisk/config/dynamic/res_pjsip/endpoint/a%2Fb"


async def test_originate_posts_with_our_id_params_and_variables(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("POST", "/channels/out-1", 200, {**CHANNEL, "id": "out-1", "state": "Down"})

    channel = await client.originate(
        "out-1",
        "PJSIP/listener-7",
        app="helpline",
        app_args=["listener", "call-1"],
        caller_id="Helpline <0>",
        timeout=25,
        variables={"HELPLINE_CALL": "call-1"},
    )

    sent = fake_ari.last()
    assert (sent.method, sent.raw_path) == ("POST", "/ari/channels/out-1")
    assert sent.query == {
        "endpoint": "PJSIP/listener-7",
        "app": "helpline",
        "appArgs": "listener,call-1",
        "callerId": "Helpline <0>",
        "timeout": "25",
    }
    assert json.loads(sent.body) == {"variables": {"HELPLINE_CALL": "call-1"}}
    assert isinstance(channel, Channel)
    assert (channel.id, channel.state) == ("out-1", "Down")


async def test_originate_omits_what_was_not_given(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("POST", "/channels/out-2", 200, {**CHANNEL, "id": "out-2"})

    await client.originate("out-2", "PJSIP/listener-7", app="helpline")

    sent = fake_ari.last()
    assert sent.query == {"endpoint": "PJSIP/listener-7", "app": "helpline"}
    assert sent.body == b""


async def test_originate_refuses_commas_in_stasis_args(fake_ari: FakeAri, client: AriClient) -> None:
    with pytest.raises(ValueError, match="commas"):
        await client.originate("out-3", "PJSIP/l", app="helpline", app_args=["a,b"])

    assert fake_ari.requests == []


Call = Callable[[AriClient], Awaitable[Any]]


@pytest.mark.parametrize(
    ("call", "method", "raw_path", "query"),
    [
        (lambda c: c.destroy_bridge("hold-1"), "DELETE", "/bridges/hold-1", {}),
        (
            lambda c: c.add_channel("talk-1", "call-1"),
            "POST",
            "/bridges/talk-1/addChannel",
            {"channel": "call-1", "inhibitConnectedLineUpdates": "true"},
        ),
        (
            lambda c: c.add_channel(
                "talk-1", ["a", "b"], inhibit_connected_line_updates=False, role="participant"
            ),
            "POST",
            "/bridges/talk-1/addChannel",
            {"channel": "a,b", "inhibitConnectedLineUpdates": "false", "role": "participant"},
        ),
        (
            lambda c: c.remove_channel("talk-1", "call-1"),
            "POST",
            "/bridges/talk-1/removeChannel",
            {"channel": "call-1"},
        ),
        (
            lambda c: c.start_moh("hold-1"),
            "POST",
            "/bridges/hold-1/moh",
            {"mohClass": "default"},
        ),
        (lambda c: c.stop_moh("hold-1"), "DELETE", "/bridges/hold-1/moh", {}),
        (lambda c: c.stop_playback("pb-1"), "DELETE", "/playbacks/pb-1", {}),
        (lambda c: c.hangup("call-1"), "DELETE", "/channels/call-1", {"reason": "normal"}),
        (
            lambda c: c.hangup("call-1", reason="busy"),
            "DELETE",
            "/channels/call-1",
            {"reason": "busy"},
        ),
        (lambda c: c.answer("call-1"), "POST", "/channels/call-1/answer", {}),
        (lambda c: c.ring("call-1"), "POST", "/channels/call-1/ring", {}),
        (
            lambda c: c.continue_in_dialplan("call-1", "helpline-fallback", "s", 1),
            "POST",
            "/channels/call-1/continue",
            {"context": "helpline-fallback", "extension": "s", "priority": "1"},
        ),
        (
            lambda c: c.continue_in_dialplan("call-1", "fb", "s", None, label="busy"),
            "POST",
            "/channels/call-1/continue",
            {"context": "fb", "extension": "s", "label": "busy"},
        ),
        (
            lambda c: c.set_variable("call-1", "HELPLINE_STATE", "queued"),
            "POST",
            "/channels/call-1/variable",
            {"variable": "HELPLINE_STATE", "value": "queued"},
        ),
        (
            lambda c: c.delete_config_object("auth", "listener-7"),
            "DELETE",
            "/asterisk/config/dynamic/res_pjsip/auth/listener-7",
            {},
        ),
    ],
)
async def test_commands_hit_the_documented_endpoints(
    fake_ari: FakeAri,
    client: AriClient,
    call: Call,
    method: str,
    raw_path: str,
    query: dict[str, str],
) -> None:
    assert await call(client) is None

    sent = fake_ari.last()
    assert (sent.method, sent.raw_path, sent.query) == (method, "/ari" + raw_path, query)


async def test_create_bridge_with_type_and_name(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("POST", "/bridges/hold-1", 200, BRIDGE)

    bridge = await client.create_bridge("hold-1", "holding", name="waiting")

    assert fake_ari.last().query == {"type": "holding", "name": "waiting"}
    assert isinstance(bridge, Bridge)
    assert (bridge.id, bridge.bridge_type, bridge.channels) == ("hold-1", "holding", ["call-1"])


async def test_play_on_a_channel_and_a_bridge_with_our_playback_id(
    fake_ari: FakeAri, client: AriClient
) -> None:
    fake_ari.reply("POST", "/channels/call-1/play/pb-1", 200, PLAYBACK)
    fake_ari.reply("POST", "/bridges/hold-1/play/pb-2", 200, {**PLAYBACK, "id": "pb-2"})

    on_channel = await client.play("call-1", "sound:hello-world", "pb-1")
    on_bridge = await client.play_on_bridge("hold-1", ["sound:a", "sound:b"], "pb-2")

    assert fake_ari.requests[0].query == {"media": "sound:hello-world"}
    assert fake_ari.requests[1].query == {"media": "sound:a,sound:b"}
    assert isinstance(on_channel, Playback)
    assert (on_channel.id, on_bridge.id) == ("pb-1", "pb-2")


async def test_put_config_object_sends_fields_and_returns_them(fake_ari: FakeAri, client: AriClient) -> None:
    stored = [{"attribute": "context", "value": "listeners"}, {"attribute": "allow", "value": ""}]
    fake_ari.reply("PUT", "/asterisk/config/dynamic/res_pjsip/endpoint/listener-7", 200, stored)

    fields = await client.put_config_object(
        "endpoint", "listener-7", {"context": "listeners", "allow_transfer": "no"}
    )

    assert json.loads(fake_ari.last().body) == {
        "fields": [
            {"attribute": "context", "value": "listeners"},
            {"attribute": "allow_transfer", "value": "no"},
        ]
    }
    assert fields == {"context": "listeners", "allow": ""}


async def test_subscribe_posts_the_event_source(fake_ari: FakeAri, client: AriClient) -> None:
    app = {"name": "helpline", "channel_ids": [], "bridge_ids": [], "endpoint_ids": ["PJSIP"]}
    fake_ari.reply("POST", "/applications/helpline/subscription", 200, app)

    result = await client.subscribe("helpline", "endpoint:PJSIP")

    assert fake_ari.last().query == {"eventSource": "endpoint:PJSIP"}
    assert isinstance(result, Application)
    assert result.endpoint_ids == ["PJSIP"]


async def test_resources_come_back_typed(fake_ari: FakeAri, client: AriClient) -> None:
    endpoint = {"technology": "PJSIP", "resource": "listener-7", "state": "online"}
    fake_ari.reply("GET", "/channels", 200, [CHANNEL])
    fake_ari.reply("GET", "/channels/call-1", 200, CHANNEL)
    fake_ari.reply("GET", "/bridges", 200, [BRIDGE])
    fake_ari.reply("GET", "/endpoints/PJSIP", 200, [endpoint])
    fake_ari.reply("GET", "/endpoints/PJSIP/listener-7", 200, {**endpoint, "channel_ids": ["x"]})
    fake_ari.reply("GET", "/applications/helpline", 200, {"name": "helpline", "bridge_ids": ["b"]})
    fake_ari.reply(
        "GET",
        "/asterisk/info",
        200,
        {
            "system": {"version": "22.10.1", "entity_id": "00:11:22:33:44:55"},
            "status": {
                "startup_time": "2025-01-31T09:00:00.000+0100",
                "last_reload_time": "2025-01-31T09:00:00.000+0100",
            },
            "build": {"os": "Linux"},
        },
    )

    channels = await client.list_channels()
    channel = await client.get_channel("call-1")
    bridges = await client.list_bridges()
    endpoints = await client.list_endpoints()
    one = await client.get_endpoint("PJSIP", "listener-7")
    app = await client.get_application("helpline")
    info = await client.asterisk_info()

    assert channels == [channel]
    assert channel.dialplan is not None
    assert channel.dialplan.context == "helpline-in"
    assert channel.creationtime is not None
    assert channel.creationtime.utcoffset() is not None
    assert [b.id for b in bridges] == ["hold-1"]
    assert endpoints == [Endpoint(technology="PJSIP", resource="listener-7", state="online")]
    assert one.channel_ids == ["x"]
    assert app.bridge_ids == ["b"]
    assert info.system is not None
    assert info.system.version == "22.10.1"


async def test_channels_never_hold_the_caller_identity(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("GET", "/channels/call-1", 200, CHANNEL)

    channel = await client.get_channel("call-1")

    dumped = repr(channel) + channel.model_dump_json()
    assert "SENTINEL" not in dumped
    assert not hasattr(channel, "caller")


async def test_get_variable_returns_the_value(fake_ari: FakeAri, client: AriClient) -> None:
    fake_ari.reply("GET", "/channels/call-1/variable", 200, {"value": "tok-abc"})

    assert await client.get_variable("call-1", "HELPLINE_TOKEN") == "tok-abc"
    assert fake_ari.last().query == {"variable": "HELPLINE_TOKEN"}


async def test_a_shared_session_is_left_open(fake_ari: FakeAri) -> None:
    async with aiohttp.ClientSession() as session:
        async with AriClient(fake_ari.base_url, ARI_USER, ARI_PASSWORD, session=session) as ari:
            await ari.answer("call-1")

        assert not session.closed
    assert fake_ari.last().raw_path == "/ari/channels/call-1/answer"


@pytest.mark.parametrize(
    ("path", "reply"),
    [
        ("/channels", b"<html>proxy error</html>"),
        ("/channels", {"not": "a list"}),
        ("/channels", [{"id": "no-name-or-state"}]),
        ("/channels/call-1", ["not", "an", "object"]),
    ],
)
async def test_a_reply_of_the_wrong_shape_is_a_server_error(
    fake_ari: FakeAri, client: AriClient, path: str, reply: Any
) -> None:
    # Asterisk answers JSON of the documented shape; anything else means a proxy or bad URL.
    fake_ari.reply("GET", path, 200, reply)

    call = client.list_channels() if path == "/channels" else client.get_channel("call-1")
    with pytest.raises(AriServerError) as caught:
        await call

    assert caught.value.code == "server_error"
    assert f"GET {path}" in str(caught.value)
