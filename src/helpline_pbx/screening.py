"""Screening: the one place the caller's number is ever used, and only to make a pseudonymous token.

The dialplan asks the service over FastAGI (`AGI(agi://…/screen)`) before anything else happens, then wipes
the number whatever the answer. From the number we derive a keyed, rotating token (tokens.py), and with it
decide whether the call may go on: a barred or over-limit caller hears a kind message with alternatives.
The number itself is never logged, stored or passed on. The bars and counts come from memory
(caller_memory.py): the caller waits in silence meanwhile, and never on the database.

A screening that cannot be done (the key folder unreadable) lets the call through: a helpline never
refuses a caller because its own bookkeeping failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import structlog

from helpline_pbx.caller_memory import CallerMemory
from helpline_pbx.protocol import REPEAT, SCREEN, TOKEN
from helpline_pbx.tokens import KeyRing, KeyRingError, normalise_e164

log = structlog.get_logger(__name__)

Status = Literal["ok", "barred", "limited"]


class AgiLike(Protocol):
    @property
    def env(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class ScreeningPolicy:
    # Calls per token within the window beyond which a caller hears the "limited" message.
    rate_limit_calls: int = 12
    rate_limit_window: timedelta = timedelta(hours=1)
    # The window of the "has called N times" hint.
    repeat_window: timedelta = timedelta(days=30)
    default_country: str = "33"

    @property
    def longest_window(self) -> timedelta:
        """How far back anything here counts: what the memory of arrivals must keep."""
        return max(self.rate_limit_window, self.repeat_window)


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    token: str | None = None
    # Arrivals of this caller within the repeat window, this one included (0 when unknown).
    repeat: int = 0

    def channel_variables(self) -> dict[str, str]:
        return {
            SCREEN: self.status,
            TOKEN: self.token or "",
            REPEAT: str(self.repeat),
        }


def decide(barred: bool, recent_arrivals: int, policy: ScreeningPolicy) -> Status:
    """Pure: a bar wins; then the rate limit (counting this arrival); otherwise the call goes on."""
    if barred:
        return "barred"
    if recent_arrivals >= policy.rate_limit_calls:
        return "limited"
    return "ok"


class Screener:
    def __init__(
        self,
        keyring: KeyRing,
        memory: CallerMemory,
        policy: ScreeningPolicy = ScreeningPolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keyring = keyring
        self._memory = memory
        self._policy = policy
        self._clock = clock

    def screen(self, raw_number: str) -> Verdict:
        number = normalise_e164(raw_number, self._policy.default_country)
        if number is None:
            # Withheld or invalid: no token, so withheld callers never pool into one "person".
            return Verdict("ok")
        try:
            token = self._keyring.token(number)
            tokens = self._keyring.tokens_for_lookup(number)
        except KeyRingError as exc:
            log.error("screening_keys_unavailable", error=type(exc).__name__)
            return Verdict("ok")
        del number
        now = self._clock()
        memory = self._memory
        recent = memory.arrivals_since(tokens, now - self._policy.rate_limit_window)
        status = decide(memory.barred(tokens, now), recent, self._policy)
        memory.note_arrival(token, now)
        repeat = memory.arrivals_since(tokens, now - self._policy.repeat_window)
        if status != "ok":
            log.info("caller_refused", status=status)
        return Verdict(status, token, repeat)

    async def handle(self, request: AgiLike) -> dict[str, str]:
        """The FastAGI handler: channel variables for the dialplan.

        The number is the dialplan's one argument, the From URI's user: the trunk's caller ID is fixed, so
        ``agi_callerid`` holds no number (and a display name is never read at all)."""
        verdict = self.screen(request.env.get("agi_arg_1", ""))
        return verdict.channel_variables()
