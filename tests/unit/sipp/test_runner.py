"""The SIPp runner's parsing, port probing and process handling."""

from __future__ import annotations

import itertools
import socket
import stat
import time
from pathlib import Path

import pytest
from tests.e2e.sipp import (
    SippError,
    SippProcess,
    free_udp_port,
    parse_messages,
    parse_stats,
    scenario_path,
    udp_port_bound,
)

INVITE = (
    "INVITE sip:1@127.0.0.1:5060 SIP/2.0\r\n"
    "Content-Length: 58\r\n"
    "\r\n"
    # A body line that looks like the log's own separator must not split the entry.
    "----------------------------------------------- not a new entry\r\n"
)
OK = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


def log_entry(direction: str, text: str) -> str:
    size = len(text.encode())
    if direction == "received":
        line = f"UDP message received [{size}] bytes :"
    else:
        line = f"UDP message sent ({size} bytes):"
    return f"{'-' * 47} 2026-01-01\t10:00:00.000000\n{line}\n\n{text}\n"


def test_parse_messages_splits_by_announced_length() -> None:
    raw = (log_entry("received", INVITE) + log_entry("sent", OK)).encode()

    assert parse_messages(raw) == [("received", INVITE), ("sent", OK)]


def test_parse_stats_reads_the_last_cumulative_row() -> None:
    text = (
        "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n"
        "t0;0;0;0;0;\n"
        "t1;1;2;1;1;\n"
    )

    assert parse_stats(text) == {"SuccessfulCall": 2, "FailedCall": 1}
    assert parse_stats("") == {}


def test_udp_port_bound_follows_the_socket() -> None:
    port = free_udp_port("127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        assert udp_port_bound("127.0.0.1", port)
    assert not udp_port_bound("127.0.0.1", port)


def test_command_maps_options_to_sipp_flags(tmp_path: Path) -> None:
    process = SippProcess(
        "caller",
        workdir=tmp_path,
        local_port=5099,
        remote="127.0.0.1:5060",
        service="3114",
        keys={"k": "v"},
        variables={"caller_name": "A B"},
        calls=2,
        rate=0.5,
        pause_ms=1500,
        auth_user="u",
        auth_password="p",
        extra_args=["-rtp_echo"],
    )

    args = process.command()

    assert args[:2] == ["sipp", "127.0.0.1:5060"]
    pairs = set(itertools.pairwise(args))
    for pair in [
        ("-sf", str(scenario_path("caller"))),
        ("-p", "5099"),
        ("-m", "2"),
        ("-r", "0.5"),
        ("-d", "1500"),
        ("-s", "3114"),
        ("-au", "u"),
        ("-ap", "p"),
        ("-message_file", str(tmp_path / "caller_5099_messages.log")),
    ]:
        assert pair in pairs
    assert args[args.index("-key") : args.index("-key") + 3] == ["-key", "k", "v"]
    assert args[args.index("-set") : args.index("-set") + 3] == ["-set", "caller_name", "A B"]
    assert args[-1] == "-rtp_echo"


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SippProcess("no_such_scenario", workdir=tmp_path)


def test_wait_listening_reports_a_sipp_that_died(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text('<?xml version="1.0"?><scenario name="broken"><recv></scenario>')

    with SippProcess(broken, workdir=tmp_path) as process, pytest.raises(SippError):
        process.wait_listening(timeout=5)
    assert not process.running


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = tmp_path / "stubborn"
    stubborn.write_text(f"#!/bin/sh\ntrap '' TERM\n: > {ready}\nwhile :; do sleep 0.1; done\n")
    stubborn.chmod(stubborn.stat().st_mode | stat.S_IXUSR)

    process = SippProcess("caller", workdir=tmp_path, sipp_binary=str(stubborn)).start()
    # SIGTERM must arrive after the trap is set, or the shell simply dies of it.
    deadline = time.monotonic() + 5
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    result = process.stop(grace=0.3)

    assert result is not None
    assert result.stopped
    assert result.exit_code == -9
    assert not process.running


def test_wait_times_out_on_a_running_process(tmp_path: Path) -> None:
    with SippProcess("listener_answer", workdir=tmp_path) as listener:
        listener.wait_listening()
        with pytest.raises(TimeoutError):
            listener.wait(timeout=0.2)
        assert listener.running
    assert not listener.running
