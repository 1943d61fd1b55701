"""Structured logs (JSON lines) that refuse caller identities.

The dialplan wipes the caller's number and name before the service sees a call, so nothing here should
ever hold one. This processor is the second line of defence: any value that looks like a phone number is
replaced before the line is written, whatever key it sits under. What an ops engineer needs stays: the
numbers of the line's own lines (the service tells the processor which they are), IPv4 addresses (with a
port) and Asterisk's channel ids.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
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


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# What is kept whole inside a text: an Asterisk unique id (an ARI path such as
# /channels/1795900893.237/variable), or an IPv4 address with an optional port. Octets with a leading zero
# ("06.39.98.12") are no address: a number spelled with dots stays a number.
_KEPT_INSIDE = re.compile(
    r"(?<![\d.])(?:\d{9,11}\.\d{1,9}|" + _OCTET + r"(?:\." + _OCTET + r"){3}(?::\d{1,5})?)(?![\d.])"
)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


class Redactor:
    """Replaces caller identities; keeps the line's own numbers, which the service tells it."""

    def __init__(self, line_numbers: Iterable[str] = ()) -> None:
        self._line_numbers: frozenset[str] = frozenset()
        self.keep_numbers(line_numbers)

    def keep_numbers(self, numbers: Iterable[str]) -> None:
        """The numbers of the configured lines: logged as they are (they are the line's, not a caller's)."""
        self._line_numbers = frozenset(d for d in map(_digits, numbers) if d)

    def _phone_like(self, match: re.Match[str]) -> str:
        return match.group(0) if _digits(match.group(0)) in self._line_numbers else REDACTED

    def _scrub(self, text: str) -> str:
        return _PHONE_LIKE.sub(self._phone_like, text)

    def text(self, value: str) -> str:
        """The text with every phone-number-like run that is no line's number replaced (ids and IPv4
        addresses are kept)."""
        if _ASTERISK_UNIQUEID.match(value):
            return value
        out: list[str] = []
        start = 0
        for kept in _KEPT_INSIDE.finditer(value):
            out.extend((self._scrub(value[start : kept.start()]), kept.group(0)))
            start = kept.end()
        out.append(self._scrub(value[start:]))
        return "".join(out)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            # A bare integer of six digits or more could be a number typed without a leading zero.
            return REDACTED if abs(value) >= 100_000 and str(abs(value)) not in self._line_numbers else value
        if isinstance(value, Mapping):
            return {
                k: (REDACTED if str(k).lower() in _FORBIDDEN_KEYS else self.value(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, float):
            return value
        return self.text(str(value))

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """structlog processor: drop forbidden keys and redact phone-number-like values."""
        for key in list(event_dict):
            if key.lower() in _FORBIDDEN_KEYS:
                event_dict[key] = REDACTED
            elif key not in ("timestamp", "level", "logger"):
                event_dict[key] = self.value(event_dict[key])
        return event_dict


def redact_text(value: str) -> str:
    """The text with every phone-number-like run replaced (channel ids and IPv4 addresses are kept)."""
    return Redactor().text(value)


def configure_logging(level: str = "info", stream: TextIO | None = None) -> Redactor:
    """JSON lines on stdout (or the given stream), identities refused; returns the redactor, to tell it
    the line's numbers."""
    redactor = Redactor()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    return redactor
