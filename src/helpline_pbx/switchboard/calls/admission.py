"""A caller entering Stasis: the line's rules say whether they wait, and for which listeners.

A closed, inactive or unknown line turns the caller to its message with alternatives, a drain to the
fallback; never silence. A caller who may wait gets a call id, a place in the holding bridge, and the
core hears of them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from helpline_pbx.ari.errors import AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import StasisStart
from helpline_pbx.core import CallerArrived, Event
from helpline_pbx.lines.arrivals import line_verdict, requirements_of
from helpline_pbx.lines.cache import LineCache
from helpline_pbx.protocol import LINE_PROMPT, caller_args, channel_lane
from helpline_pbx.roster import writes
from helpline_pbx.roster.callers import Callers
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.scribe import Scribe

log = structlog.get_logger(__name__)


class Admission:
    def __init__(
        self,
        *,
        ari: Ari,
        line_name: str,
        repeat_hint: bool,
        fallback_context: str,
        book: LegBook,
        executor: Executor,
        scribe: Scribe,
        lines: LineCache,
        sync: RosterSync,
        callers: Callers | None,
        feed: Callable[[Event], None],
    ) -> None:
        self._ari = ari
        self._line_name = line_name
        self._repeat_hint = repeat_hint
        self._fallback_context = fallback_context
        self._book = book
        self._executor = executor
        self._scribe = scribe
        self._lines = lines
        self._sync = sync
        self._callers = callers
        self._feed = feed

    def caller_entered(self, event: StasisStart, *, draining: bool) -> None:
        if self._book.leg(event.channel.id) is not None:
            # A duplicate, or a caller the reconcile already adopted: one call per channel.
            return
        number, token, repeat, choice = caller_args(event.args)
        lanes = self._executor.lanes
        if draining:
            lanes.submit(channel_lane(event.channel.id), lambda: self._refuse(event.channel.id))
            return
        verdict = line_verdict(self._lines.line_by_number, number, datetime.now(UTC))
        if isinstance(verdict, str):
            # Closed, inactive or unknown: a message with alternatives, never silence.
            channel_id = event.channel.id
            prompt = self._lines.line_by_number[number].messages.closed if verdict == "closed" else ""
            log.info("caller_turned_away", reason=verdict)
            turned = self._lines.line_by_number.get(number)
            if turned is not None:
                self._scribe.write(
                    functools.partial(
                        writes.note_turned_away,
                        line=turned.name,
                        reason=verdict if turned.active else "inactive",
                        practice=turned.practice,
                        now=datetime.now(UTC),
                    ),
                    "turned_away_not_counted",
                )
            lanes.submit(channel_lane(channel_id), lambda: self._turn_away(channel_id, verdict, prompt))
            return
        line = verdict.name if verdict else number
        if verdict is None:
            self._lines.served_number(number)
        requirements = requirements_of(verdict, choice, self._sync.listener_by_code)
        label = verdict.label if verdict else self._line_name
        call = self._book.open_call(event.channel.id, line, label)
        show_repeats = verdict.repeat_hint if verdict else self._repeat_hint
        if show_repeats and repeat > 1:
            call.label = f"{call.label} · {repeat}e appel"
        log.info("caller_arrived", call_id=call.call_id, line=line)
        self._executor.admit(call)
        if self._callers is not None:
            self._scribe.write(
                functools.partial(
                    writes.remember_call,
                    call_id=call.call_id,
                    code=call.code,
                    line=line,
                    token=token,
                    now=datetime.now(UTC),
                ),
                "call_code_not_saved",
                call_id=call.call_id,
            )
        self._feed(CallerArrived(call_id=call.call_id, line=line, requirements=requirements))

    async def _turn_away(self, channel_id: str, verdict: str, prompt: str) -> None:
        with contextlib.suppress(AriNotFound):
            if prompt:
                await self._ari.set_variable(channel_id, LINE_PROMPT, prompt)
            await self._ari.continue_in_dialplan(channel_id, f"helpline-{verdict}", "s", 1)

    async def _refuse(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.continue_in_dialplan(channel_id, self._fallback_context, "s", 1)
