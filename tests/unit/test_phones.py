"""The listener phone settings pushed through ARI match the templates in pjsip.conf."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from helpline_pbx.phones import (
    LISTENER_AOR,
    LISTENER_AUTH,
    LISTENER_ENDPOINT,
    SIP_REALM,
    listener_objects,
    sip_ha1,
)

PJSIP_CONF = Path(__file__).resolve().parents[2] / "asterisk-config" / "pjsip.conf"


def _global(option: str) -> str:
    for line in PJSIP_CONF.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == option:
            return value.strip()
    raise KeyError(option)


def _template(name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=(";",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    text = PJSIP_CONF.read_text(encoding="utf-8").replace("](!)", "]")
    # Several sections share a name in pjsip.conf (endpoint + identify); only templates matter here.
    parser.read_string("\n".join(line for line in text.splitlines() if not line.startswith(";")))
    section = dict(parser[name])
    section.pop("type")
    return section


@pytest.mark.parametrize(
    ("template", "fields"),
    [
        ("listener-endpoint", LISTENER_ENDPOINT),
        ("listener-aor", LISTENER_AOR),
        ("listener-auth", LISTENER_AUTH),
    ],
)
def test_dynamic_objects_mirror_the_pjsip_templates(template: str, fields: dict[str, str]) -> None:
    assert _template(template) == dict(fields)


def test_the_digest_is_rfc_2617_ha1_in_the_realm_asterisk_challenges_with() -> None:
    # md5("alice:helpline:s3cret"), as `printf %s alice:helpline:s3cret | md5sum` prints it.
    assert sip_ha1("alice", "s3cret") == "f0f1047fc05fe89d3dc77a9a765920ce"
    assert _global("default_realm") == SIP_REALM == LISTENER_AUTH["realm"]


def test_listener_endpoint_leaks_no_identity_and_cannot_transfer() -> None:
    for key in ("send_pai", "send_rpid", "send_diversion", "send_connected_line", "trust_id_outbound"):
        assert LISTENER_ENDPOINT[key] == "no", key
    assert LISTENER_ENDPOINT["allow_transfer"] == "no"


def test_objects_reference_each_other_and_carry_only_the_digest() -> None:
    ha1 = sip_ha1("alice", "s3cret-generated-value")
    objects = dict(listener_objects("alice", ha1))
    assert list(dict(listener_objects("alice", "x"))) == ["auth", "aor", "endpoint"]
    assert objects["auth"]["username"] == "alice"
    assert objects["auth"]["auth_type"] == "digest"
    assert objects["auth"]["password_digest"] == f"md5:{ha1}"
    assert "password" not in objects["auth"]
    assert "s3cret-generated-value" not in repr(objects)
    assert objects["endpoint"]["auth"] == "alice"
    assert objects["endpoint"]["aors"] == "alice"


def test_a_dead_phone_or_a_silent_leg_is_found_out_and_a_message_goes_nowhere() -> None:
    # A vanished phone: an OPTIONS every 30 s at most, answered within a timeout shorter than the period.
    frequency = int(LISTENER_AOR["qualify_frequency"])
    assert 0 < frequency <= 30
    assert 0 < float(LISTENER_AOR["qualify_timeout"]) < frequency
    # A leg without audio ends, off hold and on hold.
    assert int(LISTENER_ENDPOINT["rtp_timeout"]) > 0
    assert int(LISTENER_ENDPOINT["rtp_timeout_hold"]) > 0
    # A phone's MESSAGE is routed to a context with no extension (404), never into the dialplan.
    context = LISTENER_ENDPOINT["message_context"]
    dialplan = (PJSIP_CONF.parents[1] / "dialplan" / "extensions.conf").read_text()
    section = dialplan.split(f"\n[{context}]\n", 1)[1].split("\n[", 1)[0]
    assert not [line for line in section.splitlines() if line.strip() and not line.startswith(";")]
