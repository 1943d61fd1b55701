"""Legs that could hold the line without being a call: a caller who never ACKs, malformed INVITEs, a far end
that goes silent and refuses the BYE, a listener's phone that vanished, and in-dialog requests that used to
get no answer at all (the carrier retransmits them for 32 s)."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from tests.e2e.conftest import (
    CALLER_NAME,
    CALLER_NUMBER,
    FAST,
    ServiceFactory,
    Sipp,
    add_listener,
    online_phone,
)
from tests.e2e.harness import RunningService
from tests.e2e.sipp import SippProcess

from helpline_pbx.ari.client import AriClient
from helpline_pbx.core import ListenerState
from helpline_pbx.core.events import CallerArrived
from helpline_pbx.roster.repository import Roster

# How long pjsip waits for the ACK of its 200 OK (Timer H = 64 x T1) before it ends the leg itself.
ACK_TIMEOUT = 32.0
# A response to the caller's in-dialog MESSAGE or INFO.
_IN_DIALOG_ANSWER = re.compile(r"\ASIP/2\.0 .*^CSeq:\s*\d+\s+(MESSAGE|INFO)\s*$", re.MULTILINE | re.DOTALL)


def _arrivals(svc: RunningService) -> list[CallerArrived]:
    return [e for e in svc.decisions.events() if isinstance(e, CallerArrived)]


def _status_line(message: str) -> str:
    return message.split("\r\n", 1)[0].split("\n", 1)[0]


def _reachable(svc: RunningService, listener_id: str) -> bool | None:
    for view in svc.board.queue.listeners():
        if view.listener_id == listener_id:
            return view.reachable
    return None


async def _endpoint_setting(ari: AriClient, endpoint: str, name: str) -> str:
    """One setting of a PJSIP endpoint as Asterisk runs it (pjsip.conf's or one the service pushed)."""
    fields = await ari.request("GET", f"/asterisk/config/dynamic/res_pjsip/endpoint/{endpoint}")
    return next(str(f["value"]) for f in fields if f["attribute"] == name)


async def test_a_caller_who_never_acks_holds_no_listener_and_a_real_caller_is_served(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A spoofed INVITE (its sender never sees the 200 OK, so never ACKs and sends no audio) is answered by
    Asterisk but never reaches the service: no listener rings, a real caller arriving meanwhile is
    offered and served, and nothing records the fake as a call."""
    camille = await add_listener(roster, "Camille")
    svc = await service(FAST)
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=500)

    fake = sipp.caller("caller_no_ack")
    await fake.wait_for_message_async(lambda m: m.startswith("SIP/2.0 200"), timeout=10)
    # The fake's leg is up, unacknowledged, waiting for audio: a real caller comes now.
    real = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    assert record.listener_id == camille.id
    assert (await real.wait_async(15)).exit_code == 0, real.errors()

    # The line ends the fake's leg by itself (no audio, and pjsip's ACK timeout at the latest).
    await fake.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=ACK_TIMEOUT + 10)
    assert len(_arrivals(svc)) == 1, svc.decisions.describe()
    assert [o.listener_id for o in svc.decisions.offers()] == [camille.id]
    assert len(svc.decisions.records()) == 1
    assert sum(m.startswith("INVITE ") for m in phone.messages()) == 1


async def test_a_never_acked_invite_with_audio_holds_no_listener_and_a_real_caller_is_served(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """The hostile case audio alone cannot catch: a sender that saw the 200 OK streams audio and never ACKs.
    Asterisk 22 shows neither the dialplan nor ARI whether the ACK came; the project's module marks the
    caller's channel when it does, and the dialplan waits for the ACK as for the audio. The fake never
    reaches the service, no listener rings for it, a real caller arriving meanwhile is offered and served,
    and nothing records the fake as a call."""
    camille = await add_listener(roster, "Camille")
    svc = await service(FAST)
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=500)

    fake = sipp.caller("caller_no_ack_rtp")
    await fake.wait_for_message_async(lambda m: m.startswith("SIP/2.0 200"), timeout=10)
    # The fake's leg is up, unacknowledged, its audio flowing: a real caller comes now.
    real = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    assert record.listener_id == camille.id
    assert (await real.wait_async(15)).exit_code == 0, real.errors()

    # pjsip sends the fake its BYE once it gives up on the ACK; by then it had still reached nobody.
    await fake.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=ACK_TIMEOUT + 10)
    assert len(_arrivals(svc)) == 1, svc.decisions.describe()
    assert [o.listener_id for o in svc.decisions.offers()] == [camille.id]
    assert len(svc.decisions.records()) == 1
    assert sum(m.startswith("INVITE ") for m in phone.messages()) == 1


@pytest.mark.parametrize(
    ("scenario", "answer"),
    [
        # pjsip takes the rest of the datagram as the body and answers; the leg then never ACKs nor sends
        # audio, so it ends in [helpline-no-audio] like any fake call.
        ("caller_bad_length", "SIP/2.0 200 OK"),
        # pjsip cannot parse the From: it drops the INVITE without a word.
        ("caller_bad_from", None),
    ],
)
async def test_a_malformed_invite_takes_no_listener(
    scenario: str, answer: str | None, roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """An INVITE whose Content-Length is larger than its body, or whose From is never terminated, never
    reaches the service: no listener rings for it, and the next real caller is served."""
    camille = await add_listener(roster, "Camille")
    svc = await service(FAST)
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=500)

    bad = sipp.caller(scenario)
    if answer:
        await bad.wait_for_message_async(lambda m: not m.startswith("SIP/2.0 100"), timeout=5)
    else:
        # The scenario listens 4 s (longer than the media wait) for an answer, then ends by itself.
        await bad.wait_async(15)
    finals = [_status_line(m) for m in bad.messages() if not m.startswith("SIP/2.0 100")]
    assert finals[:1] == ([answer] if answer else []), finals
    real = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    assert (await real.wait_async(15)).exit_code == 0, real.errors()
    # The malformed call's leg, if answered, ends without ever reaching the service.
    await bad.wait_async(ACK_TIMEOUT + 10)
    assert len(_arrivals(svc)) == 1, svc.decisions.describe()
    assert sum(m.startswith("INVITE ") for m in phone.messages()) == 1


async def test_a_caller_gone_silent_whose_bye_is_refused_is_ended_and_the_listener_freed(
    roster: Roster, service: ServiceFactory, sipp: Sipp, ari: AriClient
) -> None:
    """A bridged caller whose audio stops (the carrier lost the call) and who answers the BYE with 500: the
    trunk's RTP timeout ends the caller's leg, the listener's phone gets its BYE and takes calls again."""
    timeout = int(await _endpoint_setting(ari, "trunk", "rtp_timeout"))
    assert timeout > 0, "the trunk must end legs that carry no audio"
    camille = await add_listener(roster, "Camille")
    svc = await service(FAST)
    phone = await online_phone(svc, sipp, camille, "listener_answer_rtp")

    caller = sipp.caller("caller_goes_silent")
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) is ListenerState.ON_CALL, 15
    )
    bridged = time.monotonic()
    bye = await caller.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=timeout + 15)
    assert bye
    ended = time.monotonic() - bridged
    await phone.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=5)
    [record] = await svc.decisions.wait_records(1, timeout=10)
    assert record.listener_id == camille.id
    # The caller's audio stopped a second after it began: the leg ends one timeout later.
    assert ended <= timeout + 3, ended
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) is ListenerState.AVAILABLE, 10, "listener free"
    )


async def test_a_listener_phone_gone_silent_ends_its_leg_and_the_caller_is_not_left_on_a_dead_line(
    roster: Roster, service: ServiceFactory, sipp: Sipp, ari: AriClient
) -> None:
    """A listener's phone that dies mid-call (no audio, no BYE): the listener endpoint's RTP timeout ends its
    leg and the caller's call ends with it."""
    camille = await add_listener(roster, "Camille")
    svc = await service(FAST)
    timeout = int(await _endpoint_setting(ari, camille.endpoint, "rtp_timeout"))
    assert 0 < timeout <= 30
    # This phone answers and never sends a packet of audio.
    await online_phone(svc, sipp, camille, "listener_answer")
    caller = sipp.caller("caller")
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) is ListenerState.ON_CALL, 15
    )
    bridged = time.monotonic()
    await caller.wait_for_message_async(lambda m: m.startswith("BYE "), timeout=timeout + 15)
    assert time.monotonic() - bridged <= timeout + 3
    [record] = await svc.decisions.wait_records(1, timeout=10)
    assert record.listener_id == camille.id


async def test_a_vanished_phone_is_not_offered_once_qualify_fails(
    roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """A phone that registered and then vanished (killed: no unregister) stops answering Asterisk's OPTIONS;
    its listener shows unreachable and a caller goes to another listener, never to the dead phone."""
    gone = await add_listener(roster, "Gone")
    svc = await service(FAST)
    dead = await online_phone(svc, sipp, gone)
    # The other listener comes later: the vanished one has been idle longest, so would be offered first.
    other = await add_listener(roster, "Other")
    await online_phone(svc, sipp, other, "listener_answer_hangup", pause_ms=500)
    # The phones answer Asterisk's OPTIONS (SIPp's -aa): reachable while alive.
    await dead.wait_for_message_async(lambda m: m.startswith("OPTIONS "), timeout=40)
    assert _reachable(svc, gone.id) is True

    assert dead.pid is not None
    os.killpg(dead.pid, signal.SIGKILL)
    await svc.decisions.wait_for(lambda: _reachable(svc, gone.id) is False, 45, "vanished phone unreachable")

    caller = sipp.caller("caller")
    [record] = await svc.decisions.wait_records(1, timeout=30)
    assert record.outcome == "served"
    assert record.listener_id == other.id
    assert [o.listener_id for o in svc.decisions.offers()] == [other.id]
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()


@pytest.mark.parametrize(
    ("scenario", "method", "status", "info"),
    [
        # res_pjsip_messaging accepts it (the dialplan then drops its text).
        ("caller_in_dialog_message", "MESSAGE", 202, {}),
        # Asterisk 22 answers an INFO only for DTMF, an empty body, media control or one-touch recording,
        # and no configuration changes that (its session module claims every in-dialog request): the
        # project's module (asterisk-modules/res_helpline_dialog.c) answers any other type 415.
        ("caller_in_dialog_info", "INFO", 415, {}),
        # A DTMF INFO is still res_pjsip_dtmf_info's: answered once, 200, not refused by our module.
        (
            "caller_in_dialog_info",
            "INFO",
            200,
            {"info_type": "application/dtmf-relay", "info_body": "Signal=5"},
        ),
    ],
)
async def test_an_in_dialog_request_is_answered_within_2_s_and_the_call_goes_on(
    scenario: str,
    method: str,
    status: int,
    info: dict[str, str],
    roster: Roster,
    service: ServiceFactory,
    sipp: Sipp,
) -> None:
    """In a bridged caller's dialog, a MESSAGE, or an INFO of a content type nobody knows, gets a final
    response within 2 s (the scenario fails otherwise), a DTMF INFO its usual 200; the call goes on until
    the listener ends it, and nothing of the caller's request reaches the listener's phone."""
    camille = await add_listener(roster, "Camille")
    svc = await service(FAST)
    phone = await online_phone(svc, sipp, camille, "listener_answer_hangup", pause_ms=6000)

    caller = SippProcess(
        scenario,
        workdir=sipp.workdir,
        local_ip=sipp.asterisk.trunk_ip,
        remote=sipp.remote,
        service=sipp.line,
        variables={"caller_user": CALLER_NUMBER, "caller_name": CALLER_NAME, **info},
        calls=1,
        pause_ms=2500,
        lifetime=60,
    )
    sipp.processes.append(caller)
    caller.start()
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(camille.id) is ListenerState.ON_CALL, 15
    )
    result = await caller.wait_async(30)
    assert result.exit_code == 0, caller.errors()
    answers = [_status_line(m) for m in caller.messages() if _IN_DIALOG_ANSWER.search(m)]
    assert len(answers) == 1, answers
    assert answers[0].startswith(f"SIP/2.0 {status} "), answers
    [record] = await svc.decisions.wait_records(1, timeout=10)
    assert record.outcome == "served"
    # The listener ended the call after 6 s: the caller stayed connected through the request.
    assert record.talk_seconds >= 5.0
    assert not any("never-relayed" in m for m in phone.messages())
    assert not any(m.startswith(f"{method} ") for m in phone.messages())
