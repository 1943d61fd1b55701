"""The live board, pure: today's figures by the statistics' rules, waiting callers, listeners' states."""

from __future__ import annotations

from datetime import UTC, datetime

from helpline_pbx.console.board import LineInfo, ListenerInfo, StateClock, build_board, render_text
from helpline_pbx.console.statistics import CallFacts, Thresholds
from helpline_pbx.core.commands import ListenerState
from helpline_pbx.core.model import CallState, CallView, ListenerView

NOW = 1_800_000_000.0
T0 = datetime.fromtimestamp(NOW - 3600, UTC)


def _ended(line: str, outcome: str, wait: float) -> CallFacts:
    return CallFacts(line=line, queued_at=T0, outcome=outcome, wait_seconds=wait, talk_seconds=60)


def _listener(lid: str, state: ListenerState, **kw: object) -> ListenerView:
    defaults: dict[str, object] = {
        "endpoint": lid,
        "idle_since": NOW - 100,
        "call_id": None,
        "until": None,
        "online": True,
    }
    defaults.update(kw)
    return ListenerView(lid, state, **defaults)  # type: ignore[arg-type]


def _board(**kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "now": NOW,
        "calls": (),
        "listeners": (),
        "codes": {},
        "lines": {"jeunes": LineInfo("jeunes", "Jeunes", True, Thresholds(20, 5))},
        "roster": {},
        "ended_today": (),
        "open_debriefs": 0,
        "clock": StateClock(),
    }
    args.update(kw)
    return build_board(**args)  # type: ignore[arg-type]


def test_todays_figures_follow_the_lines_thresholds() -> None:
    ended = [
        _ended("jeunes", "served", 10),  # within 20 s
        _ended("jeunes", "served", 25),  # answered late
        _ended("jeunes", "abandoned", 3),  # short abandon: out of the service level
        _ended("jeunes", "abandoned", 40),
        _ended("jeunes", "alternatives", 70),
    ]
    line = _board(ended_today=ended).lines[0]
    assert (line.offered, line.answered, line.abandoned, line.short_abandons) == (5, 2, 2, 1)
    assert line.answered_within == 1
    assert line.service_level == 1 / 4
    assert line.average_speed_of_answer == 17.5


def test_the_total_sums_the_lines_each_by_its_own_threshold() -> None:
    lines = {
        "a": LineInfo("a", "A", True, Thresholds(10, 5)),
        "b": LineInfo("b", "B", True, Thresholds(60, 5)),
    }
    ended = [_ended("a", "served", 30), _ended("b", "served", 30)]
    board = _board(lines=lines, ended_today=ended)
    assert [x.service_level for x in board.lines] == [0.0, 1.0]
    assert board.total.service_level == 0.5
    assert board.total.offered == 2


def test_no_call_gives_no_rate_rather_than_a_division_by_zero() -> None:
    line = _board().lines[0]
    assert line.service_level is None
    assert line.average_speed_of_answer is None


def test_waiting_callers_show_by_code_and_connected_ones_only_on_their_listener() -> None:
    calls = (
        CallView("c1", "jeunes", CallState.WAITING, NOW - 50, None, 0),
        CallView("c2", "jeunes", CallState.CONNECTED, NOW - 200, "l1", 1),
    )
    listeners = (_listener("l1", ListenerState.ON_CALL, call_id="c2"),)
    board = _board(
        calls=calls,
        listeners=listeners,
        codes={"c1": "4821", "c2": "1234"},
        roster={"l1": ListenerInfo("Camille", "volunteer")},
    )
    assert [(c.code, c.state, c.waited) for c in board.calls] == [("4821", "waiting", 50)]
    assert board.lines[0].waiting == 1
    assert board.lines[0].longest_wait == 50
    assert board.listeners[0].call == "1234"
    assert board.listeners[0].state == "on_call"


def test_alerts_name_an_open_line_nobody_staffs_and_a_wait_past_its_threshold() -> None:
    calls = (CallView("c1", "jeunes", CallState.WAITING, NOW - 45, None, 0),)
    board = _board(calls=calls)
    assert board.alerts == (
        "Jeunes: the line is open and nobody is on duty",
        "Jeunes: a caller has waited 45 s, beyond the 20 s threshold",
    )
    closed = _board(lines={"jeunes": LineInfo("jeunes", "Jeunes", False)})
    assert closed.alerts == ()


def test_listener_states_as_a_supervisor_reads_them() -> None:
    roster = {x: ListenerInfo(x.upper(), "volunteer") for x in ("a", "b", "c", "d")}
    listeners = (
        _listener("a", ListenerState.AVAILABLE, reachable=False),
        _listener("b", ListenerState.RESTING, until=NOW + 42),
        _listener("c", ListenerState.PAUSED, paused_reason="pause café"),
        _listener("d", ListenerState.AVAILABLE, online=False),
    )
    rows = {r.pseudonym: r for r in _board(listeners=listeners, roster=roster).listeners}
    assert rows["A"].state == "unregistered"
    assert (rows["B"].state, rows["B"].left) == ("resting", 42)
    assert (rows["C"].state, rows["C"].reason) == ("paused", "pause café")
    assert rows["D"].state == "offline"
    # Offline listeners come last.
    assert [r.pseudonym for r in _board(listeners=listeners, roster=roster).listeners][-1] == "D"


def test_the_state_clock_counts_from_the_change_it_saw() -> None:
    clock = StateClock()
    assert clock.since("l1", "available", NOW, first_seen=NOW - 300) == NOW - 300
    assert clock.since("l1", "available", NOW + 10) == NOW - 300
    assert clock.since("l1", "ringing", NOW + 20) == NOW + 20


def test_the_terminal_board_is_the_same_snapshot() -> None:
    calls = (CallView("c1", "jeunes", CallState.WAITING, NOW - 75, None, 0),)
    board = _board(calls=calls, codes={"c1": "4821"}).as_json()
    text = render_text(board)
    assert "waiting 1 (longest 1 min 15 s)" in text
    assert "4821" in text
    assert "! Jeunes: the line is open and nobody is on duty" in text
