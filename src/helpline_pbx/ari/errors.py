"""Errors raised by the ARI client, each with a stable ``code``.

Callers branch on ``code`` (or the subclass), never on an HTTP status: only this edge knows
about HTTP. Messages name the method and the path (ids only) and never carry a request body
or query string, because originate parameters and config fields can hold secrets.
"""

from __future__ import annotations


class AriError(Exception):
    """Base class: a request to Asterisk did not succeed."""

    code: str = "ari_error"

    def __init__(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        detail: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{method} {path}"
        if status is not None:
            where += f" -> {status}"
        super().__init__(f"{where}: {detail}" if detail else where)


class AriNotFound(AriError):
    """404: the channel, bridge, endpoint or application does not exist (any more)."""

    code = "not_found"


class AriConflict(AriError):
    """409: the resource exists but is in the wrong state (e.g. channel not in Stasis)."""

    code = "conflict"


class AriUnprocessable(AriError):
    """400 or 422: Asterisk rejected the parameters or a referenced resource."""

    code = "bad_request"


class AriUnauthorized(AriError):
    """401 or 403: wrong ARI credentials; retrying will not help."""

    code = "unauthorized"


class AriServerError(AriError):
    """5xx: Asterisk failed while handling the request."""

    code = "server_error"


class AriUnavailable(AriError):
    """Asterisk could not be reached: connection refused, reset, or timed out."""

    code = "unavailable"


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriUnprocessable,
    401: AriUnauthorized,
    403: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def error_for_status(status: int) -> type[AriError]:
    """The error class for an unsuccessful HTTP status."""
    if status >= 500:
        return AriServerError
    return _BY_STATUS.get(status, AriError)
