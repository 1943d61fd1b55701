"""Which Asterisk channel is which leg of which call.

The core speaks of calls and listeners; Asterisk of channels. The book is the only place that knows both,
so translating an event or a command is a lookup, and a late event about a channel we already let go of
is recognised and dropped.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["caller", "listener"]

_DIGIT_RUN = re.compile(r"\d{5,}")


def readable_token(length: int = 12) -> str:
    """Random hex with no run of five digits: an id must never look like a phone number in a log
    (the log filter would blank it, and a reader might mistake it for one)."""
    while True:
        token = secrets.token_hex(length // 2)
        if not _DIGIT_RUN.search(token):
            return token


@dataclass(slots=True)
class Leg:
    channel_id: str
    call_id: str
    role: Role
    listener_id: str | None = None
    answered: bool = False
    # We hung it up or handed it to the dialplan ourselves: its end is not news for the core.
    released: bool = False


@dataclass(slots=True)
class Call:
    call_id: str
    line: str
    label: str
    code: str
    caller_channel: str
    # The listener legs of this call, by listener id (one at a time, but a cancelled one may linger).
    listener_channels: dict[str, str] = field(default_factory=dict)
    # The offer in force for each listener, by attempt number; absent once withdrawn.
    current_offers: dict[str, int] = field(default_factory=dict)
    attempts: int = 0


class LegBook:
    def __init__(self, call_id_prefix: str = "c-") -> None:
        # Call ids start with the instance's prefix, so an instance sharing the roster with others
        # repairs only its own listeners after a restart.
        self.call_id_prefix = call_id_prefix
        self._legs: dict[str, Leg] = {}
        self._calls: dict[str, Call] = {}
        call_id = rf"{re.escape(call_id_prefix)}[0-9a-f]{{12}}"
        self._call_id = re.compile(call_id)
        self._listener_channel = re.compile(rf"^(?P<call>{call_id})-(?P<listener>.+)-(?P<attempt>\d+)$")

    def owns_call_id(self, call_id: str) -> bool:
        """Whether the call id is one this instance makes (several instances may share one Asterisk)."""
        return self._call_id.fullmatch(call_id) is not None

    def parse_listener_channel(self, channel_id: str) -> tuple[str, str] | None:
        """(call id, listener id) of a listener leg this instance originated, from its channel id."""
        match = self._listener_channel.match(channel_id)
        return None if match is None else (match["call"], match["listener"])

    def open_call(self, caller_channel: str, line: str, line_name: str, call_id: str | None = None) -> Call:
        call_id = call_id or self.call_id_prefix + readable_token()
        # A per-call code lets listener and supervisor speak about a call without identifying anyone.
        code = str(secrets.randbelow(9000) + 1000)
        call = Call(
            call_id=call_id, line=line, label=f"{line_name} {code}", code=code, caller_channel=caller_channel
        )
        self._calls[call_id] = call
        self._legs[caller_channel] = Leg(caller_channel, call_id, "caller")
        return call

    def call(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def leg(self, channel_id: str) -> Leg | None:
        return self._legs.get(channel_id)

    def start_offer(self, call_id: str, listener_id: str) -> int:
        """Record a new offer of the call to the listener; returns its attempt number."""
        call = self._calls.get(call_id)
        if call is None:
            return 0
        call.attempts += 1
        call.current_offers[listener_id] = call.attempts
        return call.attempts

    def withdraw_offer(self, call_id: str, listener_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.current_offers.pop(listener_id, None)

    def new_listener_channel_id(self, call: Call, listener_id: str) -> str:
        return f"{call.call_id}-{listener_id}-{call.current_offers.get(listener_id, call.attempts)}"

    def add_listener_leg(
        self, call: Call, listener_id: str, channel_id: str, *, answered: bool = False
    ) -> None:
        call.listener_channels[listener_id] = channel_id
        self._legs[channel_id] = Leg(channel_id, call.call_id, "listener", listener_id, answered=answered)

    def listener_channel(self, call_id: str, listener_id: str) -> str | None:
        call = self._calls.get(call_id)
        return call.listener_channels.get(listener_id) if call else None

    def release(self, channel_id: str) -> None:
        leg = self._legs.get(channel_id)
        if leg is not None:
            leg.released = True

    def forget_channel(self, channel_id: str) -> None:
        leg = self._legs.pop(channel_id, None)
        if leg is None:
            return
        call = self._calls.get(leg.call_id)
        if call is None:
            return
        if leg.listener_id is not None and call.listener_channels.get(leg.listener_id) == channel_id:
            del call.listener_channels[leg.listener_id]
        # A call is forgotten once none of its channels is left.
        if call.caller_channel not in self._legs and not call.listener_channels:
            del self._calls[call.call_id]

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def channel_ids(self) -> set[str]:
        """Every channel of every call the book knows: callers and listeners' legs."""
        return {
            c
            for call in self._calls.values()
            for c in (call.caller_channel, *call.listener_channels.values())
        }
