"""The waiting room's view of the queue: a caller's place, and their estimated wait from recent calls."""

from __future__ import annotations

from collections import deque

from helpline_pbx.core import CallQueue, CallRecord
from helpline_pbx.core.estimate import estimated_wait, overloaded
from helpline_pbx.lines.snapshots import LineSnapshot

# How many recent served calls the estimate averages.
RECENT_CALLS = 20


class WaitEstimates:
    def __init__(self, queue: CallQueue, rest_after_call: float) -> None:
        self._queue = queue
        self._rest_after_call = rest_after_call
        # Talk times of recent served calls (not practice ones), for the estimate. Lost on restart: until
        # three calls have been served again, callers hear their place without a figure.
        self._talks: deque[float] = deque(maxlen=RECENT_CALLS)

    def served(self, record: CallRecord) -> None:
        if record.outcome == "served" and record.talk_seconds > 0 and not record.practice:
            self._talks.append(record.talk_seconds)

    def position(self, call_id: str) -> int | None:
        return self._queue.position(call_id)

    def estimate(self, line: LineSnapshot, call_id: str, position: int | None) -> float | None:
        if position is None:
            return None
        rest = line.rest_after_call
        return estimated_wait(
            position,
            self._queue.on_duty(call_id),
            self._talks,
            rest_seconds=self._rest_after_call if rest is None else float(rest),
        )

    def overloaded(self, line: LineSnapshot, call_id: str) -> bool:
        position = self.position(call_id) or 1
        return overloaded(line.max_wait, self.estimate(line, call_id, position), self._queue.on_duty(call_id))
