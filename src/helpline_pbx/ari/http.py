"""ARI's HTTP transport: one authenticated session, requests with their errors mapped, replies validated,
never more in flight at once than the pool allows (ari/pool.py)."""

from __future__ import annotations

import base64
import json as jsonlib
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from pydantic import BaseModel, SecretStr, ValidationError
from yarl import URL

from helpline_pbx.ari.errors import AriServerError, AriUnavailable, error_for_status
from helpline_pbx.ari.pool import DEFAULT_SESSION_LIMIT, RequestPool, RequestQueueTimeout, pool_size

log = structlog.get_logger(__name__)

ParamValue = str | int | float | bool | None
M = TypeVar("M", bound=BaseModel)

# Seconds a request may wait for a slot before it fails: far longer than a burst of a thousand requests
# takes to pass (a few milliseconds each), short enough that a caller's lane is not held up for long.
DEFAULT_QUEUE_WAIT = 10.0
# Seconds an idle connection is kept for reuse: well under Asterisk's `session_keep_alive` (15 s), so we
# never send a request on a connection Asterisk is closing at that very moment.
IDLE_CONNECTION = 4.0
# Seconds a slot stays taken after a request timed out: Asterisk lets go of its session only once it has
# answered, and a request about a channel in a bridge waits for that channel's playback to end (our longest
# prompt, the overloaded message with the alternatives, lasts under a minute).
ABANDONED_SESSION = 60.0
# How often the pool's figures are logged (`ari.pool`), while requests flow.
REPORT_EVERY = 15.0


def basic_auth_header(username: str, password: SecretStr | str) -> str:
    """The ``Authorization`` value; credentials travel in a header, never in a URL."""
    if ":" in username:
        raise ValueError("a Basic auth username cannot contain ':'")
    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode("ascii")


def segment(value: str) -> str:
    """Quote one path segment so ids containing ``/``, ``?`` or spaces stay one segment."""
    return quote(value, safe="")


def comma_list(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)


class AriHttp:
    """ARI over HTTP. Use ``async with AriClient(...)`` or call ``close()`` when done.

    Every method raises a subclass of ``AriError``; ``AriUnavailable`` when Asterisk cannot
    be reached in ``timeout`` seconds.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr | str,
        *,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        max_in_flight: int | None = None,
        queue_wait: float = DEFAULT_QUEUE_WAIT,
    ) -> None:
        """``timeout`` bounds one request once it is sent; ``max_in_flight`` (by default what Asterisk's
        default session limit allows, see ``pool_size``) how many are sent at once, the others waiting
        their turn in order for up to ``queue_wait`` seconds."""
        url = URL(base_url)
        if url.user is not None or url.password is not None:
            raise ValueError("put ARI credentials in username/password, not in the URL")
        self._base = base_url.rstrip("/")
        self._auth = basic_auth_header(username, password)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self.pool = RequestPool(max_in_flight or pool_size(DEFAULT_SESSION_LIMIT), queue_wait)
        self._reported_at = time.monotonic()

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # As many connections as slots: a request given a slot never waits again for a connection.
            connector = aiohttp.TCPConnector(limit=self.pool.size, keepalive_timeout=IDLE_CONNECTION)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; return the decoded JSON body, or None when there is none.

        ``path`` is relative to the ARI base URL and must already be quoted (see ``segment``).
        """
        session = self._ensure_session()
        url = URL(self._base + path, encoded=True)
        query = _query(params)
        try:
            await self.pool.acquire()
        except RequestQueueTimeout as exc:
            log.warning(
                "ari.request_queue_timeout",
                method=method,
                path=path,
                waited=round(exc.waited, 3),
                queued=exc.queued,
                in_flight=self.pool.in_flight,
            )
            raise AriUnavailable(method, path, detail="queued too long") from None
        try:
            async with session.request(
                method,
                url,
                params=query,
                json=json,
                headers={"Authorization": self._auth},
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError:
            # Asterisk may still be working on it (a request about a channel waits for its playback to
            # end), its session still counted against the limit: the slot stays taken a while longer.
            self.pool.release_later(ABANDONED_SESSION)
            log.warning("ari.request_timeout", method=method, path=path)
            raise AriUnavailable(method, path, detail="timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            self.pool.release()
            log.warning("ari.request_failed", method=method, path=path, error=type(exc).__name__)
            raise AriUnavailable(method, path, detail=type(exc).__name__) from None
        except BaseException:
            self.pool.release()
            raise
        self.pool.release()
        log.debug("ari.request", method=method, path=path, status=status)
        self._report()
        if status >= 300:
            raise error_for_status(status)(method, path, status=status, detail=_detail(body))
        if not body:
            return None
        try:
            return jsonlib.loads(body)
        except ValueError:
            raise AriServerError(method, path, status=status, detail="reply is not JSON") from None

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._reported_at < REPORT_EVERY:
            return
        self._reported_at = now
        figures = self.pool.take_figures()
        log.info(
            "ari.pool",
            size=self.pool.size,
            peak=figures.peak,
            queued_peak=figures.queued_peak,
            longest_wait=figures.longest_wait,
            served=figures.served,
        )

    async def _one(
        self,
        model: type[M],
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue] | None = None,
        json: Any = None,
    ) -> M:
        data = await self.request(method, path, params=params, json=json)
        try:
            return model.model_validate(data)
        except ValidationError:
            raise AriServerError(method, path, detail=f"unexpected {model.__name__}") from None

    async def _many(self, model: type[M], path: str) -> list[M]:
        data = await self.request("GET", path)
        try:
            return [model.model_validate(item) for item in data]
        except (ValidationError, TypeError):
            raise AriServerError("GET", path, detail=f"unexpected {model.__name__} list") from None


def _query(params: Mapping[str, ParamValue] | None) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        query[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def _detail(body: bytes) -> str:
    """Asterisk's short error message, e.g. "Channel not found"."""
    try:
        message = jsonlib.loads(body).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:200]
