"""Each waiting caller's own phase in a periodic round, so a thousand of them are not served in one burst.

A round of `slots` ticks: the caller whose phase is `tick % slots` is served at that tick. The phase comes
from the call id alone (a stable hash, not Python's salted `hash`), so it needs no table, survives nothing it
need not survive, and callers re-adopted together after a restart spread as evenly as new ones.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable


def phase_of(key: str, slots: int) -> int:
    """The tick, in 0..slots-1, at which `key` is served in each round."""
    if slots < 1:
        raise ValueError("a round needs at least one slot")
    return zlib.crc32(key.encode()) % slots


def fraction_of(key: str) -> float:
    """Where in a period, in [0, 1), `key`'s turn falls: for delays spread over the period."""
    return phase_of(key, 10_000) / 10_000


class Round:
    """A periodic round over a changing set of keys: each key is due once a round, at its own phase.

    A key that is busy at its turn (`busy(key)`: a request about it would wait now) is tried again at each
    following tick, and given its turn regardless one whole round after the one it missed: busy must
    never mean forgotten.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a round needs at least one slot")
        self.slots = slots
        self.tick = 0
        self._missed: dict[str, int] = {}  # key -> the tick of the turn it missed

    def due(self, keys: Iterable[str], busy: Callable[[str], bool] = lambda key: False) -> list[str]:
        """The keys due at this tick, among `keys` (those still there); then the round moves one tick on."""
        tick, now = self.tick, self.tick % self.slots
        present: set[str] | None = set() if now == 0 else None
        due: list[str] = []
        for key in keys:
            if present is not None:
                present.add(key)
            if phase_of(key, self.slots) != now and key not in self._missed:
                continue
            missed_at = self._missed.setdefault(key, tick)
            if busy(key) and tick - missed_at < self.slots:
                continue
            del self._missed[key]
            due.append(key)
        if present is not None:
            # Once a round, forget the turns missed by keys that are gone.
            self._missed = {k: t for k, t in self._missed.items() if k in present}
        self.tick += 1
        return due
