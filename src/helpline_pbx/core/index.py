"""Indexes the floor keeps of its listeners and calls, so a decision costs what the event changed.

The truth stays on the listeners and the calls (model.py); these are derived views, brought up to date
from the objects the last event touched (`Floor.settle`). Nothing here decides anything:
- `FreeListeners`: who may be rung now (available, phone reachable), grouped by profile, each group
  ordered by longest idle. Listeners of one profile are interchangeable for every rule but idleness, so a
  call compares groups, not people.
- `OnDuty`: how many listeners on duty bring each profile (for "does anyone on duty hold the skills this
  caller asked for?" and honest wait estimates).
- `WaitingCalls`: the calls waiting for an offer, in buckets of equal requirements, each in queue order.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from helpline_pbx.core.commands import ListenerState
from helpline_pbx.core.routing import Profile, Requirements

if TYPE_CHECKING:
    from helpline_pbx.core.model import Call, Listener


@dataclass(slots=True)
class FreeGroup:
    """Free listeners of one profile: a heap by (idle since, id), with stale entries dropped lazily."""

    number: int
    profile: Profile
    heap: list[tuple[float, str]] = field(default_factory=list)
    size: int = 0


class FreeListeners:
    def __init__(self) -> None:
        self.groups: dict[Profile, FreeGroup] = {}
        # Each free listener's group and the idle time its heap entry carries: the one valid entry.
        self._entry: dict[str, tuple[FreeGroup, float]] = {}
        self._numbers = 0

    def __len__(self) -> int:
        return len(self._entry)

    def __contains__(self, listener_id: str) -> bool:
        return listener_id in self._entry

    def group_of(self, listener_id: str) -> FreeGroup | None:
        entry = self._entry.get(listener_id)
        return None if entry is None else entry[0]

    def update(self, listener: Listener) -> bool:
        """Bring the listener's entry up to date; True if they became free (or free anew)."""
        lid = listener.listener_id
        current = self._entry.get(lid)
        free = listener.state is ListenerState.AVAILABLE and listener.reachable
        if current is not None:
            old, idle = current
            if free and old.profile == listener.profile and idle == listener.idle_since:
                return False
            del self._entry[lid]
            old.size -= 1
            if not old.size:
                del self.groups[old.profile]
        if not free:
            return False
        group = self.groups.get(listener.profile)
        if group is None:
            self._numbers += 1
            group = self.groups[listener.profile] = FreeGroup(self._numbers, listener.profile)
        group.size += 1
        self._entry[lid] = (group, listener.idle_since)
        heapq.heappush(group.heap, (listener.idle_since, lid))
        if len(group.heap) > 2 * group.size + 64:
            # Stale entries pile up under a busy head: rebuild from the valid ones.
            group.heap = [e for e in group.heap if self._valid(group, e)]
            heapq.heapify(group.heap)
        return True

    def head(self, group: FreeGroup) -> tuple[float, str]:
        """The group's longest idle listener (the group is never empty)."""
        heap = group.heap
        while not self._valid(group, heap[0]):
            heapq.heappop(heap)
        return heap[0]

    def _valid(self, group: FreeGroup, entry: tuple[float, str]) -> bool:
        current = self._entry.get(entry[1])
        return current is not None and current[0] is group and current[1] == entry[0]


class OnDuty:
    """Profiles of the listeners on duty: all of them, and those whose phone is reachable."""

    def __init__(self) -> None:
        self.profiles: Counter[Profile] = Counter()
        self.reachable: Counter[Profile] = Counter()
        self._skills: Counter[frozenset[str]] = Counter()
        self._entry: dict[str, tuple[Profile, bool]] = {}

    def update(self, listener: Listener) -> bool:
        """Bring the listener's entry up to date; True if what is held on duty changed."""
        lid = listener.listener_id
        wanted = (listener.profile, listener.reachable) if listener.on_duty else None
        current = self._entry.get(lid)
        if current == wanted:
            return False
        if current is not None:
            profile, reachable = current
            _drop(self.profiles, profile)
            _drop(self._skills, profile.skills)
            if reachable:
                _drop(self.reachable, profile)
            del self._entry[lid]
        if wanted is not None:
            profile, reachable = wanted
            self.profiles[profile] += 1
            self._skills[profile.skills] += 1
            if reachable:
                self.reachable[profile] += 1
            self._entry[lid] = wanted
        return True

    def hold(self, skills: frozenset[str]) -> bool:
        """Someone on duty has all these skills."""
        return any(skills <= held for held in self._skills)


_K = TypeVar("_K")


def _drop(counter: Counter[_K], key: _K) -> None:
    counter[key] -= 1
    if not counter[key]:
        del counter[key]


@dataclass(slots=True)
class Bucket:
    """Waiting calls of equal requirements, by queue place. `ordered` while their arrival times follow
    that order (always, but for callers re-adopted after a restart with their own arrival times): then a
    later call has waited no longer than an earlier one, so it can reach no listener the earlier cannot."""

    requirements: Requirements
    # (queue place, arrival time, call id), by place.
    places: list[tuple[int, float, str]] = field(default_factory=list)
    # How many neighbours are out of arrival order: 0 is the usual case.
    disorder: int = 0
    # Whether someone on duty held the skills its callers asked for, when last looked at.
    held: bool | None = None
    # Rank by (free group number, reach steps passed, wanted skills held): the rules are pure, so exact.
    ranks: dict[tuple[int, int, bool], int | None] = field(default_factory=dict)
    afters: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.afters = tuple(step.after for step in self.requirements.reach)

    @property
    def ordered(self) -> bool:
        return not self.disorder

    def steps(self, waited: float) -> int:
        """How many steps of the reach a call that waited this long has passed (as `rank` counts)."""
        return sum(1 for after in self.afters if after <= waited)

    def _out_of_order(self, index: int) -> int:
        """1 if the places at index and index + 1 are out of arrival order."""
        places = self.places
        if index < 0 or index + 1 >= len(places):
            return 0
        return 1 if places[index][1] > places[index + 1][1] else 0

    def insert(self, place: tuple[int, float, str]) -> None:
        index = bisect_left(self.places, place)
        self.disorder -= self._out_of_order(index - 1)
        self.places.insert(index, place)
        self.disorder += self._out_of_order(index - 1) + self._out_of_order(index)

    def remove(self, place: tuple[int, float, str]) -> None:
        index = bisect_left(self.places, place)
        self.disorder -= self._out_of_order(index - 1) + self._out_of_order(index)
        del self.places[index]
        self.disorder += self._out_of_order(index - 1)


class WaitingCalls:
    def __init__(self) -> None:
        self.buckets: dict[Requirements, Bucket] = {}
        self._bucket_of: dict[str, Bucket] = {}

    def __len__(self) -> int:
        return len(self._bucket_of)

    def update(self, call: Call, waiting: bool) -> bool:
        """Bring the call's entry up to date; True if it started waiting."""
        bucket = self._bucket_of.get(call.call_id)
        if (bucket is not None) == waiting:
            return False
        place = (call.place, call.queued_at, call.call_id)
        if bucket is not None:
            bucket.remove(place)
            del self._bucket_of[call.call_id]
            if not bucket.places:
                del self.buckets[bucket.requirements]
            return False
        bucket = self.buckets.get(call.requirements)
        if bucket is None:
            bucket = self.buckets[call.requirements] = Bucket(call.requirements)
        bucket.insert(place)
        self._bucket_of[call.call_id] = bucket
        return True

    def bucket_of(self, call_id: str) -> Bucket | None:
        return self._bucket_of.get(call_id)
