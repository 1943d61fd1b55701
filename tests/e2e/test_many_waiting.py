"""Many callers waiting at once on the real Asterisk, the service as its own process: the 1,000-waiting bench
(tests/bench/waiting.py) at the size that runs in a couple of minutes."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from tests.bench.waiting import measure
from tests.conftest import REPO, AsteriskUnderTest

CALLERS = 200
PHONES = 4


# Admissions at 15/s, two waits, a restart and the fallback's turns: about four minutes on a loaded 2-core box.
@pytest.mark.timeout(900)
async def test_many_waiting_survive_a_kill_and_a_drain(asterisk: AsteriskUnderTest, tmp_path: Path) -> None:
    """200 callers wait (two phones on duty never answer): no ARI request refused, all re-adopted after a
    kill -9 of the service, and the drain sends each of them to the phones or the message, the fallback
    ringing the phones for a bounded number of them at once, Asterisk still answering ARI."""
    args = argparse.Namespace(
        callers=CALLERS,
        rate=15.0,
        phones=PHONES,
        announce=20,
        hold=12.0,
        drain_wait=150.0,
        fallback_ring=4,
        fallback_wait=8,
        workdir=str(tmp_path),
        out=None,
    )

    report = await measure(args)

    assert report["admitted"] == CALLERS, report
    refused = report["ari_refused"]
    # Asterisk turned no session away, and no request failed or waited too long for the pool, at any time.
    assert refused["asterisk_sessions_refused"] == 0, report
    assert not {"ari.request_failed", "ari.request_queue_timeout"} & set(refused["service"]), report
    # No request timed out while the callers waited and were re-adopted. (While they are sent to the
    # fallback, a removeChannel for a caller hearing a prompt waits for it to stop: counted, not judged.)
    assert refused["service_before_drain"] == 0, report
    assert report["max_in_flight"] is not None, report  # the pool reported: the figure means something
    assert report["reconnected"], report
    assert report["waiting_before_kill"] >= CALLERS - PHONES, report  # the few being offered aside
    assert report["readopted"] == report["waiting_before_kill"], report
    drain = report["drain"]
    assert drain["followed"] == report["waiting_before_drain"] >= CALLERS - PHONES, report
    assert drain["never_seen_in_fallback"] == 0, report
    assert drain["reached_phones_or_message"] == drain["followed"], report
    assert drain["left_after_wait"] == 0, report
    assert drain["asterisk_alive"], report
    # Three channels a caller (trunk, both halves of the Local channel); the fallback adds at most its bound
    # of ring legs in all (the dialplan's HELPLINE_FALLBACK_LEGS), below one per phone for every caller.
    legs = fallback_legs()
    assert legs < CALLERS * PHONES
    assert drain["channels_peak"] <= 3 * CALLERS + legs + 5, report
    assert drain["rang_phones"] > 0, report  # the bound let callers through to the phones, not only waits


def fallback_legs() -> int:
    """The dialplan's bound on the fallback's ring legs."""
    dialplan = (REPO / "dialplan" / "extensions.conf").read_text(encoding="utf-8")
    found = re.search(r"^HELPLINE_FALLBACK_LEGS = (\d+)$", dialplan, re.M)
    assert found, "the dialplan sets HELPLINE_FALLBACK_LEGS"
    return int(found[1])
