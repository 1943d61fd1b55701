"""A read-only Asterisk Manager Interface session: log in, then read events.

The service uses AMI for security events alone (asterisk-config/manager.conf lets its user read nothing
else, and only failed digest responses). An event's headers are read line by line and only those the caller
asks for are kept: whatever else Asterisk sends (a Call-ID, a nonce) is dropped as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from types import TracebackType
from typing import Self

_LINE_LIMIT = 8192
_MAX_HEADERS = 64


class AmiError(RuntimeError):
    """The manager refused the login or spoke something else than AMI."""


class AmiSession:
    """One TCP session; an async context manager that logs in on entry and closes on exit."""

    def __init__(self, host: str, port: int, user: str, secret: str, *, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.user = user
        self._secret = secret
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def __repr__(self) -> str:
        return f"AmiSession({self.host}:{self.port}, user={self.user!r})"

    async def __aenter__(self) -> Self:
        async with asyncio.timeout(self._timeout):
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=_LINE_LIMIT
            )
            try:
                banner = await self._reader.readline()
                if not banner.startswith(b"Asterisk Call Manager/"):
                    raise AmiError(f"{self.host}:{self.port} is not an Asterisk manager")
                self._writer.write(
                    b"Action: Login\r\nUsername: "
                    + self.user.encode()
                    + b"\r\nSecret: "
                    + self._secret.encode()
                    + b"\r\nEvents: security\r\n\r\n"
                )
                await self._writer.drain()
                reply = await self._message({"Response", "Message"})
                if reply.get("Response") != "Success":
                    raise AmiError(f"the manager refused user {self.user!r}: {reply.get('Message', '')}")
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _message(self, keep: Collection[str]) -> dict[str, str]:
        """Read one message (headers up to a blank line), keeping only the headers named in `keep`."""
        if self._reader is None:
            raise AmiError("the session is closed")
        kept: dict[str, str] = {}
        lines = 0
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionError("the manager closed the session")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                if kept:
                    return kept
                lines = 0
                continue
            lines += 1
            if lines > _MAX_HEADERS:
                raise AmiError("a manager message with too many headers")
            name, sep, value = text.partition(":")
            if sep and name in keep:
                kept[name] = value.strip()

    async def events(self, keep: Collection[str]) -> AsyncIterator[dict[str, str]]:
        """Every event until the session ends (ConnectionError), each reduced to the headers in `keep`."""
        wanted = {"Event", *keep}
        while True:
            message = await self._message(wanted)
            if "Event" in message:
                yield message
