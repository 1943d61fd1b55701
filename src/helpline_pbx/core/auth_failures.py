"""Failed SIP logins: which of Asterisk's security events become a line of the auth-failure log, and the line.

Only ``ChallengeResponseFailed`` counts: a phone answered a digest challenge with the wrong password. Its
``AccountID`` is the id of the endpoint it tried (configuration, never something the peer wrote) or
``<unknown>``, and only requests that tried to authenticate produce it, which the trunk's never do. The
line holds the time, the source address and port, and the endpoint when it is a listener's (else ``-``):
nothing else of the event, above all not its ``SessionID`` (the request's Call-ID, which a carrier may build
from the caller's number).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

FAILED_LOGIN_EVENT = "ChallengeResponseFailed"
# The only headers of an event the service keeps while reading it; the rest is dropped as it is read.
KEPT_HEADERS = frozenset({"Event", "Service", "AccountID", "RemoteAddress"})
# The words fail2ban's filter (deploy/fail2ban/filter.d/helpline-pbx-sip.conf) looks for.
LINE_TAG = "helpline-pbx sip-auth-failure"


@dataclass(frozen=True, slots=True)
class AuthFailure:
    at: datetime
    address: str
    port: int
    # The listener's endpoint the phone tried, None when it named no listener's.
    endpoint: str | None


def _remote(value: str) -> tuple[str, int] | None:
    # Asterisk writes addresses as "IPV4/UDP/192.0.2.7/5060" (IPV6/... for IPv6).
    parts = value.split("/")
    if len(parts) != 4 or parts[0] not in ("IPV4", "IPV6"):
        return None
    try:
        address = ipaddress.ip_address(parts[2])
        port = int(parts[3])
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    return str(address), port


def auth_failure(event: Mapping[str, str], listeners: Container[str], now: datetime) -> AuthFailure | None:
    """The failed login an AMI event reports, or None when it is not one."""
    if event.get("Event") != FAILED_LOGIN_EVENT or event.get("Service") != "PJSIP":
        return None
    remote = _remote(event.get("RemoteAddress", ""))
    if remote is None:
        return None
    account = event.get("AccountID", "")
    endpoint = account if account in listeners else None
    return AuthFailure(at=now.astimezone(UTC), address=remote[0], port=remote[1], endpoint=endpoint)


def log_line(failure: AuthFailure) -> str:
    """One line: ISO time in UTC, the tag, then key=value pairs; fail2ban reads the address after remote=."""
    when = failure.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return (
        f"{when}Z {LINE_TAG} remote={failure.address} port={failure.port} "
        f"endpoint={failure.endpoint or '-'}\n"
    )
