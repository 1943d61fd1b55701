"""What a caller's arrival means: the dialplan's arguments, the line the number belongs to, what the call
needs from a listener, and what a listener offers. Pure rules, used by the runtime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from helpline_pbx.core.routing import Profile, Requirements, escalated, volunteers_first
from helpline_pbx.lines.snapshots import LineSnapshot
from helpline_pbx.roster.snapshots import ListenerSnapshot


def profile_of(listener: ListenerSnapshot) -> Profile:
    """What the core needs to know of a listener to route calls."""
    return Profile(
        role=listener.role.value,
        skills=listener.skills,
        languages=listener.languages,
        trainee=listener.trainee,
    )


URGENT_CHOICE = "9"


def line_verdict(
    lines: dict[str, LineSnapshot], number: str, now: datetime
) -> LineSnapshot | Literal["closed", "unknown"] | None:
    """The line a call is for, None when no line is set up at all (every number is served), or why the
    caller is turned away: the number belongs to no line, or its line is closed or inactive now."""
    if not lines:
        return None
    line = lines.get(number)
    if line is None:
        return "unknown"
    if not line.active or not line.hours.is_open(now):
        return "closed"
    return line


def requirements_of(
    line: LineSnapshot | None,
    choice: str = "",
    listener_by_code: Callable[[str], str | None] = lambda code: None,
) -> Requirements:
    """What a call on this line needs, given the caller's menu choice.

    On a line of several kinds of support, "1".."8" is a kind, wanted as a skill (dropped when nobody on
    duty has it), "9" is urgent (professionals first), "" no choice. On a practice line, the choice is
    the short code of the trainee the trainer wants to reach ("" or an unknown code: any trainee).
    """
    if line is None:
        return Requirements()
    wanted: frozenset[str] = frozenset()
    only_listener = None
    if line.practice:
        only_listener = listener_by_code(choice) if choice else None
    elif choice.isdigit() and 1 <= int(choice) <= len(line.support) and choice != URGENT_CHOICE:
        wanted = frozenset({line.support[int(choice) - 1]})
    needs = Requirements(
        skills=frozenset(line.skills),
        wanted=wanted,
        language=line.language,
        ring_timeout=float(line.ring_timeout) if line.ring_timeout else None,
        reach=Requirements().reach
        if line.professionals_after is None
        else volunteers_first(float(line.professionals_after)),
        practice=line.practice,
        trainees_allowed=line.trainees_allowed,
        only_listener=only_listener,
        rest_after_call=None if line.rest_after_call is None else float(line.rest_after_call),
    )
    return escalated(needs) if choice == URGENT_CHOICE and not line.practice else needs
