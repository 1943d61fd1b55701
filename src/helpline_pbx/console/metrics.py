"""Prometheus metrics, in the text format at /metrics.

Labels are bounded and name no one: a line's name, an outcome, a listener state. Never a call id, a
channel, a listener's name or anything of a caller.

The wait histogram keeps one count per whole second of wait (up to an hour, then one overflow count) and
exposes the usual buckets plus each line's service-level threshold, whatever it is now: a threshold edited
later is still an exact bucket, with the counts of every call since the service started.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from helpline_pbx.core import Command, Event
from helpline_pbx.core.commands import ListenerState, RecordCall
from helpline_pbx.core.model import CallState, CallView, ListenerView

PREFIX = "helpline"
STANDARD_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1800)
LONGEST_BIN = 3600
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Sources:
    """Where the live figures are read at each scrape (the service's running parts)."""

    calls: Callable[[], Iterable[CallView]]
    listeners: Callable[[], Iterable[ListenerView]]
    thresholds: Callable[[], Mapping[str, int]]
    ari_connected: Callable[[], bool]
    ari_connections: Callable[[], int]
    lane_failures: Callable[[], int]
    roster_write_retries: Callable[[], int]


class _Waits:
    def __init__(self) -> None:
        self.bins = [0] * (LONGEST_BIN + 2)
        self.total = 0.0
        self.count = 0

    def add(self, seconds: float) -> None:
        index = min(LONGEST_BIN + 1, max(0, math.ceil(seconds)))
        self.bins[index] += 1
        self.total += seconds
        self.count += 1

    def at_most(self, bound: int) -> int:
        return sum(self.bins[: bound + 1])


class Metrics(Collector):
    def __init__(self, sources: Sources) -> None:
        self._sources = sources
        self._calls: dict[tuple[str, str, str], int] = {}
        self._waits: dict[str, _Waits] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def on_decision(self, event: Event, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, RecordCall):
                record = command.record
                key = (record.line, record.outcome, "true" if record.practice else "false")
                self._calls[key] = self._calls.get(key, 0) + 1
                if not record.practice:
                    self._waits.setdefault(record.line, _Waits()).add(record.wait_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            f"{PREFIX}_calls",
            "Calls ended, by line, outcome and practice",
            labels=["line", "outcome", "practice"],
        )
        for (line, outcome, practice), count in sorted(self._calls.items()):
            calls.add_metric([line, outcome, practice], count)
        yield calls

        thresholds = self._sources.thresholds()
        waits = HistogramMetricFamily(
            f"{PREFIX}_wait_seconds",
            "How long callers waited before the call ended or was answered (real calls)",
            labels=["line"],
        )
        for line, counts in sorted(self._waits.items()):
            bounds = sorted({*STANDARD_BUCKETS, *(t for t in [thresholds.get(line)] if t)})
            buckets = [(str(float(b)), counts.at_most(b)) for b in bounds if b <= LONGEST_BIN]
            buckets.append(("+Inf", counts.count))
            waits.add_metric([line], buckets, counts.total)
        yield waits

        waiting = GaugeMetricFamily(f"{PREFIX}_waiting_callers", "Callers not yet connected", labels=["line"])
        per_line: dict[str, int] = dict.fromkeys(thresholds, 0)
        for call in self._sources.calls():
            if call.state is not CallState.CONNECTED:
                per_line[call.line] = per_line.get(call.line, 0) + 1
        for line, count in sorted(per_line.items()):
            waiting.add_metric([line], count)
        yield waiting

        listeners = GaugeMetricFamily(f"{PREFIX}_listeners", "Listeners by state", labels=["state"])
        states = dict.fromkeys([*(s.value for s in ListenerState), "unregistered"], 0)
        for view in self._sources.listeners():
            state = view.state.value
            if view.online and not view.reachable and view.state is ListenerState.AVAILABLE:
                state = "unregistered"
            states[state] += 1
        for state, count in states.items():
            listeners.add_metric([state], count)
        yield listeners

        yield GaugeMetricFamily(
            f"{PREFIX}_ari_connected",
            "1 while the ARI events socket is open",
            value=int(self._sources.ari_connected()),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_ari_reconnects",
            "Times the ARI events socket opened again after the first",
            value=max(0, self._sources.ari_connections() - 1),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_lane_failures",
            "ARI work that failed in a call's or listener's lane",
            value=self._sources.lane_failures(),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_roster_write_retries",
            "Roster writes tried again because the database was down or locked",
            value=self._sources.roster_write_retries(),
        )
