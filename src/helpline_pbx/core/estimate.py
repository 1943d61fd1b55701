"""How long a waiting caller may still wait, and what of it is worth telling them. Pure rules.

Honesty over comfort: a caller in distress who is promised "two minutes" and waits ten stops trusting the
line. So an estimate is given only when there is enough to base it on, it is rounded to whole minutes
(a precise-sounding figure would claim more than we know), and it is never said when it has grown while
the caller's place did not get worse: such a rise is noise in the recent calls (one long conversation),
not news, and a wait announced as growing for no reason is worse than no figure at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Fewer recent calls than this and their mean says little: no estimate.
MIN_SAMPLES = 3
# Beyond an hour a figure is a guess dressed as a fact (and the overloaded message has said the wait is long).
LONGEST_ANNOUNCED = 3600.0


def estimated_wait(
    position: int,
    listeners_on_duty: int,
    recent_talk_seconds: Sequence[float],
    *,
    rest_seconds: float = 0.0,
    min_samples: int = MIN_SAMPLES,
) -> float | None:
    """Seconds until the caller at `position` (1 = next) is likely answered, or None when it would be a guess.

    Each listener on duty frees up once per handling time H (a call's mean talk time plus the rest after
    it), so with N listeners busy a listener frees up about every H/N seconds and the caller at position k
    waits about k·H/N. (This is exact for calls of exponentially distributed length, a fair model of
    listening calls: many short, a few very long.)

    None when nobody is on duty (the wait has no end anyone can see), when fewer than `min_samples` recent
    calls are known, or when the position is not a place in the queue.
    """
    if position < 1 or listeners_on_duty < 1 or not math.isfinite(rest_seconds):
        return None
    samples = [s for s in recent_talk_seconds if math.isfinite(s) and s >= 0]
    if len(samples) < max(min_samples, 1):
        return None
    handling = sum(samples) / len(samples) + max(rest_seconds, 0.0)
    return position * handling / listeners_on_duty


def overloaded(max_wait: float | None, estimate: float | None, listeners_on_duty: int) -> bool:
    """Whether a caller who has to wait (nobody could be offered their call) would wait beyond `max_wait`.

    No limit: never. Nobody on duty: always (nobody will answer soon). No estimate: only a limit of 0 is
    known to be exceeded, since the caller already waits; otherwise we do not claim the line is overloaded.
    """
    if max_wait is None:
        return False
    if listeners_on_duty < 1:
        return True
    if estimate is None:
        return max_wait <= 0
    return estimate > max_wait


@dataclass(frozen=True, slots=True)
class Announcement:
    """What a waiting caller is told: their place (1 = next) and, if worth saying, the wait in minutes
    (0 = less than a minute, None = no figure)."""

    position: int
    minutes: int | None


def minutes_of(estimate: float) -> int:
    """Whole minutes to say: 0 ("less than a minute") below 60 s, else rounded to the nearest minute."""
    if estimate < 60:
        return 0
    return max(1, math.floor(estimate / 60 + 0.5))


def announcement(
    position: int | None,
    estimate: float | None,
    *,
    offered: bool = False,
    last: Announcement | None = None,
) -> Announcement | None:
    """What to tell the caller now, or None when nothing is meaningful.

    Nothing while their call is being offered to a listener (a phone is ringing for them: they are about
    to be answered) or when they have no place in the queue. The figure is left out when there is no
    estimate, when it exceeds an hour, or when it is higher than the one they last heard although their
    place is not worse (see the module's notes). `last` is what they last heard (see `heard`).
    """
    if position is None or position < 1 or offered:
        return None
    minutes = None
    if estimate is not None and math.isfinite(estimate) and 0 <= estimate <= LONGEST_ANNOUNCED:
        minutes = minutes_of(estimate)
    if (
        minutes is not None
        and last is not None
        and last.minutes is not None
        and minutes > last.minutes
        and position <= last.position
    ):
        minutes = None
    return Announcement(position, minutes)


def heard(last: Announcement | None, said: Announcement) -> Announcement:
    """What the caller has in mind after `said`: its place, and the last figure they were given."""
    if said.minutes is None and last is not None:
        return Announcement(said.position, last.minutes)
    return said
