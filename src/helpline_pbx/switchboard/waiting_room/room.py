"""The waiting room: what a caller hears while they wait, and their choice to hear other ways to get help.

On their line's settings (none of this happens on a service without lines):
- every `announce_every` seconds, their place and, when it is honest to give one, the estimated wait
  (core/estimate.py); the first at once, unless the overloaded message plays first;
- after `choice_after` seconds of waiting, once: "press 1 to keep your place, 2 to hear other ways to get
  help". From then on 2 hands them to the line's alternatives message (the core records the outcome
  "alternatives"); 1 stops the prompt and keeps their place; other keys are ignored. Offered once: said
  again every few minutes it would nag someone who chose to wait;
- on arrival, when their wait would exceed `max_wait`: the line's overloaded message then its alternatives
  (emergency numbers among them). They keep their place and hear music; the choice comes at choice_after
  as for everyone (they have just heard where else to turn, and staying on the line is keeping their place).

Never two prompts at once: a caller has at most one playback of ours; a prompt that comes due meanwhile
waits for it to end (postponed, never dropped), and the next announcement is due `announce_every` seconds
after the previous one ended. No prompt plays while a listener's phone rings for the caller (they are about
to be answered): the one playing stops, what is due waits and plays if the offer fails (a choice cut short
is offered again, whole).

Stopping: while a playback runs on a channel in a bridge, Asterisk holds up every request about that
channel (removeChannel, setting a variable...) until the playback ends (checked on Asterisk 22), so a prompt
would hold up the connect, the hand-over to the dialplan, and whatever waits behind them on the call's lane.
A caller who is offered, connected or leaves gets their prompt stopped at once, outside the call's lane (on
the lane the stop would wait behind the very request it holds up); a play still queued on the lane never
starts, and a prompt that starts anyway (a late PlaybackStarted) is stopped as soon as it is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from helpline_pbx.ari.errors import AriError, AriNotFound
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.models import ChannelDtmfReceived, PlaybackFinished, PlaybackStarted
from helpline_pbx.ari.stream import StreamItem
from helpline_pbx.core import (
    CallerArrived,
    CallerChoseAlternatives,
    CallQueue,
    CallState,
    Command,
    ConnectCall,
    ConnectFailed,
    EndCall,
    Event,
    OfferCall,
    RecordCall,
    SendToFallback,
)
from helpline_pbx.core.estimate import announcement, heard
from helpline_pbx.lines.snapshots import LineSnapshot
from helpline_pbx.protocol import LINE_PROMPT, call_lane
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.phases import fraction_of
from helpline_pbx.switchboard.waiting_room.estimates import WaitEstimates
from helpline_pbx.switchboard.waiting_room.prompts import (
    ALTERNATIVES_DIGIT,
    KEEP_DIGIT,
    KEEP_OR_ALTERNATIVES,
    Prompt,
    Waiter,
    announcement_media,
    sound,
)
from helpline_pbx.switchboard.workers import Lanes

log = structlog.get_logger(__name__)

# A playback whose end we never heard of (events lost while the socket was down) is presumed over after
# this long: our longest prompt, the overloaded message with the alternatives, lasts well under a minute.
PLAYBACK_PRESUMED_OVER = 180.0
_REMEMBERED_PLAYBACKS = 1024


class WaitingRoom:
    """Registered on the switchboard's observers: `on_decision` (core decisions) and `on_event` (ARI)."""

    def __init__(
        self,
        *,
        ari: Ari,
        queue: CallQueue,
        book: LegBook,
        lanes: Lanes,
        feed: Callable[[Event], None],
        line_named: Callable[[str], LineSnapshot | None],
        rest_after_call: float,
    ) -> None:
        self._ari = ari
        self._queue = queue
        self._book = book
        self._lanes = lanes
        self._feed = feed
        self._line_named = line_named
        self._estimates = WaitEstimates(queue, rest_after_call)
        self._waiters: dict[str, Waiter] = {}
        # Our playbacks not known to be over, id -> call id: one starting for a caller who left is stopped.
        self._playbacks: OrderedDict[str, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- what the core decided -------------------------------------------------------------------------

    def on_decision(self, event: Event, commands: list[Command]) -> None:
        for command in commands:
            match command:
                case OfferCall(helper=False):
                    self._interrupt(command.call_id)
                case ConnectCall() | EndCall() | SendToFallback():
                    self._leave(command.call_id)
                case RecordCall(record=record):
                    self._estimates.served(record)
                    self._leave(record.call_id)
                case _:
                    pass
        match event:
            case CallerArrived():
                # A caller re-adopted after a restart (arrived_at given) heard their arrival prompts already.
                self._arrived(event.call_id, fresh=event.arrived_at is None)
            case ConnectFailed():
                # Back on hold, place kept: they wait again.
                self._arrived(event.call_id, fresh=False)
            case _:
                pass
        self._pump_all()

    def _arrived(self, call_id: str, *, fresh: bool) -> None:
        if call_id in self._waiters:
            return
        view = self._queue.call(call_id)
        call = self._book.call(call_id)
        if view is None or view.state is CallState.CONNECTED or call is None:
            return
        line = self._line_named(view.line)
        if line is None or (
            line.announce_every is None and line.choice_after is None and line.max_wait is None
        ):
            return
        waiter = Waiter(call_id, call.caller_channel, line)
        self._waiters[call_id] = waiter
        if (
            fresh
            and view.state is CallState.WAITING
            and self._estimates.overloaded(waiter.line, waiter.call_id)
        ):
            log.info("caller_told_overloaded", call_id=call_id, line=line.name)
            waiter.pending.append("overloaded")
        elif fresh and line.announce_every is not None:
            waiter.pending.append("announce")
        else:
            # Back after a restart, all at once: each caller's next announcement at their own phase of the
            # period, or a thousand would be played in the same second, one period from now.
            self._schedule_announcement(waiter, spread=not fresh)
        if line.choice_after is not None:
            left = line.choice_after - max(0.0, time.time() - view.queued_at)
            if not fresh and left <= 0:
                # Back after a restart or a failed connect, long enough to have been offered the choice.
                waiter.choice_open = True
            else:
                waiter.choice_timer = asyncio.get_running_loop().call_later(
                    max(0.0, left), self._choice_due, waiter
                )

    def _leave(self, call_id: str) -> None:
        waiter = self._waiters.pop(call_id, None)
        if waiter is not None:
            self._hush(waiter)

    def _interrupt(self, call_id: str) -> None:
        """A listener's phone rings for the caller: their prompt stops (they are about to be answered, and
        while it plays Asterisk holds up every request about their channel, the ring's turn on the lane
        among them). A choice cut short is offered again, in full, if they have to wait again."""
        waiter = self._waiters.get(call_id)
        if waiter is None or waiter.playing is None or waiter.interrupted == waiter.playing:
            return
        waiter.interrupted = waiter.playing
        if waiter.playing_kind == "choice" and "choice" not in waiter.pending:
            waiter.pending.insert(0, "choice")
        self._spawn(self._stop(waiter.playing))

    def _hush(self, waiter: Waiter) -> None:
        waiter.hushed = True
        waiter.pending.clear()
        for timer in (waiter.announce_timer, waiter.choice_timer):
            if timer is not None:
                timer.cancel()
        waiter.announce_timer = waiter.choice_timer = None
        if waiter.playing is not None:
            self._spawn(self._stop(waiter.playing))

    # ---- ARI events ------------------------------------------------------------------------------------

    def on_event(self, item: StreamItem) -> None:
        match item:
            case PlaybackFinished():
                call_id = self._playbacks.pop(item.playback.id, None)
                waiter = self._waiters.get(call_id) if call_id is not None else None
                if waiter is not None:
                    self._finished(waiter, item.playback.id)
            case PlaybackStarted():
                call_id = self._playbacks.get(item.playback.id)
                if call_id is None:
                    return
                waiter = self._waiters.get(call_id)
                if waiter is None or waiter.hushed or waiter.interrupted == item.playback.id:
                    # Never over a conversation, nor into the dialplan: a late start is stopped at once.
                    log.info("late_prompt_stopped", call_id=call_id)
                    self._spawn(self._stop(item.playback.id))
            case ChannelDtmfReceived():
                self._on_digit(item.channel.id, item.digit)
            case _:
                pass

    def _on_digit(self, channel_id: str, digit: str) -> None:
        leg = self._book.leg(channel_id)
        if leg is None or leg.role != "caller":
            return
        waiter = self._waiters.get(leg.call_id)
        if waiter is None or waiter.hushed or not waiter.choice_open:
            return
        if digit == ALTERNATIVES_DIGIT:
            self._choose_alternatives(waiter)
        elif digit == KEEP_DIGIT:
            log.info("caller_kept_place", call_id=waiter.call_id)
            if waiter.playing is not None and waiter.playing_kind == "choice":
                self._spawn(self._stop(waiter.playing))

    def _choose_alternatives(self, waiter: Waiter) -> None:
        log.info("caller_chose_alternatives", call_id=waiter.call_id, line=waiter.line.name)
        self._leave(waiter.call_id)
        # On the call's lane ahead of the hand-over the core is about to order: the dialplan reads it there.
        self._lanes.submit(
            call_lane(waiter.call_id),
            functools.partial(self._set_prompt, waiter.channel_id, waiter.line.messages.alternatives),
        )
        self._feed(CallerChoseAlternatives(call_id=waiter.call_id))

    # ---- prompts ---------------------------------------------------------------------------------------

    def _choice_due(self, waiter: Waiter) -> None:
        waiter.choice_timer = None
        self._due(waiter, "choice")

    def _announcement_due(self, waiter: Waiter) -> None:
        waiter.announce_timer = None
        self._due(waiter, "announce")

    def _due(self, waiter: Waiter, kind: Prompt) -> None:
        if waiter.hushed or self._waiters.get(waiter.call_id) is not waiter:
            return
        if kind not in waiter.pending:
            waiter.pending.append(kind)
        self._pump(waiter, self._state(waiter.call_id))

    def _schedule_announcement(self, waiter: Waiter, *, spread: bool = False) -> None:
        every = waiter.line.announce_every
        if (
            every is None
            or waiter.hushed
            or waiter.announce_timer is not None
            or "announce" in waiter.pending
        ):
            return
        delay = every * fraction_of(waiter.call_id) if spread else every
        waiter.announce_timer = asyncio.get_running_loop().call_later(delay, self._announcement_due, waiter)

    def _pump_all(self) -> None:
        # After every decision, so this looks a waiter's call up only when a prompt of theirs is due: with
        # 1,000 waiting a snapshot of every call per decision made re-adopting them quadratic.
        for waiter in list(self._waiters.values()):
            if waiter.pending and not waiter.hushed:
                self._pump(waiter, self._state(waiter.call_id))

    def _pump(self, waiter: Waiter, state: CallState | None) -> None:
        """Start the next prompt due, if the caller waits and hears none of ours."""
        if waiter.hushed or not waiter.pending:
            return
        if waiter.playing is not None:
            if time.monotonic() - waiter.playing_since < PLAYBACK_PRESUMED_OVER:
                return
            log.warning("prompt_end_not_seen", call_id=waiter.call_id)
            waiter.playing = waiter.playing_kind = None
        if state is not CallState.WAITING:
            return
        while waiter.pending:
            kind = waiter.pending.pop(0)
            media = self._media(waiter, kind)
            if media is not None:
                self._play(waiter, kind, media)
                return
            if kind == "announce":
                self._schedule_announcement(waiter)

    def _media(self, waiter: Waiter, kind: Prompt) -> list[str] | None:
        messages = waiter.line.messages
        if kind == "overloaded":
            return [sound(messages.overloaded), sound(messages.alternatives)]
        if kind == "choice":
            return [sound(KEEP_OR_ALTERNATIVES)]
        position = self._estimates.position(waiter.call_id)
        said = announcement(
            position, self._estimates.estimate(waiter.line, waiter.call_id, position), last=waiter.last
        )
        if said is None:
            return None
        waiter.last = heard(waiter.last, said)
        log.info("caller_told_position", call_id=waiter.call_id, position=said.position, minutes=said.minutes)
        return announcement_media(said)

    def _play(self, waiter: Waiter, kind: Prompt, media: list[str]) -> None:
        waiter.prompts += 1
        playback_id = f"{waiter.call_id}-prompt-{waiter.prompts}"
        waiter.playing, waiter.playing_kind, waiter.playing_since = playback_id, kind, time.monotonic()
        if kind == "choice":
            waiter.choice_open = True
        self._playbacks[playback_id] = waiter.call_id
        while len(self._playbacks) > _REMEMBERED_PLAYBACKS:
            self._playbacks.popitem(last=False)
        # On the call's lane: after the caller was put on hold (a play before that would hold up the join).
        self._lanes.submit(
            call_lane(waiter.call_id), functools.partial(self._start, waiter, playback_id, media)
        )

    async def _start(self, waiter: Waiter, playback_id: str, media: list[str]) -> None:
        if waiter.hushed or waiter.playing != playback_id:
            return  # connected or gone while this waited on the lane: it never plays
        if waiter.interrupted == playback_id:
            self._playbacks.pop(playback_id, None)
            self._finished(waiter, playback_id)  # offered while this waited: it never plays either
            return
        try:
            await self._ari.play(waiter.channel_id, media, playback_id)
        except AriError as exc:
            if not isinstance(exc, AriNotFound):
                log.warning("prompt_failed", call_id=waiter.call_id, error=exc.code)
            self._playbacks.pop(playback_id, None)
            self._finished(waiter, playback_id)
            return
        if waiter.hushed or waiter.interrupted == playback_id:
            await self._stop(playback_id)  # hushed or offered while the request was on its way

    def _finished(self, waiter: Waiter, playback_id: str) -> None:
        if waiter.playing != playback_id:
            return
        kind = waiter.playing_kind
        waiter.playing = waiter.playing_kind = None
        if waiter.hushed:
            return
        if kind != "choice":
            self._schedule_announcement(waiter)
        self._pump(waiter, self._state(waiter.call_id))

    async def _stop(self, playback_id: str) -> None:
        try:
            await self._ari.stop_playback(playback_id)
        except AriNotFound:
            pass  # over already, or the caller is gone
        except AriError as exc:
            log.warning("prompt_not_stopped", error=exc.code)

    async def _set_prompt(self, channel_id: str, prompt: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self._ari.set_variable(channel_id, LINE_PROMPT, prompt)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _state(self, call_id: str) -> CallState | None:
        view = self._queue.call(call_id)
        return None if view is None else view.state

    def prompt_playing(self, call_id: str) -> bool:
        """Whether one of our prompts plays to the caller now (a request about their channel would wait)."""
        waiter = self._waiters.get(call_id)
        return waiter is not None and waiter.playing is not None

    # ---- for tests and shutdown ------------------------------------------------------------------------

    async def settled(self) -> None:
        """Until every stop already asked for has been sent (they run outside the lanes)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
