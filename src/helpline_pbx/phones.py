"""Listeners' phones: the PJSIP objects each active listener gets in Asterisk.

The service pushes them through ARI's dynamic configuration (sorcery memory objects), so a listener added
with the CLI can register at once and nobody edits pjsip.conf. The settings mirror the templates in
asterisk-config/pjsip.conf (a test keeps the two in step): above all, a listener's phone must learn nothing
about the caller (no PAI, RPID, Diversion or connected-line updates) and cannot transfer the caller away.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

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
    }
)

LISTENER_AOR: Mapping[str, str] = MappingProxyType(
    {
        "max_contacts": "1",
        "remove_existing": "yes",
        "minimum_expiration": "60",
        "default_expiration": "300",
        "maximum_expiration": "3600",
    }
)

LISTENER_AUTH: Mapping[str, str] = MappingProxyType({"auth_type": "userpass"})


def listener_objects(endpoint: str, secret: str) -> list[tuple[str, dict[str, str]]]:
    """The (object type, fields) to create for one listener, in the order Asterisk needs them."""
    return [
        ("auth", {**LISTENER_AUTH, "username": endpoint, "password": secret}),
        ("aor", dict(LISTENER_AOR)),
        ("endpoint", {**LISTENER_ENDPOINT, "auth": endpoint, "aors": endpoint}),
    ]
