"""The console's HTTP edge: sessions, roles, CSRF, security headers, and the server itself.

Every route says which roles may use it (`Route.roles`); the middleware opens the session from its cookie,
refuses the others (401 to sign in, 403 for a role that may not), and checks the CSRF token of every POST
against the session's. Sign-in is limited per address as well as per account (accounts.py).
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import structlog
from aiohttp import web

from helpline_pbx.console.accounts import Account, AccountRole, Accounts, Session, SignInRefused
from helpline_pbx.console.board import duration
from helpline_pbx.roster.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)

COOKIE = "helpline_session"
LOGIN_COOKIE = "helpline_login"
# Per remote address: at most this many sign-in attempts in the window.
ADDRESS_ATTEMPTS = 20
ADDRESS_WINDOW = 300.0
STAFF = frozenset({AccountRole.COORDINATOR, AccountRole.SUPERVISOR})
EVERYONE = frozenset(AccountRole)
COORDINATOR = frozenset({AccountRole.COORDINATOR})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_KEY = web.RequestKey("session", Session)
SECURE_KEY = web.AppKey("secure", bool)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    # None: open to anyone (the sign-in page, static files, metrics).
    roles: frozenset[AccountRole] | None


@dataclass
class AddressLimiter:
    attempts: int = ADDRESS_ATTEMPTS
    window: float = ADDRESS_WINDOW
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        seen = self._seen.setdefault(address, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.attempts:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:
            # Bounded: a scan from many addresses cannot grow it for ever.
            self._seen = {k: v for k, v in self._seen.items() if v}
        return True


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("helpline_pbx.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["duration"] = duration
    return env


def static_folder() -> Path:
    return Path(str(resources.files("helpline_pbx.console") / "static"))


def current_session(request: web.Request) -> Session:
    return request[SESSION_KEY]


def current_account(request: web.Request) -> Account:
    return current_session(request).account


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    env: jinja2.Environment = request.app[ENV_KEY]
    session = request.get(SESSION_KEY)
    page = env.get_template(name).render(
        account=session.account if session else None,
        csrf=session.csrf if session else "",
        path=request.path,
        **context,
    )
    return web.Response(text=page, content_type="text/html", status=status)


ENV_KEY = web.AppKey("templates", jinja2.Environment)
ACCOUNTS_KEY = web.AppKey("accounts", Accounts)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except DatabaseUnavailable as exc:
        # The calls go on without the roster for a while (the scribe waits for it); the page says so.
        log.warning("console_database_unavailable", error=exc.code, path=request.path)
        response = render(
            request,
            "refused.html",
            status=503,
            heading="The roster is unavailable",
            why="The roster database does not answer right now: calls go on; try this page again shortly.",
        )
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if request.app[SECURE_KEY]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def auth_middleware(routes: dict[tuple[str, str], Route]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = request.match_info.route.resource
        canonical = info.canonical if info is not None else request.path
        method = "GET" if request.method == "HEAD" else request.method
        route = routes.get((method, canonical))
        if route is None or route.roles is None:
            return await handler(request)
        accounts = request.app[ACCOUNTS_KEY]
        secret = request.cookies.get(COOKIE)
        session = await accounts.session(secret) if secret else None
        if session is None:
            if request.method == "GET" and not request.path.startswith("/api/"):
                raise web.HTTPSeeOther(f"/login?next={request.path}")
            raise web.HTTPUnauthorized(text="sign in first")
        request[SESSION_KEY] = session
        if session.account.must_change_password and request.path not in ("/password", "/logout"):
            if request.method == "GET":
                raise web.HTTPSeeOther("/password")
            raise web.HTTPForbidden(text="change your one-time password first")
        if session.account.role not in route.roles:
            return render(request, "refused.html", status=403)
        if request.method == "POST":
            form = await request.post()
            token = request.headers.get("X-CSRF-Token") or form.get("csrf")
            if not isinstance(token, str) or not secrets.compare_digest(token, session.csrf):
                return render(request, "refused.html", status=403, why="the form had expired: reload it")
        return await handler(request)

    return middleware


# -- sign-in


async def login_page(request: web.Request) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", nonce=nonce, error=None, next=_next(request))
    _login_cookie(request, response, nonce)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    given = form.get("nonce")
    # Login CSRF: the form's nonce must match the cookie the page set (double submit).
    if not nonce or not isinstance(given, str) or not secrets.compare_digest(nonce, given):
        return _login_again(request, "the sign-in form had expired: try again", 403)
    limiter: AddressLimiter = request.app[LIMITER_KEY]
    if not limiter.allow(request.remote or "?"):
        return _login_again(request, "too many sign-in attempts from here: wait a few minutes", 429)
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    try:
        session = await request.app[ACCOUNTS_KEY].sign_in(username, password)
    except SignInRefused as exc:
        log.info("console_sign_in_refused")
        return _login_again(request, str(exc), 401)
    log.info("console_signed_in", account=session.account.username, role=session.account.role.value)
    target = "/password" if session.account.must_change_password else _next(request) or _home(session.account)
    response = web.HTTPSeeOther(target)
    assert session.secret is not None
    response.set_cookie(
        COOKIE,
        session.secret,
        httponly=True,
        samesite="Strict",
        secure=request.app[SECURE_KEY],
        path="/",
    )
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


def _login_again(request: web.Request, error: str, status: int) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, nonce=nonce, error=error, next=_next(request))
    _login_cookie(request, response, nonce)
    return response


def _login_cookie(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, httponly=True, samesite="Strict", secure=request.app[SECURE_KEY], path="/login"
    )


def _next(request: web.Request) -> str:
    target = request.query.get("next", "")
    # Only a path of this site: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else ""


def _home(account: Account) -> str:
    return "/" if account.staff else "/me"


async def logout(request: web.Request) -> web.StreamResponse:
    secret = request.cookies.get(COOKIE)
    if secret:
        await request.app[ACCOUNTS_KEY].sign_out(secret)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def password_page(request: web.Request) -> web.Response:
    return render(request, "password.html", error=None)


async def change_password(request: web.Request) -> web.StreamResponse:
    from helpline_pbx.console.accounts import AccountError

    form = await request.post()
    account = current_account(request)
    new = str(form.get("new", ""))
    if new != str(form.get("again", "")):
        return render(request, "password.html", status=400, error="the two new passwords differ")
    try:
        await request.app[ACCOUNTS_KEY].change_password(account.id, str(form.get("current", "")), new)
    except AccountError as exc:
        return render(request, "password.html", status=400, error=str(exc))
    raise web.HTTPSeeOther(_home(account))


LIMITER_KEY = web.AppKey("limiter", AddressLimiter)


def sign_in_routes() -> list[Route]:
    return [
        Route("GET", "/login", login_page, None),
        Route("POST", "/login", login, None),
        Route("POST", "/logout", logout, EVERYONE),
        Route("GET", "/password", password_page, EVERYONE),
        Route("POST", "/password", change_password, EVERYONE),
    ]


def make_app(accounts: Accounts, routes: list[Route], *, secure: bool) -> web.Application:
    table = {(r.method, r.path): r for r in routes}
    app = web.Application(middlewares=[security_headers, auth_middleware(table)], client_max_size=64 * 1024)
    app[ACCOUNTS_KEY] = accounts
    app[ENV_KEY] = templates()
    app[SECURE_KEY] = secure
    app[LIMITER_KEY] = AddressLimiter()
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
    app.router.add_static("/static/", static_folder(), append_version=True)
    return app
