"""/metrics: counts by line and outcome, a wait histogram with each line's threshold as a bucket, live
gauges; labels that name no one."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from helpline_pbx.console.metrics import Metrics, Sources
from helpline_pbx.core.commands import CallRecord, ListenerState, RecordCall
from helpline_pbx.core.events import CallerArrived
from helpline_pbx.core.model import CallState, CallView, ListenerView


def _record(call_id: str, line: str, outcome: str, wait: float, practice: bool = False) -> RecordCall:
    return RecordCall(
        CallRecord(
            call_id=call_id,
            line=line,
            queued_at=0,
            first_offered_at=None,
            answered_at=None,
            ended_at=wait,
            outcome=outcome,  # type: ignore[arg-type]
            listener_id="l-secret-id",
            offers=0,
            wait_seconds=wait,
            talk_seconds=0,
            practice=practice,
        )
    )


def _metrics(thresholds: dict[str, int]) -> Metrics:
    return Metrics(
        Sources(
            calls=lambda: [CallView("helpline-abc", "jeunes", CallState.WAITING, 0, None, 0)],
            listeners=lambda: [
                ListenerView("l1", ListenerState.AVAILABLE, "ep-camille", 0, None, None, True, False)
            ],
            thresholds=lambda: thresholds,
            ari_connected=lambda: True,
            ari_connections=lambda: 3,
            lane_failures=lambda: 2,
            roster_write_retries=lambda: 5,
        )
    )


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_calls_and_waits_with_the_lines_threshold_as_an_exact_bucket() -> None:
    metrics = _metrics({"jeunes": 25})
    event = CallerArrived(call_id="x", line="jeunes")
    metrics.on_decision(
        event,
        [
            _record("a", "jeunes", "served", 24.5),
            _record("b", "jeunes", "served", 25.2),
            _record("c", "jeunes", "abandoned", 3),
            _record("d", "jeunes", "served", 10, practice=True),
        ],
    )
    samples = _samples(metrics)
    assert (
        samples[("helpline_calls_total", (("line", "jeunes"), ("outcome", "served"), ("practice", "false")))]
        == 2
    )
    assert (
        samples[("helpline_calls_total", (("line", "jeunes"), ("outcome", "served"), ("practice", "true")))]
        == 1
    )
    bucket = ("helpline_wait_seconds_bucket", (("le", "25.0"), ("line", "jeunes")))
    assert samples[bucket] == 2  # 3 s and 24.5 s; 25.2 s is over; the practice call is not counted
    assert samples[("helpline_wait_seconds_bucket", (("le", "20.0"), ("line", "jeunes")))] == 1
    assert samples[("helpline_wait_seconds_count", (("line", "jeunes"),))] == 3
    assert samples[("helpline_waiting_callers", (("line", "jeunes"),))] == 1
    assert samples[("helpline_listeners", (("state", "unregistered"),))] == 1
    assert samples[("helpline_ari_reconnects_total", ())] == 2
    assert samples[("helpline_lane_failures_total", ())] == 2
    assert samples[("helpline_roster_write_retries_total", ())] == 5


def test_a_threshold_edited_later_is_still_an_exact_bucket() -> None:
    thresholds = {"jeunes": 25}
    metrics = _metrics(thresholds)
    metrics.on_decision(CallerArrived(call_id="x", line="jeunes"), [_record("a", "jeunes", "served", 41)])
    thresholds["jeunes"] = 42
    samples = _samples(metrics)
    assert samples[("helpline_wait_seconds_bucket", (("le", "42.0"), ("line", "jeunes")))] == 1
    assert ("helpline_wait_seconds_bucket", (("le", "25.0"), ("line", "jeunes"))) not in samples


def test_no_label_carries_a_call_a_channel_or_a_listener() -> None:
    metrics = _metrics({"jeunes": 30})
    metrics.on_decision(
        CallerArrived(call_id="x", line="jeunes"), [_record("helpline-abc", "jeunes", "served", 5)]
    )
    text = metrics.exposition().decode()
    for secret in ("helpline-abc", "l-secret-id", "ep-camille", "l1"):
        assert secret not in text
