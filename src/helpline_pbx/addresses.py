"""What a host setting names: an IP address, a loopback one. Shared by the screen's server (which refuses
to listen off loopback unless told), the console's settings and its certificate."""

from __future__ import annotations

import ipaddress


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    return is_ip(host) and ipaddress.ip_address(host).is_loopback
