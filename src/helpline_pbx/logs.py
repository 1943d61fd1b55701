"""Structured logs (JSON lines) that refuse caller identities.

The dialplan wipes the caller's number and name before the service sees a call, so nothing here should
ever hold one. This processor is the second line of defence: any value that looks like a phone number is
replaced before the line is written, whatever key it sits under.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

# Six or more digits, possibly split by spaces, dots, dashes or parentheses, with an optional + or 00.
_PHONE_LIKE = re.compile(r"(?:\+|\b00)?\d(?:[\s.\-()]{0,2}\d){5,}")
# Asterisk's channel unique ids (epoch seconds, a dot, a sequence) are ids, not phone numbers.
_ASTERISK_UNIQUEID = re.compile(r"^\d{9,11}\.\d{1,9}$")
# Keys whose values are never logged at all, whatever they hold.
_FORBIDDEN_KEYS = frozenset(
    {
        "caller",
        "callerid",
        "caller_id",
        "caller_number",
        "caller_name",
        "number",
        "name",
        "ani",
        "from",
        "from_user",
        "connected",
        "dialplan",
        "password",
        "secret",
    }
)


# An Asterisk unique id inside a longer text (an ARI path such as /channels/1795900893.237/variable).
_UNIQUEID_INSIDE = re.compile(r"(?<![\d.])\d{9,11}\.\d{1,9}(?![\d.])")


def redact_text(value: str) -> str:
    """The text with every phone-number-like run replaced (Asterisk's channel ids are kept)."""
    if _ASTERISK_UNIQUEID.match(value):
        return value
    kept = _UNIQUEID_INSIDE.split(value)
    ids = _UNIQUEID_INSIDE.findall(value)
    out = [_PHONE_LIKE.sub(REDACTED, kept[0])]
    for uniqueid, rest in zip(ids, kept[1:], strict=True):
        out.extend((uniqueid, _PHONE_LIKE.sub(REDACTED, rest)))
    return "".join(out)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        # A bare integer of six digits or more could be a number typed without a leading zero.
        return REDACTED if abs(value) >= 100_000 else value
    if isinstance(value, Mapping):
        return {k: (REDACTED if str(k).lower() in _FORBIDDEN_KEYS else _redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v) for v in value]
    if isinstance(value, float):
        return value
    return redact_text(str(value))


def refuse_caller_identity(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop forbidden keys and redact phone-number-like values."""
    for key in list(event_dict):
        if key.lower() in _FORBIDDEN_KEYS:
            event_dict[key] = REDACTED
        elif key not in ("timestamp", "level", "logger"):
            event_dict[key] = _redact(event_dict[key])
    return event_dict


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on stdout (or the given stream), identities refused."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            refuse_caller_identity,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
