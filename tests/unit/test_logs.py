"""The service's logs refuse anything that looks like a caller's number or name."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from helpline_pbx.logs import REDACTED, Redactor, configure_logging, redact_text

NUMBER_SPELLINGS = [
    "+33639981234",
    "0033639981234",
    "0639981234",
    "06 39 98 12 34",
    "06.39.98.12.34",
    "06-39-98-12-34",
    "(06) 39 98 12 34",
    "39981234",
]


@pytest.mark.parametrize("spelling", NUMBER_SPELLINGS)
def test_every_spelling_of_a_number_is_redacted(spelling: str) -> None:
    out = redact_text(f"call from {spelling} waiting")
    assert REDACTED in out
    assert "39981234" not in out.replace(" ", "").replace(".", "").replace("-", "")


@pytest.mark.parametrize("text", ["c-1a2b3c4d5e6f", "1795900893.237", "l-40899daa", "queue depth 3", "2026"])
def test_ids_and_small_numbers_are_kept(text: str) -> None:
    assert redact_text(text) == text


def _logged(**fields: object) -> dict[str, object]:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    try:
        structlog.get_logger("t").info("event", **fields)
    finally:
        configure_logging("info")
    parsed: dict[str, object] = json.loads(stream.getvalue())
    return parsed


def test_identity_keys_are_dropped_and_nested_values_redacted() -> None:
    line = _logged(
        caller_number="0639981234",
        caller_name="Jeanne Exemple",
        headers={"From": '"Jeanne" <sip:+33639981234@trunk>', "callerid": "x"},
        seen=["0033 6 39 98 12 34"],
        calls=3,
        big=639981234,
    )
    text = json.dumps(line)
    assert "39981234" not in text.replace(" ", "")
    assert "Jeanne" not in text
    assert line["caller_number"] == REDACTED
    assert line["calls"] == 3
    assert line["big"] == REDACTED


def test_asterisk_channel_ids_inside_paths_are_kept_and_numbers_beside_them_are_not() -> None:
    assert redact_text("/channels/1795900893.237/variable") == "/channels/1795900893.237/variable"
    out = redact_text("/channels/1795900893.237/x 0639981234")
    assert out.startswith("/channels/1795900893.237/x ")
    assert "0639981234" not in out


def test_generated_ids_never_look_like_phone_numbers() -> None:
    from helpline_pbx.switchboard.calls.legs import LegBook, readable_token

    for _ in range(2000):
        token = readable_token()
        assert redact_text(token) == token
    call = LegBook(call_id_prefix="helpline-").open_call("1795900893.1", "0800", "Écoute")
    assert redact_text(call.call_id) == call.call_id


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "127.0.0.1:5060", "sip:camille@192.168.10.20:5360", "agi://127.0.0.1:4573/screen"]
)
def test_ip_addresses_and_ports_are_kept(text: str) -> None:
    assert redact_text(text) == text


def test_a_number_beside_an_address_is_still_redacted() -> None:
    out = redact_text("sip:+33639981234@127.0.0.1:5060")
    assert out == f"sip:{REDACTED}@127.0.0.1:5060"


def test_a_number_spelled_with_dots_is_no_address() -> None:
    assert "39" not in redact_text("06.39.98.12.34").replace(REDACTED, "")
    assert REDACTED in redact_text("06.39.98.12")


def test_the_lines_numbers_are_kept_and_other_numbers_are_not() -> None:
    redactor = Redactor(["0800111111", "0800 222 222"])
    assert redactor.text("line 0800111111") == "line 0800111111"
    assert redactor.text("sip:0800222222@127.0.0.1") == "sip:0800222222@127.0.0.1"
    assert redactor.value(800111111) == REDACTED  # not the line's number as written: a caller's, maybe
    assert redactor.text("line 0800111111 from 0639981234") == f"line 0800111111 from {REDACTED}"
    # A caller's identity under its key goes, whatever it holds.
    line = redactor(None, "info", {"event": "x", "caller_number": "0800111111", "line": "0800111111"})
    assert line == {"event": "x", "caller_number": REDACTED, "line": "0800111111"}
    redactor.keep_numbers(["0800333333"])
    assert redactor.text("0800111111") == REDACTED


def test_the_logs_keep_the_numbers_the_service_tells_them() -> None:
    stream = io.StringIO()
    redactor = configure_logging("debug", stream=stream)
    try:
        redactor.keep_numbers(["0800123456"])
        structlog.get_logger("t").info("caller_arrived", line="0800123456", host="127.0.0.1")
    finally:
        configure_logging("info")
    assert json.loads(stream.getvalue())["line"] == "0800123456"
    assert json.loads(stream.getvalue())["host"] == "127.0.0.1"
