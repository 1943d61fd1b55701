"""Who may take which call: skills, language, role, and how a call's reach widens while it waits.

Pure rules, no state: the queue asks `rank(requirements, profile, waited)` for each available listener and
offers the call to the best-ranked one, longest idle first within a rank. A caller never loses their place
when their reach widens: the queue order (priority, then arrival) does not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from helpline_pbx.core.roles import Role

VOLUNTEER = Role.VOLUNTEER
PROFESSIONAL = Role.PROFESSIONAL
SUPERVISOR = Role.SUPERVISOR
ALL_ROLES: frozenset[str] = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Reach:
    """From `after` seconds of waiting on, listeners of these roles may take the call too."""

    after: float
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a call needs. The defaults let any listener take it at once."""

    skills: frozenset[str] = frozenset()
    language: str | None = None
    # Higher first; ties by arrival. An urgent call outranks the others.
    priority: int = 0
    # In order of widening: the first entry is who is tried first.
    reach: tuple[Reach, ...] = (Reach(0.0, ALL_ROLES),)
    urgent: bool = False
    # The line's own ring timeout, if it has one; otherwise the policy's.
    ring_timeout: float | None = None
    # Skills the caller asked for in the menu: required while some listener on duty has them, dropped
    # when nobody does (a caller who chose "legal" at night still reaches a listener).
    wanted: frozenset[str] = frozenset()
    # A practice call goes to trainees only; a real one never does unless the line allows it.
    practice: bool = False
    trainees_allowed: bool = False
    # A practice call for one chosen trainee (their listener id).
    only_listener: str | None = None
    # The line's own minimum rest after a call, if it has one; otherwise the policy's.
    rest_after_call: float | None = None

    def __post_init__(self) -> None:
        if not self.reach or self.reach[0].after != 0:
            raise ValueError("a call's reach must start at 0 seconds")
        if any(b.after < a.after for a, b in zip(self.reach, self.reach[1:], strict=False)):
            raise ValueError("a call's reach must widen in time order")

    def widenings(self) -> tuple[float, ...]:
        """The waiting times at which more listeners may take the call."""
        return tuple(step.after for step in self.reach[1:])


@dataclass(frozen=True, slots=True)
class Profile:
    """What a listener brings."""

    role: str = VOLUNTEER
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset({"fr"})
    trainee: bool = False


def rank(
    requirements: Requirements, profile: Profile, waited: float, *, wanted_held: bool = True
) -> int | None:
    """The listener's rank for this call after `waited` seconds (0 = tried first), or None if they may
    not take it: a missing skill, another language, a role the call has not reached yet, or a practice
    call for someone not in training (and the other way round).

    wanted_held says whether someone on duty holds the skills the caller asked for in the menu.
    """
    if requirements.practice != profile.trainee and not (profile.trainee and requirements.trainees_allowed):
        return None
    needed = requirements.skills | requirements.wanted if wanted_held else requirements.skills
    if not needed <= profile.skills:
        return None
    if requirements.language is not None and requirements.language not in profile.languages:
        return None
    if requirements.practice:
        # Trainees are tried whatever their role: the call exists for them.
        return 0
    for index, step in enumerate(requirements.reach):
        if step.after > waited:
            return None
        if profile.role in step.roles:
            return index
    return None


def escalated(base: Requirements, *, professionals_alone_for: float = 60.0, boost: int = 10) -> Requirements:
    """An urgent call: professionals first, everyone after a while, ahead of non-urgent callers."""
    return replace(
        base,
        priority=base.priority + boost,
        reach=(
            Reach(0.0, frozenset({PROFESSIONAL})),
            Reach(professionals_alone_for, frozenset({PROFESSIONAL, SUPERVISOR, VOLUNTEER})),
        ),
        urgent=True,
    )


def volunteers_first(professionals_after: float) -> tuple[Reach, ...]:
    """The usual policy of a line: volunteers first, professionals and supervisors too after a while."""
    return (Reach(0.0, frozenset({VOLUNTEER})), Reach(professionals_after, ALL_ROLES))
