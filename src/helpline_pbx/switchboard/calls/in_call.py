"""Codes a listener keys on their phone during a call (RFC 2833 digits reach the service as ARI events).

A code is a star then one digit, within a few seconds: a lone digit is what a listener presses by mistake,
or what a caller's menu would want, so it never does anything on its own.
"""

from __future__ import annotations

from typing import Literal

from helpline_pbx.core import CallMarkedDifficult, Event, HelpRequested

Action = Literal["professional", "supervisor", "handover", "difficult"]

CODES: dict[str, Action] = {
    "1": "professional",  # *1: a professional joins the call (three-way)
    "2": "supervisor",  # *2: the supervisor on duty joins the call
    "3": "handover",  # *3: a professional takes the call over; the listener leaves once they answer
    "9": "difficult",  # *9: this call is difficult: longer rest and a debrief after it
}
# Seconds between the star and the digit.
WINDOW = 4.0


class InCallCodes:
    """Per channel, the star awaiting its digit."""

    def __init__(self) -> None:
        self._stars: dict[str, float] = {}

    def key(self, channel_id: str, digit: str, now: float) -> Action | None:
        """The action the digit completes, if any."""
        if digit == "*":
            self._stars[channel_id] = now
            # Forget stars of channels long gone: the table stays small.
            for stale in [c for c, at in self._stars.items() if now - at > WINDOW]:
                del self._stars[stale]
            return None
        started = self._stars.pop(channel_id, None)
        if started is None or now - started > WINDOW:
            return None
        return CODES.get(digit)


def help_event(action: Action, call_id: str, listener_id: str) -> Event:
    """What the core hears of an in-call code keyed by the listener of `call_id`."""
    match action:
        case "difficult":
            return CallMarkedDifficult(listener_id)
        case "professional":
            return HelpRequested(call_id, listener_id, "professional")
        case "supervisor":
            return HelpRequested(call_id, listener_id, "supervisor")
        case "handover":
            return HelpRequested(call_id, listener_id, "professional", handover=True)
