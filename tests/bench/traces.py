"""What the bench reads in SIPp's message traces (-trace_msg): when each dialog's first INVITE was sent or
received, and when a caller left; then the time-to-ring of each call, and percentiles.

Every entry of a trace starts with a dashed line and SIPp's wall-clock time of the send or receipt, e.g.

    ----------------------------------------------- 2026-12-03 17:40:08.104643
    UDP message sent (567 bytes):

Both ends of a measurement are SIPp processes on this machine, so both times come from the same clock.
Nothing here keeps a message's text beyond its first line and Call-ID: no caller identity is retained.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

_ENTRY = re.compile(
    rb"^-{20,} (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)[^\n]*\n\S+ message "
    rb"(?:(?P<received>received) \[(?P<rlen>\d+)\] bytes :|sent \((?P<slen>\d+) bytes\):)\n\n",
    re.MULTILINE,
)
_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.MULTILINE | re.IGNORECASE)
_TO = re.compile(r"^(?:To|t)\s*:(.*)$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Message:
    """One traced SIP message: when, which way, its first line, its dialog, whether its To has a tag."""

    at: float
    received: bool
    first_line: str
    call_id: str
    to_tagged: bool

    @property
    def initial_invite(self) -> bool:
        """The INVITE that opens a dialog (a re-INVITE's To carries the tag of the dialog)."""
        return self.first_line.startswith("INVITE ") and not self.to_tagged

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0]


def _timestamp(text: bytes) -> float:
    # SIPp writes local time; only differences between two of its timestamps are used.
    return datetime.strptime(text.decode(), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def messages(raw: bytes) -> Iterator[Message]:
    """Every message of a -trace_msg file, in file order."""
    for match in _ENTRY.finditer(raw):
        length = int(match["rlen"] or match["slen"])
        text = raw[match.end() : match.end() + length].decode("utf-8", errors="replace")
        first_line = text.split("\r\n", 1)[0].split("\n", 1)[0].strip()
        call_id = _CALL_ID.search(text)
        to = _TO.search(text)
        yield Message(
            at=_timestamp(match["at"]),
            received=match["received"] is not None,
            first_line=first_line,
            call_id=call_id[1] if call_id else "",
            to_tagged=bool(to and ";tag=" in to[1].replace(" ", "")),
        )


def first_invites(raw: bytes, *, received: bool) -> dict[str, float]:
    """Call-ID -> time of its first initial INVITE sent (a caller's trace) or received (a phone's);
    retransmissions of the same INVITE are left out."""
    found: dict[str, float] = {}
    for message in messages(raw):
        if message.received == received and message.initial_invite and message.call_id not in found:
            found[message.call_id] = message.at
    return found


def departures(raw: bytes) -> dict[str, float]:
    """Call-ID -> when the call ended for the caller whose trace this is: the first BYE or CANCEL sent or
    received in the dialog."""
    found: dict[str, float] = {}
    for message in messages(raw):
        if message.method in ("BYE", "CANCEL") and message.call_id not in found:
            found[message.call_id] = message.at
    return found


def match_sequential(sent: list[float], rings: list[float]) -> list[float | None]:
    """The time-to-ring of each call of a path whose calls ran one after another: call i's ring is the first
    ring at or after its INVITE and before the next call's INVITE. None for a call that rang nobody."""
    ordered = sorted(rings)
    out: list[float | None] = []
    starts = sorted(sent)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else math.inf
        k = bisect.bisect_left(ordered, start)
        out.append(ordered[k] - start if k < len(ordered) and ordered[k] < end else None)
    return out


def match_fifo(calls: Iterable[tuple[float, float]], rings: Iterable[float]) -> list[float]:
    """Time-to-ring under load, where a ring does not say which caller it is for (the line hides the
    caller from the listener's phone): each ring goes to the earliest caller, by INVITE sent, who had
    arrived before it, was not rung yet and had not left yet (`calls` are (invite_sent, left) pairs; left
    is inf for a caller still there). That is the line's own first-come, first-served order, so this is
    exact when callers reach the queue in the order they called, and off by the reordering otherwise."""
    waiting = sorted(calls)
    taken = [False] * len(waiting)
    first = 0
    out: list[float] = []
    for ring in sorted(rings):
        while first < len(waiting) and taken[first]:
            first += 1
        for i in range(first, len(waiting)):
            sent, left = waiting[i]
            if sent > ring:
                break
            if not taken[i] and left >= ring:
                taken[i] = True
                out.append(ring - sent)
                break
    return out


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def summary_ms(seconds: Iterable[float]) -> dict[str, float | int | None]:
    """Count, p50, p90, p99 and max in milliseconds of durations given in seconds."""
    values = [s * 1000 for s in seconds]

    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "n": len(values),
        "p50_ms": rounded(percentile(values, 0.50)),
        "p90_ms": rounded(percentile(values, 0.90)),
        "p99_ms": rounded(percentile(values, 0.99)),
        "max_ms": rounded(max(values, default=None)),
    }
