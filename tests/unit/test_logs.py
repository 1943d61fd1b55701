"""The service's logs refuse anything that looks like a caller's number or name."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from helpline_pbx.logs import REDACTED, configure_logging, redact_text

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
    from helpline_pbx.switchboard.legs import LegBook, readable_token

    for _ in range(2000):
        token = readable_token()
        assert redact_text(token) == token
    call = LegBook(call_id_prefix="helpline-").open_call("1795900893.1", "0800", "Écoute")
    assert redact_text(call.call_id) == call.call_id
