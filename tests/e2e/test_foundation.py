"""Foundation: a call from the trunk reaches the Stasis application, and a listener's softphone receives an
INVITE originated through ARI."""

from __future__ import annotations

import asyncio

from tests.conftest import AsteriskUnderTest
from tests.e2e.conftest import CALLER_NAME, CALLER_NUMBER, Sipp
from tests.e2e.harness import wait_registered

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.models import StasisStart
from helpline_pbx.ari.stream import Connected, EventStream
from helpline_pbx.phones import listener_objects, sip_ha1


async def test_trunk_call_reaches_stasis_and_an_originated_invite_reaches_a_softphone(
    asterisk: AsteriskUnderTest, ari: AriClient, sipp: Sipp, app_name: str
) -> None:
    """Proves the foundation: the trunk, the dialplan, Stasis, ARI origination and a registered phone."""
    endpoint = "foundation-probe"
    secret = "probe-" + "x" * 20
    for object_type, fields in listener_objects(endpoint, sip_ha1(endpoint, secret)):
        await ari.put_config_object(object_type, endpoint, fields)

    # This test's number goes to this test's application (the dialplan reads the route from a global).
    await ari.set_global_variable(f"HELPLINE_APP_{sipp.line}", app_name)
    async with EventStream(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, app_name) as stream:
        assert isinstance(await anext(stream), Connected)

        phone = sipp.softphone(_probe_listener(endpoint, secret))
        await wait_registered(ari, endpoint)
        caller = sipp.caller()

        async with asyncio.timeout(15):
            async for item in stream:
                if isinstance(item, StasisStart) and item.args[:1] == ["caller"]:
                    caller_start = item
                    break
        # caller, the number dialled, the token and repeat count (empty: no screen runs in this test), the
        # menu choice (none: this number has no menu).
        assert caller_start.args == ["caller", sipp.line, "", "0", ""]
        # The dialplan already wiped the identity before Stasis: the raw event carries neither.
        raw = caller_start.model_dump_json()
        assert CALLER_NUMBER not in raw
        assert CALLER_NAME not in raw

        await ari.originate(
            "foundation-probe-leg", f"PJSIP/{endpoint}", app=app_name, app_args=["listener", "probe"]
        )
        invite = await phone.wait_for_message_async(lambda m: m.startswith("INVITE "), timeout=10)
        assert f"INVITE sip:{endpoint}@" in invite

        async with asyncio.timeout(10):
            async for item in stream:
                if isinstance(item, StasisStart) and item.channel.id == "foundation-probe-leg":
                    break
        for channel_id in (caller_start.channel.id, "foundation-probe-leg"):
            await ari.hangup(channel_id)
        result = await caller.wait_async(timeout=15)
        assert result.exit_code == 0, caller.errors()


def _probe_listener(endpoint: str, secret: str):  # type: ignore[no-untyped-def]
    """The two fields a softphone needs, shaped like a roster listener."""
    from types import SimpleNamespace

    return SimpleNamespace(endpoint=endpoint, sip_password=secret)
