"""A minimal FastAGI server: the dialplan's one chance to hand the service something before Stasis.

The dialplan runs ``AGI(agi://127.0.0.1:4573/screen)`` while the caller's number is still on the channel;
Asterisk connects, sends its ``agi_*`` environment (number included), and waits. The handler turns what it
needs into channel variables (a pseudonymous token, a verdict), the server sets them with
``SET VARIABLE`` and hangs up the AGI connection, and the dialplan wipes the number.

Whatever goes wrong here (a handler that raises or stalls, garbage, a silent peer, a caller who hangs up)
ends with the connection closed and nothing set: the dialplan must treat a missing variable as "no
answer" and carry on, so a failure here never strands a caller. The environment carries the caller's
identity, so the only things ever logged are the request path (when it is a plain word) and the channel's
``agi_uniqueid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias
from urllib.parse import urlsplit

import structlog

from helpline_pbx.addresses import is_loopback

log = structlog.get_logger(__name__)

_LINE_LIMIT = 8192
_MAX_ENV_LINES = 256
_MAX_USAGE_LINES = 64
_ENV_KEY = re.compile(r"^agi_[a-z0-9_]{1,64}$")
# Plain variables, or a dialplan function with simple arguments: CALLERID(num).
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}(?:\([A-Za-z0-9_,\-]{0,40}\))?$")
_MAX_VALUE_CHARS = 1024
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_RESULT = re.compile(r"(?:^|\s)result=(-?\d+)")
# Only paths without digits are logged: a dialplan could put a number in the URL.
_LOGGABLE_PATH = re.compile(r"^/[A-Za-z_\-/]{0,63}$")
_LOGGABLE_UNIQUEID = re.compile(r"^(?:[A-Za-z0-9_\-]{1,32}-)?\d{9,11}\.\d{1,9}$")

AgiHandler: TypeAlias = Callable[["AgiRequest"], Mapping[str, str] | Awaitable[Mapping[str, str]]]


@dataclass(frozen=True, slots=True, repr=False)
class AgiRequest:
    """One AGI request: the ``agi_*`` environment, and the path and query of its ``agi://`` URL.

    The environment holds the caller's number and name (``agi_callerid``, ``agi_calleridname``, and
    maybe ``agi_rdnis``/``agi_dnid``): the repr shows none of it.
    """

    path: str
    env: Mapping[str, str] = field(default_factory=dict)
    query: str = ""

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> AgiRequest:
        # Asterisk relays what follows the host in the URL as agi_network_script ("screen", "screen?a=b").
        script = env.get("agi_network_script")
        if script is None:
            script = urlsplit(env.get("agi_request", "")).path
        path, _, query = script.partition("?")
        return cls(path="/" + path.lstrip("/"), env=MappingProxyType(dict(env)), query=query)

    def get(self, name: str) -> str | None:
        """An environment value by its name, with or without the ``agi_`` prefix."""
        return self.env.get(name if name.startswith("agi_") else "agi_" + name)

    @property
    def uniqueid(self) -> str | None:
        return self.env.get("agi_uniqueid")

    @property
    def channel(self) -> str | None:
        return self.env.get("agi_channel")

    @property
    def caller_number(self) -> str | None:
        """The raw calling number, exactly as Asterisk sent it (``unknown`` when there is none)."""
        return self.env.get("agi_callerid")

    @property
    def args(self) -> tuple[str, ...]:
        """The dialplan's extra arguments: ``AGI(agi://.../screen,a,b)`` gives ``("a", "b")``."""
        values: list[str] = []
        while (value := self.env.get(f"agi_arg_{len(values) + 1}")) is not None:
            values.append(value)
        return tuple(values)

    def __repr__(self) -> str:
        return (
            f"AgiRequest(path={loggable_path(self.path)!r}, uniqueid={loggable_uniqueid(self.uniqueid)!r}, "
            f"env_keys={len(self.env)})"
        )


def loggable_path(path: str) -> str:
    return path if _LOGGABLE_PATH.match(path) else "[unlisted]"


def loggable_uniqueid(uniqueid: str | None) -> str | None:
    return uniqueid if uniqueid is not None and _LOGGABLE_UNIQUEID.match(uniqueid) else None


class _AgiFailure(Exception):
    """Why a conversation stopped; ``reason`` is a fixed word, safe to log."""

    def __init__(self, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(slots=True)
class _Conversation:
    path: str = "[unknown]"
    uniqueid: str | None = None
    variables: int = 0


class AgiServer:
    """FastAGI on asyncio streams: read the environment, call the handler, set its variables, close.

    ``handler`` may be a plain function or a coroutine function; it returns the channel variables to set.
    Loopback only unless ``allow_remote=True``: the environment carries caller identities in clear text.
    ``read_timeout`` bounds the wait for the environment and for each reply; ``handler_timeout`` bounds
    the handler (a caller is waiting in silence meanwhile).
    """

    def __init__(
        self,
        handler: AgiHandler,
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        allow_remote: bool = False,
        read_timeout: float = 5.0,
        handler_timeout: float = 3.0,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                "the AGI server binds to loopback only; pass allow_remote=True to listen elsewhere"
            )
        self._handler = handler
        self._host = host
        self._port = port
        self._read_timeout = read_timeout
        self._handler_timeout = handler_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port once started (useful with port 0), else the configured one."""
        if self._server is not None and self._server.sockets:
            bound: int = self._server.sockets[0].getsockname()[1]
            return bound
        return self._port

    @property
    def host(self) -> str:
        return self._host

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the AGI server is already started")
        self._server = await asyncio.start_server(self._serve, self._host, self._port, limit=_LINE_LIMIT)
        log.info("agi.listening", host=self._host, port=self.port)

    async def close(self) -> None:
        """Stop listening and cut the conversations in progress (their dialplans carry on)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        pending = list(self._connections)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()
        log.info("agi.closed", cut=len(pending))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        talk = _Conversation()
        try:
            await self._converse(reader, writer, talk)
            log.info("agi.served", path=talk.path, uniqueid=talk.uniqueid, variables=talk.variables)
        except _AgiFailure as failure:
            fields = {"error": failure.error} if failure.error else {}
            log.warning("agi.failed", reason=failure.reason, path=talk.path, uniqueid=talk.uniqueid, **fields)
        except Exception as exc:
            # Last resort: the server keeps serving whatever broke in one conversation.
            log.error(
                "agi.failed",
                reason="internal",
                error=type(exc).__name__,
                path=talk.path,
                uniqueid=talk.uniqueid,
            )
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                async with asyncio.timeout(self._read_timeout):
                    await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, talk: _Conversation
    ) -> None:
        env = await self._read_environment(reader)
        request = AgiRequest.from_environment(env)
        talk.path = loggable_path(request.path)
        talk.uniqueid = loggable_uniqueid(request.uniqueid)
        commands = _set_variable_commands(await self._call_handler(request))
        for command in commands:
            writer.write(command)
            try:
                async with asyncio.timeout(self._read_timeout):
                    await writer.drain()
            except (ConnectionError, TimeoutError):
                raise _AgiFailure("connection_lost") from None
            await self._read_reply(reader)
            talk.variables += 1

    async def _read_environment(self, reader: asyncio.StreamReader) -> dict[str, str]:
        env: dict[str, str] = {}
        try:
            # Asterisk sends the whole block at once: one deadline for all of it.
            async with asyncio.timeout(self._read_timeout):
                while True:
                    line = await _readline(reader)
                    if line == "":
                        break
                    key, colon, value = line.partition(":")
                    if not colon or not _ENV_KEY.match(key) or key in env or len(env) >= _MAX_ENV_LINES:
                        raise _AgiFailure("malformed_environment")
                    env[key] = value[1:] if value.startswith(" ") else value
        except TimeoutError:
            raise _AgiFailure("timeout") from None
        if not env:
            raise _AgiFailure("malformed_environment")
        return env

    async def _call_handler(self, request: AgiRequest) -> Mapping[str, str]:
        try:
            async with asyncio.timeout(self._handler_timeout):
                result = self._handler(request)
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError:
            raise _AgiFailure("handler_timeout") from None
        except Exception as exc:
            # The type only: a message could quote the environment.
            raise _AgiFailure("handler_error", type(exc).__name__) from None
        if not isinstance(result, Mapping):
            raise _AgiFailure("handler_error", "not_a_mapping")
        return result

    async def _read_reply(self, reader: asyncio.StreamReader) -> None:
        try:
            async with asyncio.timeout(self._read_timeout):
                line = await _readline(reader)
                if line.startswith("520-"):
                    # Asterisk's usage text: several lines, the last one "520 End of proper usage."
                    for _ in range(_MAX_USAGE_LINES):
                        if (await _readline(reader)).startswith("520 "):
                            break
                    raise _AgiFailure("command_rejected")
        except TimeoutError:
            raise _AgiFailure("timeout") from None
        if line == "HANGUP" or line.startswith("511"):
            raise _AgiFailure("hangup")
        code, _, rest = line.partition(" ")
        if code in ("510", "520"):
            raise _AgiFailure("command_rejected")
        result = _RESULT.search(rest)
        if code != "200" or result is None:
            raise _AgiFailure("malformed_reply")
        if result[1] == "-1":
            raise _AgiFailure("hangup")


async def _readline(reader: asyncio.StreamReader) -> str:
    """One line without its end; the connection's end or an overlong line is a failure."""
    try:
        raw = await reader.readline()
    except ValueError:
        raise _AgiFailure("line_too_long") from None
    except ConnectionError:
        raise _AgiFailure("connection_lost") from None
    if not raw.endswith(b"\n"):
        raise _AgiFailure("connection_lost")
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _set_variable_commands(variables: Mapping[str, str]) -> list[bytes]:
    """All the ``SET VARIABLE`` lines, checked before any is sent: all or nothing reaches the channel."""
    commands: list[bytes] = []
    for name, value in variables.items():
        if not isinstance(name, str) or not _VARIABLE_NAME.match(name):
            raise _AgiFailure("invalid_variable")
        if not isinstance(value, str) or len(value) > _MAX_VALUE_CHARS or _CONTROL_CHARS.search(value):
            raise _AgiFailure("invalid_variable")
        commands.append(f'SET VARIABLE {name} "{quote_argument(value)}"\n'.encode())
    return commands


def quote_argument(value: str) -> str:
    """Escape a value for a double-quoted AGI argument (Asterisk's parse_args: backslash escapes)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
