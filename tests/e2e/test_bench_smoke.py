"""`make bench` kept from rotting: its smoke mode runs every section, tiny, on the real Asterisk. No timing is
asserted (the machine is shared and noisy): only that every section is there and no caller was lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import REPO, AsteriskUnderTest


@pytest.mark.timeout(900)
def test_bench_smoke_writes_every_section_and_loses_no_caller(
    asterisk: AsteriskUnderTest, tmp_path: Path
) -> None:
    """Queue(), the bare router and the line each ring their phone for every call; at a tiny rate every
    caller of the sweep reaches a listener; the core's figures and the table are written."""
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bench.run",
            "--smoke",
            "--out",
            str(out),
            "--keep",
            str(tmp_path / "work"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((out / "bench.json").read_text())
    assert {"ring", "sweep", "core", "waiting"} <= results.keys()
    ring = results["ring"]
    for path in ("queue", "router", "helpline"):
        row = ring["paths"][path]
        assert (row["n"], row["rang_nobody"], row["caller_failures"]) == (ring["calls_per_path"], 0, 0), path
    assert set(ring["ratios"]) >= {"helpline_over_router_p50", "helpline_over_queue_p99"}

    (rate,) = results["sweep"]["rates"]
    assert rate["offered"] > 0
    assert (rate["lost"], rate["no_record"], rate["sipp_failed_calls"]) == (0, 0, 0), rate
    # Every caller was screened: the service's screen answered each one.
    assert rate["screens_served"] == rate["offered"], rate
    assert rate["time_to_ring"]["n"] == rate["offered"], rate
    assert rate["service_cpu_ms_per_call"] > 0

    assert {row["floor"] for row in results["core"]} == {"busy", "unservable"}
    assert (out / "core_decisions.json").is_file()
    table = (out / "bench.md").read_text()
    for heading in ("Time-to-ring", "Capacity", "Core decisions", "Waiting"):
        assert heading in table
