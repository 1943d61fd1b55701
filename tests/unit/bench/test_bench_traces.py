"""The bench's reading of SIPp message traces, and how it matches rings to calls."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from tests.bench.traces import (
    departures,
    first_invites,
    match_fifo,
    match_sequential,
    messages,
    percentile,
    summary_ms,
)

DASHES = "-" * 47


def entry(at: str, direction: str, text: str) -> bytes:
    """One entry as SIPp's -trace_msg writes it."""
    body = text.replace("\n", "\r\n")
    size = len(body.encode())
    head = (
        f"UDP message sent ({size} bytes):"
        if direction == "sent"
        else f"UDP message received [{size}] bytes :"
    )
    return f"{DASHES} 2026-12-03 {at}\n{head}\n\n{body}\n\n".encode()


def invite(call_id: str, *, to_tag: str = "") -> str:
    return (
        "INVITE sip:queue@127.0.0.1:5260 SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.77:5061;branch=z9hG4bK-1\n"
        'From: "Bench" <sip:caller@127.0.0.77:5061>;tag=1SIPpTag001\n'
        f"To: <sip:queue@127.0.0.1:5260>{to_tag}\n"
        f"Call-ID: {call_id}\n"
        "CSeq: 1 INVITE\n"
        "Content-Length: 0\n"
    )


def response(call_id: str, status: str = "100 Trying") -> str:
    return f"SIP/2.0 {status}\nCall-ID: {call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n"


def bye(call_id: str) -> str:
    return f"BYE sip:queue@127.0.0.1 SIP/2.0\nTo: <sip:q@h>;tag=x\nCall-ID: {call_id}\nCSeq: 2 BYE\n"


def at(clock: str) -> float:
    return datetime.strptime(f"2026-12-03 {clock}", "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_messages_read_time_direction_first_line_and_dialog() -> None:
    raw = entry("17:40:08.104643", "sent", invite("1-26@a")) + entry(
        "17:40:08.114492", "received", response("1-26@a")
    )
    found = list(messages(raw))
    assert [(m.received, m.first_line, m.call_id) for m in found] == [
        (False, "INVITE sip:queue@127.0.0.1:5260 SIP/2.0", "1-26@a"),
        (True, "SIP/2.0 100 Trying", "1-26@a"),
    ]
    assert found[1].at - found[0].at == pytest.approx(0.009849, abs=1e-6)


def test_first_invites_skip_retransmissions_reinvites_and_the_other_direction() -> None:
    raw = (
        entry("10:00:00.100000", "sent", invite("a"))
        # A retransmission of the same INVITE: the first send counts.
        + entry("10:00:00.600000", "sent", invite("a"))
        + entry("10:00:01.000000", "received", invite("b"))
        # A re-INVITE in dialog a carries the dialog's To tag: not a new call.
        + entry("10:00:02.000000", "sent", invite("c", to_tag=";tag=xyz"))
        + entry("10:00:03.000000", "sent", invite("d"))
    )
    assert first_invites(raw, received=False) == {"a": at("10:00:00.100000"), "d": at("10:00:03.000000")}
    assert first_invites(raw, received=True) == {"b": at("10:00:01.000000")}


def test_departures_are_the_first_bye_or_cancel_either_way() -> None:
    raw = (
        entry("10:00:00.000000", "sent", invite("a"))
        + entry("10:00:02.000000", "received", bye("a"))
        + entry("10:00:02.500000", "sent", bye("a"))
        + entry("10:00:03.000000", "sent", "CANCEL sip:x SIP/2.0\nCall-ID: b\nCSeq: 1 CANCEL\n")
    )
    assert departures(raw) == {"a": at("10:00:02.000000"), "b": at("10:00:03.000000")}


def test_a_trace_cut_mid_entry_yields_the_entries_before() -> None:
    raw = entry("10:00:00.000000", "sent", invite("a")) + f"{DASHES} 2026-12-03 10:00:01.0".encode()
    assert list(first_invites(raw, received=False)) == ["a"]


def test_sequential_calls_each_take_the_first_ring_of_their_own_window() -> None:
    sent = [10.0, 20.0, 30.0]
    # Call 2 rang nobody; a ring before any call (a warm-up call) is nobody's.
    rings = [5.0, 10.05, 30.2, 30.9]
    assert match_sequential(sent, rings) == [pytest.approx(0.05), None, pytest.approx(0.2)]


def test_sequential_matching_with_no_rings_at_all() -> None:
    assert match_sequential([1.0, 2.0], []) == [None, None]


def test_fifo_gives_each_ring_to_the_earliest_caller_still_waiting() -> None:
    calls = [(0.0, math.inf), (0.1, math.inf), (0.2, math.inf)]
    # Two listeners free at once: the first two callers ring; the third rings when one frees up.
    rings = [0.05, 0.15, 5.0]
    assert match_fifo(calls, rings) == [pytest.approx(0.05), pytest.approx(0.05), pytest.approx(4.8)]


def test_fifo_skips_callers_who_left_before_the_ring() -> None:
    # The first caller hung up at 1.0, before anyone was free: the ring at 2.0 is the second caller's.
    calls = [(0.0, 1.0), (0.5, math.inf)]
    assert match_fifo(calls, [2.0]) == [pytest.approx(1.5)]


def test_fifo_ignores_a_ring_before_any_caller() -> None:
    assert match_fifo([(1.0, math.inf)], [0.5, 1.2]) == [pytest.approx(0.2)]


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def test_summary_is_in_milliseconds() -> None:
    assert summary_ms([0.001, 0.002, 0.004]) == {
        "n": 3,
        "p50_ms": 2.0,
        "p90_ms": 4.0,
        "p99_ms": 4.0,
        "max_ms": 4.0,
    }
    assert summary_ms([])["p50_ms"] is None
