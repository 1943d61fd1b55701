"""Benchmark: how long the call queue takes to decide, with many listeners and many callers waiting.

Pure CPU, no Asterisk: the core's `handle(event, now)` timed over realistic event cycles. Two floors:
- busy: every listener on a call, `--waiting` callers queued; a cycle is a call ending (rest), the rest
  ending (the listener becomes free and is offered the head caller), the offer answered.
- unservable: every listener free, `--waiting` callers whom nobody on duty may take (a language nobody
  speaks); a cycle is events that change nothing for them (a listener pausing and resuming, a stale
  hang-up), which must not cost a scan of every listener for every caller.

Writes JSON (run with `make bench`, or `python -m tests.bench.core_decisions --out FILE`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from helpline_pbx.core import (
    CallerArrived,
    CallerLeft,
    CallQueue,
    ListenerOnline,
    ListenerPaused,
    OfferAnswered,
    Policy,
    TimerFired,
    TimerKey,
)
from helpline_pbx.core.commands import Command, OfferCall, StartTimer
from helpline_pbx.core.events import Event
from helpline_pbx.core.routing import Profile, Requirements, volunteers_first

SKILLS = ("legal", "social", "youth", "violence")
LANGUAGES = (frozenset({"fr"}), frozenset({"fr", "en"}), frozenset({"fr", "ar"}))


def profiles(count: int, seed: int) -> list[Profile]:
    """A line's listeners: mostly volunteers, a quarter professionals, a few supervisors and trainees."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        role = rng.choices(("volunteer", "professional", "supervisor"), (70, 25, 5))[0]
        skills = frozenset(s for s in SKILLS if rng.random() < 0.3)
        out.append(Profile(role, skills, rng.choice(LANGUAGES), trainee=rng.random() < 0.05))
    return out


def _policy() -> Policy:
    # No shift limits: the bench runs for simulated hours.
    return Policy(shift_limits={})


class Floor:
    """A queue and a clock, with the commands the executor would act on."""

    def __init__(self) -> None:
        self.queue = CallQueue(_policy())
        self.now = 1_000_000.0
        self.offers: list[OfferCall] = []
        self.timers: dict[TimerKey, float] = {}

    def handle(self, event: Event) -> list[Command]:
        out = self.queue.handle(event, self.now)
        for command in out:
            if isinstance(command, OfferCall):
                self.offers.append(command)
            elif isinstance(command, StartTimer):
                self.timers[command.key] = self.now + command.delay
        return out


def busy_floor(listeners: int, waiting: int, seed: int) -> tuple[Floor, Callable[[], Iterator[Event]]]:
    floor = Floor()
    requirements = Requirements(reach=volunteers_first(60.0))
    for index, profile in enumerate(profiles(listeners, seed)):
        floor.handle(ListenerOnline(f"l{index}", f"PJSIP/l{index}", profile=profile))
    # One call each, answered: everybody is talking.
    served = 0
    while True:
        floor.offers.clear()
        floor.handle(CallerArrived(f"c{served}", "main", requirements=requirements))
        served += 1
        if not floor.offers:
            break
        offer = floor.offers[0]
        floor.handle(OfferAnswered(offer.call_id, offer.listener_id))
    for index in range(waiting):
        floor.handle(CallerArrived(f"w{index}", "main", requirements=requirements))
    talking = deque((v.call_id, v.listener_id) for v in floor.queue.calls() if v.listener_id is not None)

    def cycle() -> Iterator[Event]:
        while True:
            call_id, listener_id = talking.popleft()
            floor.now += 0.01
            yield CallerLeft(call_id)
            floor.offers.clear()
            yield TimerFired(TimerKey("rest", call_id, listener_id))
            for offer in list(floor.offers):
                yield OfferAnswered(offer.call_id, offer.listener_id)
                talking.append((offer.call_id, offer.listener_id))
            floor.handle(CallerArrived(f"n{floor.now}", "main", requirements=requirements))

    assert talking, "nobody on a call"
    return floor, cycle


def unservable_floor(listeners: int, waiting: int, seed: int) -> tuple[Floor, Callable[[], Iterator[Event]]]:
    floor = Floor()
    for index, profile in enumerate(profiles(listeners, seed)):
        floor.handle(ListenerOnline(f"l{index}", f"PJSIP/l{index}", profile=profile))
    nobody = Requirements(language="de")
    for index in range(waiting):
        floor.handle(CallerArrived(f"w{index}", "main", requirements=nobody))
    assert not floor.offers

    def cycle() -> Iterator[Event]:
        index = 0
        while True:
            lid = f"l{index % listeners}"
            floor.now += 0.01
            yield ListenerPaused(lid, "personal")
            yield ListenerOnline(lid, f"PJSIP/{lid}")
            yield CallerLeft("gone")
            index += 1

    return floor, cycle


def measure(floor: Floor, events: Iterator[Event], count: int) -> dict[str, float]:
    times = []
    for _ in range(count):
        event = next(events)
        started = time.perf_counter_ns()
        floor.handle(event)
        times.append((time.perf_counter_ns() - started) / 1000)
    times.sort()
    return {
        "events": count,
        "mean_us": round(statistics.fmean(times), 1),
        "p50_us": round(times[len(times) // 2], 1),
        "p99_us": round(times[int(len(times) * 0.99)], 1),
        "max_us": round(times[-1], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--waiting", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = []
    for listeners in args.listeners:
        for name, build in (("busy", busy_floor), ("unservable", unservable_floor)):
            started = time.perf_counter()
            floor, cycle = build(listeners, args.waiting, args.seed)
            setup = time.perf_counter() - started
            row = {"floor": name, "listeners": listeners, "waiting": args.waiting, "setup_s": round(setup, 2)}
            row |= measure(floor, cycle(), args.events)
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"core_decisions": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
