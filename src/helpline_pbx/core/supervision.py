"""Who may listen to, coach or join whose calls: a pure decision over what the roster says of both.

Being listened to is a serious matter for a listener: only supervisors may do it, and only to listeners
in training or who agreed to it (the line's policy may narrow that further, never widen it past consent).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol

from helpline_pbx.core.roles import Role

Mode = Literal["listen", "coach", "join"]
MODES: frozenset[str] = frozenset({"listen", "coach", "join"})


class Person(Protocol):
    """What the decision needs to know of a supervisor or a listener (a roster snapshot fits)."""

    @property
    def id(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def active(self) -> bool: ...

    @property
    def trainee(self) -> bool: ...

    @property
    def monitoring_consent(self) -> bool: ...


class Verdict(StrEnum):
    ALLOWED = "allowed"
    NOT_SUPERVISOR = "not_supervisor"  # the one dialling is no (active) supervisor
    SELF = "self"  # a supervisor's own call
    MODE_CLOSED = "mode_closed"  # the line does not use this mode at all
    NOT_CONSENTING = "not_consenting"  # the listener is neither in training nor agreed to it


@dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    """Which listeners may be supervised, and how."""

    # Trainees may be supervised without asking: it is part of their training.
    trainees: bool = True
    # Listeners who agreed (monitoring_consent) may be supervised.
    consenting: bool = True
    modes: frozenset[str] = MODES

    def __post_init__(self) -> None:
        if unknown := self.modes - MODES:
            raise ValueError(f"unknown supervision modes: {sorted(unknown)}")


DEFAULT_POLICY = SupervisionPolicy()


def is_supervisor(person: Person) -> bool:
    """Whether `person` may supervise anyone at all."""
    return person.role == Role.SUPERVISOR and person.active


def may_supervise(
    supervisor: Person, listener: Person, mode: str, policy: SupervisionPolicy = DEFAULT_POLICY
) -> Verdict:
    """May `supervisor` supervise `listener`'s call in `mode`?"""
    if not is_supervisor(supervisor):
        return Verdict.NOT_SUPERVISOR
    if supervisor.id == listener.id:
        return Verdict.SELF
    if mode not in policy.modes:
        return Verdict.MODE_CLOSED
    if (policy.trainees and listener.trainee) or (policy.consenting and listener.monitoring_consent):
        return Verdict.ALLOWED
    return Verdict.NOT_CONSENTING
