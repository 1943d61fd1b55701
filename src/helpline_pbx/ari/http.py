"""ARI's HTTP transport: one authenticated session, requests with their errors mapped, replies validated."""

from __future__ import annotations

import base64
import json as jsonlib
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp
import structlog
from pydantic import BaseModel, SecretStr, ValidationError
from yarl import URL

from helpline_pbx.ari.errors import AriServerError, AriUnavailable, error_for_status

log = structlog.get_logger(__name__)

ParamValue = str | int | float | bool | None
M = TypeVar("M", bound=BaseModel)


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
    ) -> None:
        url = URL(base_url)
        if url.user is not None or url.password is not None:
            raise ValueError("put ARI credentials in username/password, not in the URL")
        self._base = base_url.rstrip("/")
        self._auth = basic_auth_header(username, password)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

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
            self._session = aiohttp.ClientSession()
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
            log.warning("ari.request_timeout", method=method, path=path)
            raise AriUnavailable(method, path, detail="timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("ari.request_failed", method=method, path=path, error=type(exc).__name__)
            raise AriUnavailable(method, path, detail=type(exc).__name__) from None
        log.debug("ari.request", method=method, path=path, status=status)
        if status >= 300:
            raise error_for_status(status)(method, path, status=status, detail=_detail(body))
        if not body:
            return None
        try:
            return jsonlib.loads(body)
        except ValueError:
            raise AriServerError(method, path, status=status, detail="reply is not JSON") from None

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
