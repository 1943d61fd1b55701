"""Which security events become auth-failure lines, and what a line holds: never anything of a caller."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpline_pbx.core.auth_failures import AuthFailure, auth_failure, log_line

NOW = datetime(2026, 12, 2, 12, 48, 1, 985000, tzinfo=UTC)
LISTENERS = frozenset({"dominique-a1b2c3"})


def event(**headers: str) -> dict[str, str]:
    base = {
        "Event": "ChallengeResponseFailed",
        "Service": "PJSIP",
        "AccountID": "dominique-a1b2c3",
        "RemoteAddress": "IPV4/UDP/192.0.2.7/5062",
    }
    return {**base, **headers}


def test_a_wrong_password_for_a_listener_names_address_port_and_endpoint() -> None:
    failure = auth_failure(event(), LISTENERS, NOW)
    assert failure == AuthFailure(at=NOW, address="192.0.2.7", port=5062, endpoint="dominique-a1b2c3")
    assert log_line(failure) == (
        "2026-12-02T12:48:01Z helpline-pbx sip-auth-failure remote=192.0.2.7 port=5062 "
        "endpoint=dominique-a1b2c3\n"
    )


def test_an_account_that_is_no_listeners_is_logged_without_its_name() -> None:
    for account in ("<unknown>", "0639981234", "trunk"):
        failure = auth_failure(event(AccountID=account), LISTENERS, NOW)
        assert failure is not None
        assert failure.endpoint is None
        assert log_line(failure).endswith(" endpoint=-\n")
        assert account not in log_line(failure)


def test_ipv6_sources_are_written_in_their_canonical_form() -> None:
    failure = auth_failure(event(RemoteAddress="IPV6/UDP/2001:DB8:0::7/5060"), LISTENERS, NOW)
    assert failure is not None
    assert failure.address == "2001:db8::7"


@pytest.mark.parametrize(
    "headers",
    [
        # Other security events carry the From user (InvalidAccountID) or come from any request.
        {"Event": "InvalidAccountID", "AccountID": "0639981234"},
        {"Event": "ChallengeSent"},
        {"Event": "SuccessfulAuth"},
        {"Service": "AMI"},
        {"RemoteAddress": "IPV4/UDP/not-an-address/5060"},
        {"RemoteAddress": "IPV4/UDP/192.0.2.7/0"},
        {"RemoteAddress": "IPV4/UDP/192.0.2.7 remote=198.51.100.1/5060"},
        {"RemoteAddress": ""},
    ],
)
def test_anything_else_is_not_a_failed_login(headers: dict[str, str]) -> None:
    assert auth_failure(event(**headers), LISTENERS, NOW) is None


@given(account=st.text(max_size=40), session=st.text(max_size=80), extra=st.text(max_size=40))
def test_a_line_holds_only_the_kept_fields_whatever_the_event_carries(
    account: str, session: str, extra: str
) -> None:
    failure = auth_failure(
        event(AccountID=account, SessionID=session, Challenge=extra, Response=extra), LISTENERS, NOW
    )
    assert failure is not None
    # What a peer wrote (user names, Call-IDs) never reaches the line; only a known listener's endpoint.
    endpoint = account if account in LISTENERS else "-"
    assert log_line(failure) == (
        f"2026-12-02T12:48:01Z helpline-pbx sip-auth-failure remote=192.0.2.7 port=5062 endpoint={endpoint}\n"
    )
