"""The SIPp scenarios of tests/sipp/, played against each other on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.sipp import (
    EXIT_ALL_CALLS_SUCCEEDED,
    EXIT_SOME_CALLS_FAILED,
    SippProcess,
)

SippFactory = Callable[..., SippProcess]

TIMEOUT = 15.0


def start_line(message: str) -> str:
    return message.split("\r\n", 1)[0]


def requests(messages: list[str], method: str) -> list[str]:
    return [m for m in messages if start_line(m).startswith(f"{method} sip:")]


def responses(messages: list[str], code: int) -> list[str]:
    return [m for m in messages if start_line(m).startswith(f"SIP/2.0 {code} ")]


def header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*?)\r$", message, re.MULTILINE | re.IGNORECASE)
    assert match is not None, f"no {name} header in {start_line(message)!r}"
    return match.group(1)


def via_branch(message: str) -> str:
    return header(message, "Via").split("branch=", 1)[1].split(";", 1)[0]


def listen(sipp: SippFactory, scenario: str | Path, **options: Any) -> SippProcess:
    process = sipp(scenario, **options)
    process.wait_listening()
    return process


def test_caller_hangs_up_on_an_answering_listener(sipp: SippFactory) -> None:
    """caller_hangup -> listener_answer: answered, then the caller's BYE ends both calls well."""
    listener = listen(sipp, "listener_answer", calls=1)
    caller = sipp("caller_hangup", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=300)

    caller_result = caller.wait(TIMEOUT)
    listener_result = listener.wait(TIMEOUT)

    assert (caller_result.exit_code, caller_result.successful_calls) == (EXIT_ALL_CALLS_SUCCEEDED, 1)
    assert (listener_result.exit_code, listener_result.successful_calls) == (
        EXIT_ALL_CALLS_SUCCEEDED,
        1,
    )
    received = [start_line(m).split()[0] for m in listener.messages()]
    assert received == ["INVITE", "ACK", "BYE"]
    invite = listener.messages()[0]
    assert "m=audio " in invite
    assert "a=rtpmap:0 PCMU/8000" in invite
    assert "a=sendrecv" in invite
    answer = responses(caller.messages(), 200)[0]
    assert "a=rtpmap:0 PCMU/8000" in answer


def test_busy_listener_fails_the_call(sipp: SippFactory) -> None:
    """caller -> listener_busy: the 486 is ACKed and the caller reports a failed call."""
    listener = listen(sipp, "listener_busy", calls=1)
    caller = sipp("caller", remote=f"127.0.0.1:{listener.port}", calls=1)

    caller_result = caller.wait(TIMEOUT)
    listener_result = listener.wait(TIMEOUT)

    assert caller_result.exit_code == EXIT_SOME_CALLS_FAILED
    assert (caller_result.successful_calls, caller_result.failed_calls) == (0, 1)
    assert not caller_result.all_succeeded
    assert listener_result.successful_calls == 1
    assert len(responses(caller.messages(), 486)) == 1
    assert len(requests(listener.messages(), "ACK")) == 1


def test_caller_abandons_a_ringing_listener(sipp: SippFactory) -> None:
    """caller_abandon -> listener_noanswer: CANCEL in the INVITE's transaction, 200, 487, ACK."""
    listener = listen(sipp, "listener_noanswer", calls=1)
    caller = sipp("caller_abandon", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=200)

    assert caller.wait(TIMEOUT).all_succeeded
    assert listener.wait(TIMEOUT).all_succeeded
    received = listener.messages()
    assert [start_line(m).split()[0] for m in received] == ["INVITE", "CANCEL", "ACK"]
    invite, cancel, ack = received
    assert via_branch(cancel) == via_branch(invite)
    assert via_branch(ack) == via_branch(invite)
    assert [start_line(m) for m in caller.messages()] == [
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "SIP/2.0 487 Request Terminated",
    ]
    assert header(caller.messages()[2], "CSeq") == "1 INVITE"


def test_caller_abandon_counts_an_early_answer_as_failed(sipp: SippFactory) -> None:
    """caller_abandon -> listener_answer: answered before the CANCEL, so ACK + BYE and a failure."""
    listener = listen(sipp, "listener_answer", calls=1)
    caller = sipp("caller_abandon", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=2000)

    assert caller.wait(TIMEOUT).failed_calls == 1
    assert listener.wait(TIMEOUT).all_succeeded
    assert [start_line(m).split()[0] for m in listener.messages()] == ["INVITE", "ACK", "BYE"]


def test_listener_hangs_up_first(sipp: SippFactory) -> None:
    """listener_answer_hangup -> caller: the BYE comes from the UAS, in the caller's dialog."""
    listener = listen(sipp, "listener_answer_hangup", calls=1, pause_ms=300)
    caller = sipp("caller", remote=f"127.0.0.1:{listener.port}", calls=1)

    assert caller.wait(TIMEOUT).all_succeeded
    assert listener.wait(TIMEOUT).all_succeeded
    (bye,) = requests(caller.messages(), "BYE")
    invite = requests(listener.messages(), "INVITE")[0]
    assert header(bye, "Call-ID") == header(invite, "Call-ID")
    assert header(bye, "To") == header(invite, "From")
    assert f"@127.0.0.1:{caller.port}" in start_line(bye)


async def test_runner_async_api(tmp_path: Path) -> None:
    """The same BYE-from-the-listener call, driven with the asyncio methods."""
    async with SippProcess("listener_answer_hangup", workdir=tmp_path, pause_ms=200) as listener:
        await listener.wait_listening_async()
        async with SippProcess(
            "caller", workdir=tmp_path, remote=f"127.0.0.1:{listener.port}", calls=1
        ) as caller:
            invite = await listener.wait_for_message_async(lambda m: m.startswith("INVITE "), timeout=TIMEOUT)
            assert header(invite, "To").startswith("<sip:")
            result = await caller.wait_async(TIMEOUT)
        stopped = await listener.stop_async()
    assert result.all_succeeded
    assert stopped is not None
    assert stopped.stopped
    assert stopped.successful_calls == 1
    assert not listener.running


def test_caller_hangup_fails_when_the_listener_hangs_up_first(sipp: SippFactory) -> None:
    """caller_hangup with a long talk time against a listener that hangs up: 200 to BYE, failure."""
    listener = listen(sipp, "listener_answer_hangup", calls=1, pause_ms=200)
    caller = sipp("caller_hangup", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=5000)

    assert caller.wait(TIMEOUT).failed_calls == 1
    assert listener.wait(TIMEOUT).all_succeeded
    assert len(responses(listener.messages(), 200)) == 1
    # Marking the failure must not make SIPp send a BYE of its own.
    assert not requests(listener.messages(), "BYE")


def test_caller_answers_a_reinvite_during_its_pause(
    sipp: SippFactory, test_scenario: Callable[[str], Path]
) -> None:
    """A re-INVITE in caller_hangup's pause gets 200 + SDP, then the pause resumes to the BYE."""
    listener = listen(sipp, test_scenario("reinviting_listener"), calls=1)
    caller = sipp("caller_hangup", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=800)

    assert caller.wait(TIMEOUT).all_succeeded
    assert listener.wait(TIMEOUT).all_succeeded
    received = [start_line(m) for m in listener.messages()]
    assert received[:3] == [
        f"INVITE sip:service@127.0.0.1:{listener.port} SIP/2.0",
        f"ACK sip:service@127.0.0.1:{listener.port} SIP/2.0",
        "SIP/2.0 200 OK",
    ]
    assert "a=sendrecv" in listener.messages()[2]
    assert received[3].startswith("BYE ")


def test_listener_answer_delay_rings_then_answers(sipp: SippFactory) -> None:
    """listener_answer_delay: 180, then 200 only after the -d ringing time."""
    listener = listen(sipp, "listener_answer_delay", calls=1, pause_ms=400)
    caller = sipp("caller_hangup", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=100)

    assert caller.wait(TIMEOUT).all_succeeded
    assert listener.wait(TIMEOUT).all_succeeded
    assert [start_line(m) for m in caller.messages()][:2] == ["SIP/2.0 180 Ringing", "SIP/2.0 200 OK"]


def test_listener_answer_delay_cancelled_while_ringing(sipp: SippFactory) -> None:
    """listener_answer_delay cancelled during its ringing pause: 200, 487, ACK, counted as failed."""
    listener = listen(sipp, "listener_answer_delay", calls=1, pause_ms=5000)
    caller = sipp("caller_abandon", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=200)

    assert caller.wait(TIMEOUT).all_succeeded
    assert listener.wait(TIMEOUT).failed_calls == 1
    assert [start_line(m).split()[0] for m in listener.messages()] == ["INVITE", "CANCEL", "ACK"]


def test_listener_serves_many_calls_and_records_every_message(sipp: SippFactory) -> None:
    """One listener_answer process takes several calls; messages() keeps all of them."""
    listener = listen(sipp, "listener_answer")
    caller = sipp("caller_hangup", remote=f"127.0.0.1:{listener.port}", calls=3, rate=10, pause_ms=100)

    assert caller.wait(TIMEOUT).successful_calls == 3
    stopped = listener.stop()
    assert stopped is not None
    assert stopped.successful_calls == 3
    invites = requests(listener.messages(), "INVITE")
    assert len({header(m, "Call-ID") for m in invites}) == 3


def test_messages_hold_the_injected_caller_identity(sipp: SippFactory) -> None:
    """-set caller_user/caller_name/extra_headers reach the listener's received INVITE."""
    listener = listen(sipp, "listener_answer", calls=1)
    caller = sipp(
        "caller_hangup",
        remote=f"127.0.0.1:{listener.port}",
        service="3114",
        calls=1,
        pause_ms=100,
        variables={
            "caller_user": "test-user-4242",
            "caller_name": "Test Display Name",
            "extra_headers": "P-Asserted-Identity: <sip:test-pai-77@example.invalid>\r\n"
            "Diversion: <sip:test-div-88@example.invalid>",
        },
    )

    assert caller.wait(TIMEOUT).all_succeeded
    listener.wait(TIMEOUT)
    invite = requests(listener.messages(), "INVITE")[0]
    assert start_line(invite) == f"INVITE sip:3114@127.0.0.1:{listener.port} SIP/2.0"
    assert header(invite, "From").startswith('"Test Display Name" <sip:test-user-4242@127.0.0.1:')
    assert header(invite, "P-Asserted-Identity") == "<sip:test-pai-77@example.invalid>"
    assert header(invite, "Diversion") == "<sip:test-div-88@example.invalid>"
    # The whole message is there, body included, exactly as long as it says.
    body = invite.split("\r\n\r\n", 1)[1]
    assert len(body.encode()) == int(header(invite, "Content-Length"))


def test_caller_identity_defaults(sipp: SippFactory) -> None:
    """Without -set, the caller scenarios still run, with their documented default identity."""
    listener = listen(sipp, "listener_answer", calls=1)
    caller = sipp("caller_hangup", remote=f"127.0.0.1:{listener.port}", calls=1, pause_ms=50)

    assert caller.wait(TIMEOUT).all_succeeded
    invite = listener.wait_for_message(lambda m: m.startswith("INVITE "), timeout=TIMEOUT)
    assert header(invite, "From").startswith('"SIPp Caller" <sip:sipp-caller@')
    assert "P-Asserted-Identity" not in invite


def test_register_with_digest_auth_and_contact_port(
    sipp: SippFactory, test_scenario: Callable[[str], Path]
) -> None:
    """listener_register answers the 401 with digest credentials; Contact names the UAS port."""
    registrar = listen(
        sipp,
        test_scenario("registrar"),
        calls=1,
        variables={"reg_user": "listener7", "reg_password": "s3cret"},
    )
    phone = sipp(
        "listener_register",
        remote=f"127.0.0.1:{registrar.port}",
        service="listener7",
        auth_password="s3cret",
        calls=1,
        variables={"contact_port": "5071", "expires": "120"},
    )

    assert phone.wait(TIMEOUT).all_succeeded
    assert registrar.wait(TIMEOUT).all_succeeded
    first, second = requests(registrar.messages(), "REGISTER")
    assert "Authorization" not in first
    assert header(second, "Authorization").startswith('Digest username="listener7"')
    assert header(second, "Contact") == "<sip:listener7@127.0.0.1:5071;transport=UDP>"
    assert header(second, "Expires") == "120"


def test_register_with_a_wrong_password_fails(
    sipp: SippFactory, test_scenario: Callable[[str], Path]
) -> None:
    """A rejected REGISTER (403) is a failed call for listener_register."""
    registrar = listen(
        sipp,
        test_scenario("registrar"),
        calls=1,
        variables={"reg_user": "listener7", "reg_password": "s3cret"},
    )
    phone = sipp(
        "listener_register",
        remote=f"127.0.0.1:{registrar.port}",
        service="listener7",
        auth_password="wrong",
        calls=1,
    )

    assert phone.wait(TIMEOUT).failed_calls == 1
    assert registrar.wait(TIMEOUT).failed_calls == 1
    assert responses(phone.messages(), 403)


def test_unregister_defaults_contact_to_own_port(
    sipp: SippFactory, test_scenario: Callable[[str], Path]
) -> None:
    """expires=0 unregisters; without contact_port the Contact is the register process's port."""
    registrar = listen(
        sipp,
        test_scenario("registrar"),
        calls=1,
        variables={"reg_user": "listener7", "reg_password": "s3cret"},
    )
    phone = sipp(
        "listener_register",
        remote=f"127.0.0.1:{registrar.port}",
        service="listener7",
        auth_password="s3cret",
        calls=1,
        variables={"expires": "0"},
    )

    assert phone.wait(TIMEOUT).all_succeeded
    registrar.wait(TIMEOUT)
    last = requests(registrar.messages(), "REGISTER")[-1]
    assert header(last, "Contact") == f"<sip:listener7@127.0.0.1:{phone.port};transport=UDP>"
    assert header(last, "Expires") == "0"
