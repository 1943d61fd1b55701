"""Hypothesis plays callers, phones and a flaky Asterisk against the real Switchboard.

Each step is one thing the outside world does (a caller arrives or hangs up, a phone answers or ends, a
late report of a channel we hung up, an originate that fails, a replayed listener event); after each, once
the switchboard has settled, no listener has two live legs, no caller has two listener legs, and the roster
agrees with the core about every listener. At the end every caller hangs up and each call has exactly one
record, with nobody left ringing or on a call.

Replays of a caller's StasisStart are in too (they once made one caller two calls).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fake_asterisk import (
    CAUSE_BUSY,
    CAUSE_CONGESTION,
    CAUSE_NO_ANSWER,
    CAUSE_NORMAL,
    FakeAsterisk,
    caller_args,
    channel_destroyed,
    stasis_end,
    stasis_start,
)
from helpline_rig import Helpline, new_roster
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpline_pbx.ari.errors import AriServerError
from helpline_pbx.ari.models import StasisStart
from helpline_pbx.core import CallerArrived, ConnectCall, ListenerState, OfferFailed
from helpline_pbx.roster.database import upgrade_sync

LISTENERS = ("alice", "bob", "carol")

Step = tuple[str, int, int]
steps: st.SearchStrategy[Step] = st.tuples(
    st.sampled_from(
        [
            "arrive",
            "arrive",
            "leave",
            "answer",
            "answer",
            "end_leg",
            "report",
            "fail_next",
            "replay",
            "replay_caller",
        ]
    ),
    st.integers(0, 7),
    st.sampled_from([CAUSE_NORMAL, CAUSE_BUSY, CAUSE_NO_ANSWER, CAUSE_CONGESTION]),
)


@pytest.fixture(scope="session")
def roster_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated roster file, copied for every example (migrating each time would dominate the run)."""
    path = tmp_path_factory.mktemp("template") / "roster.db"
    # Not on this thread: asyncio.run here would disturb the loop pytest-asyncio manages.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade_sync, f"sqlite+aiosqlite:///{path}").result()
    return path


class World:
    """What the outside world knows: the channels that exist, and the events it has sent."""

    def __init__(self, line: Helpline) -> None:
        self.line = line
        self.callers: list[dict[str, Any]] = []
        self.answered: set[str] = set()
        self.reported: set[str] = set()
        self.sent: list[StasisStart] = []

    @property
    def asterisk(self) -> FakeAsterisk:
        return self.line.asterisk

    def live_callers(self) -> list[dict[str, Any]]:
        return [c for c in self.callers if c["id"] in self.asterisk.channels]

    def ringing_legs(self) -> list[str]:
        return [
            leg
            for leg in self.asterisk.originated()
            if leg in self.asterisk.channels and leg not in self.answered
        ]

    def live_legs(self) -> list[str]:
        return [leg for leg in self.asterisk.originated() if leg in self.asterisk.channels]

    def unreported(self) -> list[str]:
        """Channels we hung up whose end Asterisk has not reported yet."""
        return [c for c in dict.fromkeys(self.asterisk.hung_up()) if c not in self.reported]

    def end(self, channel_id: str, cause: int) -> None:
        """Asterisk reports a channel's end: StasisEnd if it was in Stasis, then ChannelDestroyed."""
        self.asterisk.vanish(channel_id)
        self.reported.add(channel_id)
        is_leg = self.line.board.book.parse_listener_channel(channel_id) is not None
        channel = self.line.channel(channel_id)
        if not is_leg or channel_id in self.answered:
            self.line.events.put(stasis_end(channel))
        self.line.events.put(channel_destroyed(channel, cause))

    def apply(self, step: Step) -> None:
        kind, pick, cause = step
        if kind == "arrive":
            self.callers.append(self.line.call())
        elif kind == "leave" and (callers := self.live_callers()):
            self.end(callers[pick % len(callers)]["id"], CAUSE_NORMAL)
        elif kind == "answer" and (legs := self.ringing_legs()):
            leg = legs[pick % len(legs)]
            self.answered.add(leg)
            self.sent.append(self.line.answer(leg))
        elif kind == "end_leg" and (legs := self.live_legs()):
            self.end(legs[pick % len(legs)], cause)
        elif kind == "report" and (gone := self.unreported()):
            self.end(gone[pick % len(gone)], CAUSE_NORMAL)
        elif kind == "fail_next":
            self.asterisk.fail(
                "originate",
                lambda call: AriServerError("POST", f"/channels/{call.args[0]}", status=500),
            )
        elif kind == "replay" and self.sent:
            self.line.events.put(self.sent[pick % len(self.sent)])
        elif kind == "replay_caller" and (callers := self.live_callers()):
            self.line.events.put(stasis_start(callers[pick % len(callers)], caller_args()))

    async def check(self) -> None:
        live = self.live_legs()
        parsed = [self.line.board.book.parse_listener_channel(leg) for leg in live]
        per_call = Counter(p[0] for p in parsed if p)
        per_listener = Counter(p[1] for p in parsed if p)
        assert max(per_call.values(), default=0) <= 1, f"a caller with two listener legs: {live}"
        assert max(per_listener.values(), default=0) <= 1, f"a listener with two live legs: {live}"
        for listener in await self.line.roster.list_listeners():
            core = self.line.board.queue.listener_state(listener.id)
            assert core is not None
            assert listener.state.value == core.value, (listener.pseudonym, listener.state, core)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(steps, min_size=1, max_size=30))
async def test_no_interleaving_double_books_a_listener_or_a_caller(
    roster_template: Path, history: list[Step]
) -> None:
    """Random interleavings never give a listener two live legs nor a caller two listener legs, keep the roster
    in step with the core, and end with one record per caller and nobody left ringing or on a call."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "roster.db"
        shutil.copy(roster_template, path)
        roster, callers = await new_roster(path, migrate=False)
        line = Helpline(roster, callers, FakeAsterisk())
        try:
            await line.add_listeners(*LISTENERS)
            await line.start()
            world = World(line)
            for step in history:
                world.apply(step)
                await line.settled()
                await world.check()

            for caller in world.live_callers():
                world.end(caller["id"], CAUSE_NORMAL)
            await line.settled()
            for channel_id in world.unreported():
                world.end(channel_id, CAUSE_NORMAL)
            await line.settled()

            assert line.board.queue.calls() == ()
            assert line.board.book.calls() == []
            arrived = [event.call_id for event in line.decisions.of(CallerArrived)]
            assert len(arrived) == len(world.callers)
            assert sorted(r.call_id for r in await roster.call_records()) == sorted(arrived)
            busy = {ListenerState.RINGING, ListenerState.ON_CALL}
            assert not [x.pseudonym for x in await roster.list_listeners() if x.state in busy]
            assert line.board.executor.lanes.failures == 0
            # Shown by --hypothesis-show-statistics: the histories do reach bridges and failed offers.
            event(f"bridged calls: {min(len(line.decisions.of(ConnectCall)), 3)}+")
            event(f"failed offers: {min(len(line.decisions.of(OfferFailed)), 3)}+")
        finally:
            await line.stop()
            await roster.engine.dispose()
