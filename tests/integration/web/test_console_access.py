"""Who may see and do what in the console: sign-in, one-time passwords, roles, CSRF, lockout, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from tests.integration.web.conftest import BOARD_TOKEN, Console, csrf_of, sign_in

from helpline_pbx.console.accounts import MAX_FAILURES, AccountRole
from helpline_pbx.console.pages import PARTS_KEY, console_routes
from helpline_pbx.console.tables import AccountRow, ConsoleAuditRow, ConsoleSessionRow

STAFF_PAGES = ["/", "/listeners", "/debriefs", "/supervisions", "/bars"]
COORDINATOR_PAGES = ["/lines", "/accounts", "/audit"]


async def test_the_one_time_password_must_be_changed_before_anything_else(console: Console) -> None:
    _, once = await console.accounts.add("coord", "coordinator")
    async with console.client() as http:
        signed = await sign_in(console, http, "coord", once)
        assert signed.status == 303
        assert signed.headers["Location"] == "/password"
        board = await http.get(console.url("/"), allow_redirects=False)
        assert board.status == 303
        assert board.headers["Location"] == "/password"
        page = await (await http.get(console.url("/password"))).text()
        too_short = await http.post(
            console.url("/password"),
            data={"csrf": csrf_of(page), "current": once, "new": "short", "again": "short"},
        )
        assert too_short.status == 400
        assert "at least 12" in await too_short.text()
        new = "a-much-longer-password"
        done = await http.post(
            console.url("/password"),
            data={"csrf": csrf_of(page), "current": once, "new": new, "again": new},
            allow_redirects=False,
        )
        assert done.status == 303
        assert done.headers["Location"] == "/"
        assert (await http.get(console.url("/"))).status == 200
    async with console.client() as http:
        # The one-time password works no more.
        assert (await sign_in(console, http, "coord", once)).status == 401
        assert (await sign_in(console, http, "coord", new)).status == 303


async def test_the_session_cookie_is_httponly_and_samesite_and_the_table_keeps_only_its_hash(
    console: Console,
) -> None:
    password = await console.account("sup", "supervisor")
    async with console.client() as http:
        response = await sign_in(console, http, "sup", password)
        cookie = response.cookies["helpline_session"]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        secret = cookie.value
    async with console.engine.connect() as connection:
        ids = (await connection.execute(select(ConsoleSessionRow.id))).scalars().all()
    assert secret not in ids
    assert len(ids) == 2
    assert all(len(i) == 64 for i in ids)


@pytest.mark.parametrize("path", STAFF_PAGES + COORDINATOR_PAGES + ["/me"])
async def test_nobody_signed_in_is_sent_to_the_sign_in_page(console: Console, path: str) -> None:
    async with console.client() as http:
        response = await http.get(console.url(path), allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login")


async def test_each_role_sees_its_pages_and_is_refused_the_others(console: Console) -> None:
    listener = await console.roster.add_listener("Camille", "camille", "volunteer")
    passwords = {
        "coordinator": await console.account("c1", "coordinator"),
        "supervisor": await console.account("s1", "supervisor"),
        "listener": await console.account("l1", "listener", listener=listener.id),
    }
    users = {"coordinator": "c1", "supervisor": "s1", "listener": "l1"}
    allowed = {
        "coordinator": set(STAFF_PAGES + COORDINATOR_PAGES),
        "supervisor": set(STAFF_PAGES),
        "listener": {"/me"},
    }
    for role, password in passwords.items():
        async with console.client() as http:
            assert (await sign_in(console, http, users[role], password)).status == 303
            for path in [*STAFF_PAGES, *COORDINATOR_PAGES, "/me"]:
                response = await http.get(console.url(path), allow_redirects=False)
                expected = 200 if path in allowed[role] or path == "/me" else 403
                assert response.status == expected, (role, path, response.status)
            # Actions follow the same rule: a supervisor may not add a listener, a listener may not
            # change another's presence.
            page = await (await http.get(console.url("/me"))).text()
            token = csrf_of(page)
            add = await http.post(
                console.url("/listeners"),
                data={
                    "csrf": token,
                    "pseudonym": f"New{role}",
                    "endpoint": f"new{role}",
                    "role": "volunteer",
                },
                allow_redirects=False,
            )
            assert add.status == (200 if role == "coordinator" else 403), (role, add.status)
            other = await http.post(
                console.url(f"/listeners/{listener.id}/presence"),
                data={"csrf": token, "action": "on"},
                allow_redirects=False,
            )
            assert other.status == (303 if role != "listener" else 403), (role, other.status)


async def test_a_listener_changes_their_own_presence_only(console: Console) -> None:
    mine = await console.roster.add_listener("Alix", "alix", "volunteer")
    await console.roster.add_listener("Sacha", "sacha", "volunteer")
    password = await console.account("alix", "listener", listener="Alix")
    async with console.client() as http:
        await sign_in(console, http, "alix", password)
        page = await (await http.get(console.url("/me"))).text()
        assert "Alix" in page
        assert "Sacha" not in page
        on = await http.post(
            console.url("/me/presence"), data={"csrf": csrf_of(page), "action": "on"}, allow_redirects=False
        )
        assert on.status == 303
        pause = await http.post(
            console.url("/me/presence"),
            data={"csrf": csrf_of(page), "action": "pause"},
            allow_redirects=False,
        )
        # A pause needs a reason: the same rule as the CLI's (the roster's).
        assert "reason" in pause.headers["Location"]
    assert (await console.roster.get_listener(mine.id)).presence.value == "on"
    assert (await console.roster.get_listener("Sacha")).presence.value == "off"


async def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    console: Console,
) -> None:
    listener = await console.roster.add_listener("Noa", "noa", "volunteer")
    password = await console.account("s2", "supervisor")
    async with console.client() as http:
        await sign_in(console, http, "s2", password)
        for data in ({"action": "on"}, {"action": "on", "csrf": "forged"}):
            response = await http.post(
                console.url(f"/listeners/{listener.id}/presence"), data=data, allow_redirects=False
            )
            assert response.status == 403
    assert (await console.roster.get_listener(listener.id)).presence.value == "off"


async def test_a_login_form_without_its_nonce_is_refused(console: Console) -> None:
    password = await console.account("s3", "supervisor")
    async with console.client() as http:
        response = await http.post(
            console.url("/login"), data={"username": "s3", "password": password}, allow_redirects=False
        )
    assert response.status == 403
    assert "helpline_session" not in response.cookies


async def test_failed_sign_ins_lock_the_account_even_for_the_right_password(console: Console) -> None:
    password = await console.account("s4", "supervisor")
    async with console.client() as http:
        for _ in range(MAX_FAILURES):
            wrong = await sign_in(console, http, "s4", "not-the-password")
            assert wrong.status == 401
            assert "wrong username or password" in await wrong.text()
        locked = await sign_in(console, http, "s4", password)
        assert locked.status == 401
        assert "too many failed sign-ins" in await locked.text()
    async with console.engine.connect() as connection:
        row = (await connection.execute(select(AccountRow).where(AccountRow.username == "s4"))).one()
        actions = (await connection.execute(select(ConsoleAuditRow.action))).scalars().all()
    assert row.locked_until is not None
    assert row.locked_until.replace(tzinfo=UTC) > datetime.now(UTC)
    assert "account_locked" in actions
    # A coordinator's reset lifts the lock.
    once = await console.accounts.reset_password("s4")
    async with console.client() as http:
        assert (await sign_in(console, http, "s4", once)).status == 303


async def test_an_unknown_name_and_a_wrong_password_get_the_same_answer(console: Console) -> None:
    await console.account("s5", "supervisor")
    async with console.client() as http:
        unknown = await sign_in(console, http, "nobody", "whatever-password")
        wrong = await sign_in(console, http, "s5", "whatever-password")
        assert unknown.status == wrong.status == 401
        assert "wrong username or password" in await unknown.text()
        assert "wrong username or password" in await wrong.text()


async def test_sign_in_attempts_from_one_address_are_limited(console: Console) -> None:
    statuses = []
    async with console.client() as http:
        for i in range(25):
            statuses.append((await sign_in(console, http, f"user{i}", "nope-nope-nope")).status)
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}


async def test_every_change_from_the_console_is_audited_with_who_and_what(console: Console) -> None:
    listener = await console.roster.add_listener("Lou", "lou", "volunteer")
    password = await console.account("boss", "coordinator")
    async with console.client() as http:
        await sign_in(console, http, "boss", password)
        page = await (await http.get(console.url("/listeners"))).text()
        await http.post(
            console.url(f"/listeners/{listener.id}/presence"),
            data={"csrf": csrf_of(page), "action": "pause", "reason": "training"},
        )
        shown = await http.post(
            console.url(f"/listeners/{listener.id}/sip-password"), data={"csrf": csrf_of(page)}
        )
        assert shown.status == 200
        assert 'id="secret"' in await shown.text()
        audit = await (await http.get(console.url("/audit"))).text()
    entries = await console.accounts.audit_entries()
    assert [(e.actor, e.action, e.target) for e in entries[:2]] == [
        ("boss", "listener_sip_password_reset", listener.id),
        ("boss", "presence_pause", listener.id),
    ]
    assert "presence_pause" in audit
    assert "boss" in audit


async def test_logout_ends_the_session(console: Console) -> None:
    password = await console.account("s6", "supervisor")
    async with console.client() as http:
        await sign_in(console, http, "s6", password)
        page = await (await http.get(console.url("/"))).text()
        out = await http.post(console.url("/logout"), data={"csrf": csrf_of(page)}, allow_redirects=False)
        assert out.status == 303
        after = await http.get(console.url("/"), allow_redirects=False)
        assert after.status == 303
        assert after.headers["Location"].startswith("/login")


async def test_the_board_api_takes_the_box_token_or_a_supervisor_and_nobody_else(console: Console) -> None:
    async with console.client() as http:
        assert (await http.get(console.url("/api/board"))).status == 401
        bad = await http.get(console.url("/api/board"), headers={"Authorization": "Bearer wrong"})
        assert bad.status == 401
        good = await http.get(console.url("/api/board"), headers={"Authorization": f"Bearer {BOARD_TOKEN}"})
        assert good.status == 200
        board = await good.json()
    assert set(board) >= {"lines", "total", "calls", "listeners", "alerts", "open_debriefs"}


async def test_pages_carry_a_strict_content_security_policy(console: Console) -> None:
    async with console.client() as http:
        response = await http.get(console.url("/login"))
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


async def test_every_route_refuses_exactly_the_roles_it_does_not_name(console: Console) -> None:
    """The whole route table, each role in turn: a role a route does not name gets 403 and nothing else
    does (a form that is refused for its content is a 303 back or a 400, never a 403)."""
    listener = await console.roster.add_listener("Matrix", "matrix", "volunteer")
    await console.server.app[PARTS_KEY].lines.add("jeunes", label="Jeunes", numbers=["0800111222"])
    users = {
        AccountRole.COORDINATOR: ("m-c", await console.account("m-c", "coordinator")),
        AccountRole.SUPERVISOR: ("m-s", await console.account("m-s", "supervisor")),
        AccountRole.LISTENER: ("m-l", await console.account("m-l", "listener", listener=listener.id)),
    }
    values = {"listener": listener.id, "bar": "1", "line": "jeunes", "username": "nobody"}
    checked = 0
    for role, (user, password) in users.items():
        async with console.client() as http:
            await sign_in(console, http, user, password)
            token = csrf_of(await (await http.get(console.url("/me"))).text())
            for route in console_routes():
                if route.roles is None or route.path == "/board/events":
                    continue
                path = route.path.format(**values)
                if route.method == "GET":
                    response = await http.get(console.url(path), allow_redirects=False)
                else:
                    response = await http.post(
                        console.url(path), data={"csrf": token, "action": "on"}, allow_redirects=False
                    )
                refused = response.status == 403
                assert refused == (role not in route.roles), (role, route.method, path, response.status)
                checked += 1
    assert checked >= 3 * 20


async def test_hostile_input_gets_a_clear_refusal_and_changes_nothing(console: Console) -> None:
    """Bodies over the limit, bytes that are not UTF-8, absurd values and unknown actions: each is refused
    on its own (413, 400, or a message back), and the roster is as it was."""
    listener = await console.roster.add_listener("Hostile", "hostile", "volunteer")
    password = await console.account("guard", "coordinator")
    async with console.client() as http:
        # Before signing in: a huge sign-in form is refused, not read.
        page = await (await http.get(console.url("/login"))).text()
        huge = await http.post(console.url("/login"), data={"nonce": "x", "username": "a" * 200_000})
        assert huge.status == 413
        # A username that is not UTF-8 is just a wrong sign-in.
        nonce = page.split('name="nonce" value="', 1)[1].split('"', 1)[0]
        odd = await http.post(
            console.url("/login"),
            data=b"nonce=" + nonce.encode() + b"&username=%ff%fe%00&password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert odd.status in (400, 401)
        await sign_in(console, http, "guard", password)
        token = csrf_of(await (await http.get(console.url("/listeners"))).text())
        unknown = await http.post(
            console.url(f"/listeners/{listener.id}/presence"), data={"csrf": token, "action": "teleport"}
        )
        assert unknown.status == 400
        long_reason = await http.post(
            console.url(f"/listeners/{listener.id}/presence"),
            data={"csrf": token, "action": "pause", "reason": "x" * 5000},
            allow_redirects=False,
        )
        assert "error=" in long_reason.headers["Location"]
        days = await http.post(
            console.url("/bars"),
            data={"csrf": token, "code": "1234", "days": "1e9", "reason": "r"},
            allow_redirects=False,
        )
        assert "error=" in days.headers["Location"]
        period = await http.get(console.url("/stats?start=2026-01-01&end=2025-01-01"))
        assert period.status == 400
        csv = await http.get(console.url("/stats.csv?table=../../etc/passwd"))
        assert csv.status == 400
    after = await console.roster.get_listener(listener.id)
    assert (after.presence.value, after.presence_reason) == ("off", None)
    assert await console.server.app[PARTS_KEY].callers.bars(datetime.now(UTC)) == []
