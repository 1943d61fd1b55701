"""The live board, pure: what the core, the lines and today's records say, as one snapshot.

The web page (pushed as JSON) and the terminal's `helpline-pbx board` show this same snapshot. Calls appear by
their call code and line only; listeners by their pseudonym. Nothing here can carry a caller's identity: the
inputs hold none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from helpline_pbx.console.statistics import CallFacts, Thresholds, answered_within, is_short_abandon
from helpline_pbx.core.commands import ListenerState
from helpline_pbx.core.model import CallState, CallView, ListenerView

UNREGISTERED = "unregistered"

# What a figure means, shown next to it on every view.
DEFINITIONS = {
    "offered": "calls that reached the line and ended today (practice calls apart)",
    "answered": "calls a listener answered",
    "abandoned": "callers who hung up before a listener answered",
    "short_abandons": "abandoned within the line's short-abandon threshold",
    "service_level": "answered within the threshold ÷ (offered − short abandons)",
    "average_speed_of_answer": "mean wait of the answered calls",
}


@dataclass(frozen=True, slots=True)
class LineInfo:
    """What the board needs of a line (its snapshot lives in lines/)."""

    name: str
    label: str
    open: bool
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True, slots=True)
class ListenerInfo:
    pseudonym: str
    role: str


@dataclass(frozen=True, slots=True)
class LineFigures:
    line: str
    label: str
    open: bool
    waiting: int
    longest_wait: float | None
    on_duty: int
    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    answered_within: int
    service_level: float | None
    average_speed_of_answer: float | None
    threshold: int


@dataclass(frozen=True, slots=True)
class CallRow:
    code: str
    line: str
    state: str
    waited: float
    listener: str | None


@dataclass(frozen=True, slots=True)
class ListenerRow:
    listener_id: str
    pseudonym: str
    role: str
    state: str
    since: float
    left: float | None
    reason: str | None
    call: str | None


@dataclass(frozen=True, slots=True)
class Board:
    at: float
    lines: tuple[LineFigures, ...]
    total: LineFigures
    calls: tuple[CallRow, ...]
    listeners: tuple[ListenerRow, ...]
    open_debriefs: int
    alerts: tuple[str, ...]
    definitions: Mapping[str, str] = field(default_factory=lambda: DEFINITIONS)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class StateClock:
    """Since when each listener has been in the state the board shows: the core keeps no such time."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float]] = {}

    def since(self, listener_id: str, state: str, now: float, first_seen: float | None = None) -> float:
        seen = self._seen.get(listener_id)
        if seen is None or seen[0] != state:
            seen = (state, now if seen is not None or first_seen is None else first_seen)
            self._seen[listener_id] = seen
        return seen[1]


def shown_state(view: ListenerView) -> str:
    """The state a supervisor reads: the core's, or "unregistered" for one on duty whose phone is not."""
    if view.online and not view.reachable and view.state is ListenerState.AVAILABLE:
        return UNREGISTERED
    if not view.online and view.state is ListenerState.AVAILABLE:
        return ListenerState.OFFLINE.value
    return view.state.value


def figures(
    line: LineInfo, waiting: Sequence[float], on_duty: int, ended: Iterable[CallFacts]
) -> LineFigures:
    """Today's figures of a line, judged by the same rules as the statistics (statistics.py)."""
    ended = list(ended)
    answered = [c for c in ended if c.outcome == "served"]
    abandoned = [c for c in ended if c.outcome == "abandoned"]
    short = [c for c in abandoned if is_short_abandon(c, line.thresholds)]
    counted = len(ended) - len(short)
    within = sum(1 for c in answered if answered_within(c, line.thresholds))
    return LineFigures(
        line=line.name,
        label=line.label,
        open=line.open,
        waiting=len(waiting),
        longest_wait=max(waiting) if waiting else None,
        on_duty=on_duty,
        offered=len(ended),
        answered=len(answered),
        abandoned=len(abandoned),
        short_abandons=len(short),
        answered_within=within,
        service_level=within / counted if counted else None,
        average_speed_of_answer=(sum(c.wait_seconds for c in answered) / len(answered) if answered else None),
        threshold=line.thresholds.service_level,
    )


def build_board(
    *,
    now: float,
    calls: Sequence[CallView],
    listeners: Sequence[ListenerView],
    codes: Mapping[str, str],
    lines: Mapping[str, LineInfo],
    roster: Mapping[str, ListenerInfo],
    ended_today: Sequence[CallFacts],
    open_debriefs: int,
    clock: StateClock,
    first_seen: Mapping[str, datetime] | None = None,
) -> Board:
    """The board at `now`. `codes` gives each call id its spoken code; a line met in a call but unknown to
    `lines` (the default route) is shown under its own name."""
    first_seen = first_seen or {}
    known = dict(lines)
    for call in calls:
        known.setdefault(call.line, LineInfo(call.line, call.line, True))
    for ended in ended_today:
        known.setdefault(ended.line, LineInfo(ended.line, ended.line, True))
    pseudonyms = {lid: info.pseudonym for lid, info in roster.items()}
    on_duty = sum(1 for x in listeners if x.online and x.listener_id in roster)

    call_rows = tuple(
        CallRow(
            code=codes.get(c.call_id, "?"),
            line=c.line,
            state=c.state.value,
            waited=max(0.0, now - c.queued_at),
            listener=pseudonyms.get(c.listener_id) if c.listener_id else None,
        )
        for c in calls
        # A connected call shows on its listener's row (by its code): this list is who is still waiting.
        if c.state is not CallState.CONNECTED
    )
    per_line = []
    for name in sorted(known):
        info = known[name]
        waits = [now - c.queued_at for c in calls if c.line == name and c.state is not CallState.CONNECTED]
        per_line.append(figures(info, waits, on_duty, (e for e in ended_today if e.line == name)))
    waits = [now - c.queued_at for c in calls if c.state is not CallState.CONNECTED]
    total = figures(
        LineInfo("all", "All lines", any(x.open for x in known.values()) or not known),
        waits,
        on_duty,
        [],
    )
    # The total's counts are the sum of the lines' (each with its own thresholds).
    total = _summed(total, per_line)

    listener_rows = []
    for view in listeners:
        person = roster.get(view.listener_id)
        if person is None:
            continue
        state = shown_state(view)
        seen = first_seen.get(view.listener_id)
        since = clock.since(view.listener_id, state, now, seen.timestamp() if seen else None)
        listener_rows.append(
            ListenerRow(
                listener_id=view.listener_id,
                pseudonym=person.pseudonym,
                role=person.role,
                state=state,
                since=max(0.0, now - since),
                left=max(0.0, view.until - now) if view.until is not None else None,
                reason=view.paused_reason if view.state is ListenerState.PAUSED else None,
                call=codes.get(view.call_id) if view.call_id else None,
            )
        )
    listener_rows.sort(key=lambda r: (r.state == ListenerState.OFFLINE.value, r.pseudonym))
    return Board(
        at=now,
        lines=tuple(per_line),
        total=total,
        calls=call_rows,
        listeners=tuple(listener_rows),
        open_debriefs=open_debriefs,
        alerts=tuple(alerts(per_line)),
    )


def alerts(lines: Iterable[LineFigures]) -> list[str]:
    out = []
    for line in lines:
        if line.open and line.on_duty == 0:
            out.append(f"{line.label}: the line is open and nobody is on duty")
        if line.longest_wait is not None and line.longest_wait > line.threshold:
            out.append(
                f"{line.label}: a caller has waited {duration(line.longest_wait)}, "
                f"beyond the {line.threshold} s threshold"
            )
    return out


def _summed(total: LineFigures, lines: Sequence[LineFigures]) -> LineFigures:
    offered = sum(x.offered for x in lines)
    answered = sum(x.answered for x in lines)
    short = sum(x.short_abandons for x in lines)
    within = sum(x.answered_within for x in lines)
    speed = [(x.average_speed_of_answer or 0) * x.answered for x in lines]
    return LineFigures(
        line=total.line,
        label=total.label,
        open=total.open,
        waiting=total.waiting,
        longest_wait=total.longest_wait,
        on_duty=total.on_duty,
        offered=offered,
        answered=answered,
        abandoned=sum(x.abandoned for x in lines),
        short_abandons=short,
        answered_within=within,
        service_level=within / (offered - short) if offered - short else None,
        average_speed_of_answer=sum(speed) / answered if answered else None,
        threshold=total.threshold,
    )


def duration(seconds: float | None) -> str:
    """A wait or a rest as a person reads it: 45 s, 3 min 05, 1 h 20."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"


def render_text(board: Mapping[str, Any], width: int = 100) -> str:
    """The terminal's board, from the JSON form (the command reads it from the running service)."""
    out = []
    total = board["total"]
    out.append(
        f"helpline-pbx board · waiting {total['waiting']}"
        + (f" (longest {duration(total['longest_wait'])})" if total["longest_wait"] is not None else "")
        + f" · on duty {total['on_duty']} · open debriefs {board['open_debriefs']}"
    )
    for alert in board["alerts"]:
        out.append(f"! {alert}")
    out.append("")
    out.append(
        f"{'line':<20} {'open':<5} {'wait':>4} {'longest':>9} {'offered':>7} {'answered':>8} "
        f"{'aband.':>6} {'short':>5} {'SL':>5} {'ASA':>6}"
    )
    for line in [*board["lines"], total]:
        sl = "-" if line["service_level"] is None else f"{line['service_level']:.0%}"
        asa = "-" if line["average_speed_of_answer"] is None else f"{line['average_speed_of_answer']:.0f}s"
        longest = "-" if line["longest_wait"] is None else duration(line["longest_wait"])
        out.append(
            f"{line['label'][:20]:<20} {'yes' if line['open'] else 'no':<5} {line['waiting']:>4} "
            f"{longest:>9} {line['offered']:>7} {line['answered']:>8} {line['abandoned']:>6} "
            f"{line['short_abandons']:>5} {sl:>5} {asa:>6}"
        )
    out.append("")
    out.append(f"{'call':<8} {'line':<20} {'state':<10} {'for':>9}  listener")
    for call in board["calls"]:
        out.append(
            f"{call['code']:<8} {call['line'][:20]:<20} {call['state']:<10} {duration(call['waited']):>9}  "
            f"{call['listener'] or ''}"
        )
    out.append("")
    out.append(f"{'listener':<20} {'role':<12} {'state':<17} {'for':>9}  {'left':>7}  note")
    for row in board["listeners"]:
        left = "" if row["left"] is None else duration(row["left"])
        note = row["reason"] or (f"call {row['call']}" if row["call"] else "")
        out.append(
            f"{row['pseudonym'][:20]:<20} {row['role']:<12} {row['state']:<17} {duration(row['since']):>9}  "
            f"{left:>7}  {note}"
        )
    return "\n".join(line[:width] for line in out)
