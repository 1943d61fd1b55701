"""The core behind one function that every part at the edge feeds: an event in, its commands handed to
the executor, then the event and its commands shown to the observers (the waiting room, live views, tests).

Only ever called from the event loop, so the core needs no lock. `perform` is set once the executor
exists (the executor itself feeds the core: a timer fired, a ring failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from helpline_pbx.core import CallQueue, Command, Event

Observer = Callable[[Event, list[Command]], None]


def _unwired(command: Command) -> None:
    raise RuntimeError(f"no executor wired to carry out {type(command).__name__}")


class CoreLoop:
    def __init__(self, queue: CallQueue) -> None:
        self.queue = queue
        self.perform: Callable[[Command], None] = _unwired
        self.observers: list[Observer] = []

    def feed(self, event: Event) -> None:
        commands = self.queue.handle(event, time.time())
        for command in commands:
            self.perform(command)
        for observer in self.observers:
            observer(event, commands)
