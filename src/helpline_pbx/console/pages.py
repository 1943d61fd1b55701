"""The console's pages and their actions. Each action calls the same repository operation as the CLI (no
rule lives here), writes the console's audit, and tells the live board.

Nothing shown here comes from a caller: calls appear by code and line, listeners by pseudonym.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from helpline_pbx.console.accounts import AccountError, Accounts
from helpline_pbx.console.live import LiveBoard
from helpline_pbx.console.metrics import CONTENT_TYPE, Metrics
from helpline_pbx.console.statistics import (
    WEEKDAYS,
    Statistics,
    Thresholds,
    daily_csv,
    heat_map_csv,
    load_csv,
    summary_csv,
)
from helpline_pbx.console.statistics_queries import StatisticsRequest, period_statistics
from helpline_pbx.console.web import (
    ACCOUNTS_KEY,
    COORDINATOR,
    EVERYONE,
    STAFF,
    Route,
    current_account,
    render,
)
from helpline_pbx.hours import HoursError
from helpline_pbx.lines.errors import LineError
from helpline_pbx.lines.repository import Lines
from helpline_pbx.lines.snapshots import UNSET
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.states import Presence
from helpline_pbx.roster.supervisions import Supervisions
from helpline_pbx.roster.tables import CallRecord

SSE_HEARTBEAT = 15.0


@dataclass
class Parts:
    live: LiveBoard
    metrics: Metrics
    roster: Roster
    debriefs: Debriefs
    supervisions: Supervisions
    callers: Callers
    lines: Lines
    # Lets `helpline-pbx board` on the box read the board without an account (a file only root reads).
    board_token: str
    bar_days: float
    defaults: Thresholds = field(default_factory=Thresholds)


PARTS_KEY = web.AppKey("parts", Parts)


def _parts(request: web.Request) -> Parts:
    return request.app[PARTS_KEY]


async def _audit(request: web.Request, action: str, target: str | None, detail: str | None = None) -> None:
    await request.app[ACCOUNTS_KEY].audit(current_account(request).username, action, target, detail)
    _parts(request).live.touch()


def _back(default: str, **notice: str) -> web.HTTPSeeOther:
    query = "&".join(f"{k}={v}" for k, v in notice.items())
    return web.HTTPSeeOther(default + (f"?{query}" if query else ""))


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {key: str(value).strip() for key, value in form.items() if isinstance(value, str)}


# -- the board


async def board_page(request: web.Request) -> web.Response:
    return render(request, "board.html", board=_parts(request).live.board().as_json())


async def board_events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    updates = _parts(request).live.updates()
    try:
        while True:
            try:
                text = await asyncio.wait_for(anext(updates), SSE_HEARTBEAT)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"event: board\ndata: {text}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        await updates.aclose()


async def board_api(request: web.Request) -> web.Response:
    """The board as JSON: for a signed-in supervisor, or for `helpline-pbx board` with the box's token."""
    parts = _parts(request)
    header = request.headers.get("Authorization", "")
    token_ok = header.startswith("Bearer ") and hmac.compare_digest(header[7:], parts.board_token)
    if not token_ok:
        secret = request.cookies.get("helpline_session")
        session = await request.app[ACCOUNTS_KEY].session(secret) if secret else None
        if session is None or not session.account.staff or session.account.must_change_password:
            raise web.HTTPUnauthorized(text="sign in as a supervisor, or use the box's board token")
    return web.json_response(parts.live.board().as_json())


async def metrics(request: web.Request) -> web.Response:
    body = _parts(request).metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# -- a listener's own page


async def me_page(request: web.Request) -> web.Response:
    account = current_account(request)
    parts = _parts(request)
    if account.listener_id is None:
        return render(
            request, "me.html", listener=None, state=None, history=[], error=request.query.get("error")
        )
    listener = await parts.roster.get_listener(account.listener_id)
    state = next((x for x in parts.live.board().listeners if x.listener_id == listener.id), None)
    history = await _history(parts, listener.id)
    return render(
        request,
        "me.html",
        listener=listener,
        state=state,
        history=history,
        notice=request.query.get("done"),
        error=request.query.get("error"),
    )


async def _history(parts: Parts, listener_id: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    query = (
        select(CallRecord.line, CallRecord.answered_at, CallRecord.talk_seconds, CallRecord.practice)
        .where(CallRecord.listener_id == listener_id, CallRecord.answered_at.is_not(None))
        .order_by(CallRecord.answered_at.desc())
        .limit(50)
    )
    async with parts.roster.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [{"line": r[0], "at": r[1], "talk": r[2], "practice": r[3]} for r in rows]


_PRESENCE_ACTIONS = {"on": Presence.ON, "off": Presence.OFF, "pause": Presence.PAUSED, "resume": Presence.ON}


async def _presence(request: web.Request, listener_id: str, back: str) -> web.StreamResponse:
    form = await _form(request)
    action = form.get("action", "")
    if action not in _PRESENCE_ACTIONS:
        raise web.HTTPBadRequest(text=f"unknown presence action {action!r}")
    presence = _PRESENCE_ACTIONS[action]
    try:
        changed = await _parts(request).roster.set_presence(
            listener_id, presence, reason=form.get("reason") or None, now=datetime.now(UTC)
        )
    except RosterError as exc:
        raise _back(back, error=_quote(str(exc))) from None
    await _audit(request, f"presence_{action}", changed.id, form.get("reason") or None)
    raise _back(back, done=_quote(f"{changed.pseudonym}: {presence.value}"))


async def my_presence(request: web.Request) -> web.StreamResponse:
    account = current_account(request)
    if account.listener_id is None:
        raise _back("/me", error=_quote("this account is not tied to a listener"))
    return await _presence(request, account.listener_id, "/me")


# -- listeners


async def listeners_page(request: web.Request) -> web.Response:
    parts = _parts(request)
    states = {x.listener_id: x for x in parts.live.board().listeners}
    return render(
        request,
        "listeners.html",
        listeners=await parts.roster.list_listeners(),
        states=states,
        shown=None,
        notice=request.query.get("done"),
        error=request.query.get("error"),
    )


async def listener_presence(request: web.Request) -> web.StreamResponse:
    return await _presence(request, request.match_info["listener"], "/listeners")


async def add_listener(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    parts = _parts(request)
    try:
        added = await parts.roster.add_listener(
            form.get("pseudonym", ""),
            form.get("endpoint", ""),
            form.get("role", "volunteer"),
            skills=_words(form.get("skills", "")),
            languages=_words(form.get("languages", "fr")) or ["fr"],
            trainee=form.get("trainee") == "on",
            monitoring_consent=form.get("consent") == "on",
        )
    except RosterError as exc:
        raise _back("/listeners", error=_quote(str(exc))) from None
    await _audit(request, "listener_added", added.id, f"role={added.role.value}")
    return render(
        request,
        "shown_once.html",
        what=f"SIP password of {added.pseudonym}",
        secret=added.sip_password or "",
        back="/listeners",
    )


async def edit_listener(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    ref = request.match_info["listener"]
    try:
        edited = await _parts(request).roster.edit_listener(
            ref,
            role=form.get("role") or None,
            skills=_words(form["skills"]) if "skills" in form else None,
            languages=_words(form["languages"]) if "languages" in form else None,
            trainee=form.get("trainee") == "on",
            monitoring_consent=form.get("consent") == "on",
        )
    except RosterError as exc:
        raise _back("/listeners", error=_quote(str(exc))) from None
    await _audit(request, "listener_edited", edited.id, _summary(form))
    raise _back("/listeners", done=_quote(f"{edited.pseudonym} saved"))


async def listener_active(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    active = form.get("active") == "yes"
    try:
        edited = await _parts(request).roster.edit_listener(request.match_info["listener"], active=active)
    except RosterError as exc:
        raise _back("/listeners", error=_quote(str(exc))) from None
    await _audit(request, "listener_activated" if active else "listener_deactivated", edited.id)
    raise _back("/listeners", done=_quote(f"{edited.pseudonym}: {'active' if active else 'inactive'}"))


async def listener_sip_password(request: web.Request) -> web.StreamResponse:
    try:
        edited = await _parts(request).roster.edit_listener(
            request.match_info["listener"], regenerate_secret=True
        )
    except RosterError as exc:
        raise _back("/listeners", error=_quote(str(exc))) from None
    await _audit(request, "listener_sip_password_reset", edited.id)
    return render(
        request,
        "shown_once.html",
        what=f"new SIP password of {edited.pseudonym}",
        secret=edited.sip_password or "",
        back="/listeners",
    )


# -- debriefs, supervisions, bars, audit


async def debriefs_page(request: web.Request) -> web.Response:
    parts = _parts(request)
    pseudonyms = {x.id: x.pseudonym for x in await parts.roster.list_listeners()}
    return render(
        request,
        "debriefs.html",
        debriefs=await parts.debriefs.open(),
        pseudonyms=pseudonyms,
        notice=request.query.get("done"),
        error=request.query.get("error"),
    )


async def handle_debrief(request: web.Request) -> web.StreamResponse:
    listener = request.match_info["listener"]
    try:
        count = await _parts(request).debriefs.handle(
            listener, by=current_account(request).username, now=datetime.now(UTC)
        )
    except RosterError as exc:
        raise _back("/debriefs", error=_quote(str(exc))) from None
    await _audit(request, "debrief_handled", listener, f"requests={count}")
    raise _back("/debriefs", done=_quote(f"{count} request(s) handled"))


async def supervisions_page(request: web.Request) -> web.Response:
    parts = _parts(request)
    pseudonyms = {x.id: x.pseudonym for x in await parts.roster.list_listeners()}
    since = datetime.now(UTC) - timedelta(days=30)
    return render(
        request, "supervisions.html", sessions=await parts.supervisions.list(since), pseudonyms=pseudonyms
    )


async def bars_page(request: web.Request) -> web.Response:
    bars = await _parts(request).callers.bars(datetime.now(UTC))
    return render(
        request,
        "bars.html",
        bars=bars,
        days=_parts(request).bar_days,
        notice=request.query.get("done"),
        error=request.query.get("error"),
    )


async def add_bar(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    parts = _parts(request)
    now = datetime.now(UTC)
    try:
        days = float(form.get("days") or parts.bar_days)
        if not 0 < days <= 366:
            raise ValueError
    except ValueError:
        raise _back("/bars", error=_quote("a bar lasts more than 0 and at most 366 days")) from None
    try:
        bar = await parts.callers.bar_call(
            form.get("code", ""),
            until=now + timedelta(days=days),
            reason=form.get("reason", ""),
            created_by=current_account(request).username,
            now=now,
        )
    except RosterError as exc:
        raise _back("/bars", error=_quote(str(exc))) from None
    await _audit(request, "caller_barred", f"bar {bar.id}", f"days={days:g}")
    raise _back("/bars", done=_quote(f"bar {bar.id} until {bar.until:%Y-%m-%d %H:%M} UTC"))


async def lift_bar(request: web.Request) -> web.StreamResponse:
    try:
        bar_id = int(request.match_info["bar"])
    except ValueError:
        raise web.HTTPBadRequest(text="a bar is named by its number") from None
    lifted = await _parts(request).callers.lift_bar(bar_id, datetime.now(UTC))
    if lifted:
        await _audit(request, "bar_lifted", f"bar {bar_id}")
    raise _back("/bars", done=_quote(f"bar {bar_id} lifted" if lifted else f"bar {bar_id} was not active"))


async def audit_page(request: web.Request) -> web.Response:
    return render(request, "audit.html", entries=await request.app[ACCOUNTS_KEY].audit_entries())


# -- lines


async def lines_page(request: web.Request) -> web.Response:
    return render(
        request,
        "lines.html",
        lines=await _parts(request).lines.list(),
        notice=request.query.get("done"),
        error=request.query.get("error"),
    )


async def edit_line(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    name = request.match_info["line"]
    try:
        edited = await _parts(request).lines.edit(
            name,
            label=form.get("label") or None,
            audience=form.get("audience") if "audience" in form else None,
            add_numbers=_words(form.get("add_number", "")),
            remove_numbers=_words(form.get("remove_number", "")),
            hours=_hours_change(form),
            support=_words(form["support"]) if "support" in form else None,
            skills=_words(form["skills"]) if "skills" in form else None,
            service_level=_seconds(form, "service_level"),
            short_abandon=_seconds(form, "short_abandon"),
            max_wait=_seconds(form, "max_wait"),
            active=None if "active" not in form else form["active"] == "yes",
        )
    except (LineError, RosterError, HoursError, ValueError) as exc:
        raise _back("/lines", error=_quote(str(exc))) from None
    await _audit(request, "line_edited", edited.name, _summary(form))
    raise _back("/lines", done=_quote(f"{edited.name} saved"))


def _hours_change(form: dict[str, str]) -> Any:
    """The hours edit a line's form asks for, built as the CLI builds it (hours/edits.py)."""
    from helpline_pbx.hours import parse_date, parse_exceptions, parse_weekly
    from helpline_pbx.hours.edits import HoursEdit

    return HoursEdit(
        weekly=parse_weekly(form["hours"]) if form.get("hours") else None,
        timezone=form.get("timezone") or None,
        closed=tuple(parse_date(d) for d in _words(form.get("closed_on", ""))),
        special=tuple(parse_exceptions(form["hours_on"])) if form.get("hours_on") else (),
        reopened=tuple(parse_date(d) for d in _words(form.get("open_on", ""))),
    ).change()


def _seconds(form: dict[str, str], key: str) -> Any:
    """UNSET when the field is absent, None when emptied (the service's default), else whole seconds."""
    if key not in form:
        return UNSET
    if form[key] == "":
        return None
    try:
        return int(form[key])
    except ValueError:
        raise ValueError(f"{key.replace('_', ' ')} is a whole number of seconds") from None


# -- statistics

STATS_DAYS = 7
MAX_STATS_DAYS = 366
CSV_TABLES = {"summary": summary_csv, "daily": daily_csv, "heatmap": heat_map_csv, "load": load_csv}


def _stats_request(request: web.Request) -> StatisticsRequest:
    from datetime import date

    today = datetime.now(UTC).date()
    try:
        end = date.fromisoformat(request.query["end"]) if request.query.get("end") else today
        start = (
            date.fromisoformat(request.query["start"])
            if request.query.get("start")
            else end - timedelta(days=STATS_DAYS - 1)
        )
    except ValueError:
        raise web.HTTPBadRequest(text="dates are YYYY-MM-DD") from None
    if start > end or (end - start).days >= MAX_STATS_DAYS:
        raise web.HTTPBadRequest(text=f"a period runs forwards, {MAX_STATS_DAYS} days at most")
    return StatisticsRequest(
        start=start,
        end=end,
        line=request.query.get("line") or None,
        practice=request.query.get("practice") == "1",
    )


async def _statistics(request: web.Request) -> tuple[StatisticsRequest, Statistics]:
    parts = _parts(request)
    wanted = _stats_request(request)
    lines = await parts.lines.list()
    if wanted.line is not None and wanted.line not in {x.name for x in lines}:
        raise web.HTTPBadRequest(text=f"no line {wanted.line!r}")
    stats = await period_statistics(
        parts.roster.engine, wanted, now=datetime.now(UTC), lines=lines, defaults=parts.defaults
    )
    return wanted, stats


async def stats_page(request: web.Request) -> web.Response:
    wanted, stats = await _statistics(request)
    peak = max((n for row in stats.heat_map for n in row), default=0)
    chart = {
        "daily": [
            {"day": r.day.isoformat(), "offered": r.offered, "answered": r.answered, "abandoned": r.abandoned}
            for r in stats.daily
        ],
        "hours": [sum(row[h] for row in stats.heat_map) for h in range(24)],
    }
    return render(
        request,
        "stats.html",
        stats=stats,
        wanted=wanted,
        lines=await _parts(request).lines.list(),
        weekdays=WEEKDAYS,
        level=lambda n: 0 if peak == 0 or n == 0 else 1 + min(4, (5 * n - 1) // peak),
        chart=chart,
        query=request.query_string,
    )


async def stats_csv(request: web.Request) -> web.Response:
    table = request.query.get("table", "summary")
    if table not in CSV_TABLES:
        raise web.HTTPBadRequest(text=f"tables: {', '.join(CSV_TABLES)}")
    wanted, stats = await _statistics(request)
    name = f"helpline-{table}-{wanted.line or 'all'}-{wanted.start}-{wanted.end}.csv"
    return web.Response(
        text=CSV_TABLES[table](stats),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- accounts


async def accounts_page(request: web.Request) -> web.Response:
    return render(
        request,
        "accounts.html",
        accounts=await request.app[ACCOUNTS_KEY].all(),
        error=request.query.get("error"),
    )


async def add_account(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    accounts: Accounts = request.app[ACCOUNTS_KEY]
    try:
        account, password = await accounts.add(
            form.get("username", ""),
            form.get("role", ""),
            listener=form.get("listener") or None,
            actor=current_account(request).username,
        )
    except (AccountError, RosterError) as exc:
        raise _back("/accounts", error=_quote(str(exc))) from None
    _parts(request).live.touch()
    return render(
        request,
        "shown_once.html",
        what=f"one-time password of {account.username}",
        secret=password,
        back="/accounts",
    )


async def account_active(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    username = request.match_info["username"]
    if username == current_account(request).username:
        raise _back("/accounts", error=_quote("you cannot deactivate your own account"))
    with contextlib.suppress(AccountError):
        await request.app[ACCOUNTS_KEY].set_active(
            username, form.get("active") == "yes", actor=current_account(request).username
        )
    raise _back("/accounts")


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


def _summary(form: dict[str, str]) -> str:
    fields = sorted(k for k in form if k != "csrf")
    return ("fields=" + ",".join(fields))[:500]


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:300])


def console_routes() -> list[Route]:
    return [
        Route("GET", "/", board_page, STAFF),
        Route("GET", "/board/events", board_events, STAFF),
        Route("GET", "/api/board", board_api, None),
        Route("GET", "/metrics", metrics, None),
        Route("GET", "/me", me_page, EVERYONE),
        Route("GET", "/stats", stats_page, STAFF),
        Route("GET", "/stats.csv", stats_csv, STAFF),
        Route("POST", "/me/presence", my_presence, EVERYONE),
        Route("GET", "/listeners", listeners_page, STAFF),
        Route("POST", "/listeners", add_listener, COORDINATOR),
        Route("POST", "/listeners/{listener}/presence", listener_presence, STAFF),
        Route("POST", "/listeners/{listener}/edit", edit_listener, COORDINATOR),
        Route("POST", "/listeners/{listener}/active", listener_active, COORDINATOR),
        Route("POST", "/listeners/{listener}/sip-password", listener_sip_password, COORDINATOR),
        Route("GET", "/debriefs", debriefs_page, STAFF),
        Route("POST", "/debriefs/{listener}/handle", handle_debrief, STAFF),
        Route("GET", "/supervisions", supervisions_page, STAFF),
        Route("GET", "/bars", bars_page, STAFF),
        Route("POST", "/bars", add_bar, STAFF),
        Route("POST", "/bars/{bar}/lift", lift_bar, STAFF),
        Route("GET", "/lines", lines_page, COORDINATOR),
        Route("POST", "/lines/{line}", edit_line, COORDINATOR),
        Route("GET", "/audit", audit_page, COORDINATOR),
        Route("GET", "/accounts", accounts_page, COORDINATOR),
        Route("POST", "/accounts", add_account, COORDINATOR),
        Route("POST", "/accounts/{username}/active", account_active, COORDINATOR),
    ]
