"""A bounded load on the real Asterisk, the service running as its own process: callers arrive faster than
the listeners can answer, give up after a random patience or are served; listeners ring and talk for random
times. The long version is `python -m tests.load.soak`."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import AsteriskUnderTest
from tests.load.soak import AsteriskTarget, LoadPlan, Span, run_load

# About 35 s of wall time: 8 s of arrivals, then at most 20 s of patience, set-up and settling.
SHORT = LoadPlan(
    callers=40,
    rate=5,
    listeners=6,
    patience=Span(3_000, 20_000),
    ringing=Span(300, 2_000),
    talk=Span(500, 4_000),
    ring_timeout=8,
    rest_after_call=0.5,
)
# Loose on purpose: a short run only catches a gross leak (a few hundred kB per call).
MAX_GROWTH_MB = 20.0


async def test_bounded_load_strands_nobody_and_double_books_nobody(
    asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    """40 callers at 5/s, 6 listeners: each caller is served or hangs up by themselves, one record each,
    no listener on two calls at once, nothing left on Asterisk, the service's memory flat."""
    target = AsteriskTarget.from_script(start=False)
    assert (target.ari_url, target.app) == (asterisk.ari_url, asterisk.app)

    report = await run_load(SHORT, target, tmp_path)

    assert report.problems(max_growth_mb=MAX_GROWTH_MB) == [], report.summary()
    # Both ways out were taken: the run really tested queueing under load, not an idle line.
    assert report.served >= SHORT.listeners, report.summary()
    assert report.abandoned > 0, report.summary()
    assert report.served + report.abandoned == SHORT.callers
    # The leftover check sees the run's channels while they live, so its "nothing left" means something.
    assert report.asterisk_channels_peak > SHORT.listeners, report.summary()
    assert len(report.rss_samples) >= 10
