"""The auth-failure log: one line per failed SIP login, for ops and fail2ban; never anything of a caller.

The service reads Asterisk's security events over AMI (helpline_pbx.ami) and writes what
helpline_pbx.core.auth_failures keeps: time, source address and port, and the listener's endpoint tried.
The file is opened for each line, so a log rotation (move or copytruncate) needs no signal.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Set
from datetime import UTC, datetime
from pathlib import Path

import structlog

from helpline_pbx.ami import AmiSession
from helpline_pbx.core.auth_failures import KEPT_HEADERS, AuthFailure, auth_failure, log_line

log = structlog.get_logger(__name__)

ListenerEndpoints = Callable[[], Awaitable[Set[str]]]
# The roster is read again at most this often while failures arrive (a guessing phone sends many).
_ENDPOINTS_TTL = 5.0
_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


class AuthFailureFile:
    """Appends lines to a file only its user reads (0600 in a 0700 folder, whatever the umask)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, line: str) -> None:
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)


class AuthFailureWatcher:
    """Keeps an AMI session open (reconnecting) and logs every failed login it reports."""

    def __init__(
        self,
        session: Callable[[], AmiSession],
        listener_endpoints: ListenerEndpoints,
        out: AuthFailureFile,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._listener_endpoints = listener_endpoints
        self.out = out
        self._clock = clock
        self._endpoints: Set[str] = frozenset()
        self._endpoints_read = -_ENDPOINTS_TTL
        self.connected = asyncio.Event()
        self.failures = 0

    async def _listeners(self) -> Set[str]:
        if time.monotonic() - self._endpoints_read >= _ENDPOINTS_TTL:
            self._endpoints = await self._listener_endpoints()
            self._endpoints_read = time.monotonic()
        return self._endpoints

    async def handle(self, event: dict[str, str]) -> AuthFailure | None:
        failure = auth_failure(event, await self._listeners(), self._clock())
        if failure is not None:
            self.out.append(log_line(failure))
            self.failures += 1
        return failure

    async def run(self) -> None:
        """Until cancelled: a lost or refused session is retried with a growing delay."""
        attempt = 0
        while True:
            try:
                async with self._session() as ami:
                    attempt = 0
                    self.connected.set()
                    log.info("auth_failure_log_connected", path=str(self.out.path))
                    async for event in ami.events(KEPT_HEADERS):
                        await self.handle(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The exception's text may hold an event's bytes: only its type is logged.
                log.warning("auth_failure_log_disconnected", error=type(exc).__name__)
            self.connected.clear()
            await asyncio.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
            attempt += 1
