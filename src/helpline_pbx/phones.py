"""Listeners' phones: the PJSIP objects each active listener gets in Asterisk.

The service pushes them through ARI's dynamic configuration (sorcery memory objects), so a listener added
with the CLI can register at once and nobody edits pjsip.conf. The settings mirror the templates in
asterisk-config/pjsip.conf (a test keeps the two in step): above all, a listener's phone must learn nothing
about the caller (no PAI, RPID, Diversion or connected-line updates) and cannot transfer the caller away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

# pjsip.conf's default_realm; each listener's auth names it too, because the stored digest is bound to it.
SIP_REALM = "helpline"

LISTENER_ENDPOINT: Mapping[str, str] = MappingProxyType(
    {
        "transport": "transport-udp",
        "context": "from-listeners",
        "disallow": "all",
        "allow": "ulaw,alaw",
        "direct_media": "no",
        "rtp_symmetric": "yes",
        "force_rport": "yes",
        "rewrite_contact": "yes",
        "dtmf_mode": "rfc4733",
        "send_pai": "no",
        "send_rpid": "no",
        "send_diversion": "no",
        "send_connected_line": "no",
        "trust_id_outbound": "no",
        "trust_id_inbound": "no",
        "trust_connected_line": "no",
        "send_history_info": "no",
        "allow_transfer": "no",
        "allow_subscribe": "no",
        "language": "fr",
        # A leg with no audio for 30 s (300 s on hold) is ended: a phone that died mid-call frees the caller.
        "rtp_timeout": "30",
        "rtp_timeout_hold": "300",
        # A phone's MESSAGE is answered (404 out of a call) and reaches nobody: [no-messages] is empty.
        "message_context": "no-messages",
    }
)

LISTENER_AOR: Mapping[str, str] = MappingProxyType(
    {
        "max_contacts": "1",
        "remove_existing": "yes",
        "minimum_expiration": "60",
        "default_expiration": "300",
        "maximum_expiration": "3600",
        # A phone gone without unregistering is found out within about 35 s (OPTIONS every 30 s, 5 s to
        # answer): its contact turns Unreachable, the endpoint offline, and the line rings it no more.
        "qualify_frequency": "30",
        "qualify_timeout": "5.0",
    }
)

# Asterisk authenticates the phone from the digest HA1 = md5(user:realm:password): the roster keeps that,
# never the password ("digest" + password_digest is what Asterisk 22 wants; "md5" + md5_cred is deprecated).
LISTENER_AUTH: Mapping[str, str] = MappingProxyType({"auth_type": "digest", "realm": SIP_REALM})


def sip_ha1(endpoint: str, password: str) -> str:
    """The SIP digest HA1 of a listener's password: what Asterisk needs, useless as a password elsewhere."""
    return hashlib.md5(f"{endpoint}:{SIP_REALM}:{password}".encode(), usedforsecurity=False).hexdigest()


def listener_objects(endpoint: str, ha1: str) -> list[tuple[str, dict[str, str]]]:
    """The (object type, fields) to create for one listener, in the order Asterisk needs them; ha1 is
    sip_ha1(endpoint, password)."""
    return [
        ("auth", {**LISTENER_AUTH, "username": endpoint, "password_digest": f"md5:{ha1}"}),
        ("aor", dict(LISTENER_AOR)),
        ("endpoint", {**LISTENER_ENDPOINT, "auth": endpoint, "aors": endpoint}),
    ]
