"""What the 1,000-waiting bench sees from outside the service: Asterisk's channels and files, the service's
log, and Asterisk's own log of HTTP sessions it refused.

The watch lists every channel (`GET /channels`) twice a second: the service never does (the trunk's
channels carry what the carrier sent), but the bench only counts them and notes which dialplan step each of
its callers' channels reached; no caller id is read into the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.errors import AriError

FALLBACK_CONTEXT = "helpline-fallback"
# Asterisk's warning when a connection would go over http.conf's sessionlimit (main/http.c).
SESSION_REFUSED = "HTTP session count exceeded"
# The service's words for an ARI request that did not get through (ari/http.py).
REFUSALS = ("ari.request_failed", "ari.request_timeout", "ari.request_queue_timeout")


def log_entries(path: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
    return entries


def first(entries: list[dict[str, Any]], event: str) -> dict[str, Any] | None:
    return next((e for e in entries if e.get("event") == event), None)


def at(entry: dict[str, Any] | None) -> float | None:
    if entry is None or "timestamp" not in entry:
        return None
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()


def refusals(entries: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e["event"]) for e in entries if e.get("event") in REFUSALS)


def peak_in_flight(entries: list[dict[str, Any]]) -> int | None:
    """The most ARI requests the service had in flight at once, from its pool's reports (none: unknown)."""
    peaks = [int(e["peak"]) for e in entries if e.get("event") == "ari.pool" and "peak" in e]
    return max(peaks) if peaks else None


def warnings(entries: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e.get("event")) for e in entries if e.get("level") in ("warning", "error", "critical"))


class AsteriskLog:
    """Asterisk's messages.log, read from where a run started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._start = self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def sessions_refused(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self._start)
                return f.read().decode(errors="replace").count(SESSION_REFUSED)
        except OSError:
            return 0


def open_files(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass
class Watch:
    """Samples Asterisk while it runs: channels and open files at their peak, whether ARI answered, and for
    each channel id in `followed` the dialplan applications it was seen in within the fallback."""

    ari: AriClient
    asterisk_pid: int | None
    followed: set[str] = field(default_factory=set)
    channels_peak: int = 0
    files_peak: int = 0
    samples: int = 0
    ari_failures: int = 0
    seen_in_fallback: dict[str, set[str]] = field(default_factory=dict)
    live_followed: int = 0

    async def sample(self) -> None:
        try:
            channels = await self.ari.list_channels()
        except AriError:
            self.ari_failures += 1
            return
        self.samples += 1
        self.channels_peak = max(self.channels_peak, len(channels))
        self.files_peak = max(self.files_peak, open_files(self.asterisk_pid) or 0)
        live = 0
        for channel in channels:
            if channel.id not in self.followed:
                continue
            live += 1
            plan = channel.dialplan
            if plan is not None and plan.context == FALLBACK_CONTEXT:
                self.seen_in_fallback.setdefault(channel.id, set()).add(plan.app_name or "")
        self.live_followed = live

    async def run(self, every: float = 0.5) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(every)

    def outcome(self) -> dict[str, int]:
        """How the followed callers ended: ringing the phones (Dial), hearing the message (Playback),
        waiting for a free ringing slot (MusicOnHold), or never seen in the fallback at all."""
        apps = self.seen_in_fallback.values()
        return {
            "followed": len(self.followed),
            "seen_in_fallback": len(self.seen_in_fallback),
            "rang_phones": sum(1 for a in apps if "Dial" in a),
            "heard_message": sum(1 for a in apps if "Playback" in a),
            "waited_for_slot": sum(1 for a in apps if "MusicOnHold" in a),
            "reached_phones_or_message": sum(1 for a in apps if "Dial" in a or "Playback" in a),
            "never_seen_in_fallback": len(self.followed - set(self.seen_in_fallback)),
        }
