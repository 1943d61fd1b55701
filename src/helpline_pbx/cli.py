"""The `helpline-pbx` command: serve, db upgrade, listeners, debriefs, supervisions, welcome, check."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from helpline_pbx import lines_cli
from helpline_pbx.settings import (
    Settings,
    SettingsError,
    database_url_from_env,
    keys_dir_from_env,
    load_settings,
)

if TYPE_CHECKING:
    # The roster pulls in SQLAlchemy: imported when a command runs, not when the parser is built.
    from helpline_pbx.roster.repository import Roster
    from helpline_pbx.roster.snapshots import ListenerSnapshot

EXIT_CONFIG = 2
EXIT_FAILED = 1


def _database_url() -> str:
    # The listener commands need only the database: they must work without an ARI password.
    return database_url_from_env()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpline-pbx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the service (drains on SIGTERM)")
    sub.add_parser("check", help="validate the settings and exit")
    sub.add_parser("welcome", help="print how to register a softphone and which number to call")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate the roster database to the latest schema")

    listeners = sub.add_parser("listeners", help="manage the roster of listeners")
    l_sub = listeners.add_subparsers(dest="listeners_command", required=True)
    add = l_sub.add_parser("add", help="add a listener; prints the SIP password once")
    add.add_argument("pseudonym", help="how the team calls the listener (no real name needed)")
    add.add_argument("--endpoint", help="SIP user name (default: from the pseudonym)")
    add.add_argument("--role", default="volunteer", choices=["volunteer", "professional", "supervisor"])
    add.add_argument("--skill", action="append", default=[], help="a skill lines may require (repeatable)")
    add.add_argument(
        "--language", action="append", default=[], help="a language spoken, e.g. fr (repeatable)"
    )
    lst = l_sub.add_parser("list", help="list listeners")
    lst.add_argument("--active", action="store_true", help="only active listeners")
    edit = l_sub.add_parser("edit", help="change a listener")
    edit.add_argument("listener", help="id, endpoint or pseudonym")
    edit.add_argument("--pseudonym")
    edit.add_argument("--endpoint")
    edit.add_argument("--role", choices=["volunteer", "professional", "supervisor"])
    group = edit.add_mutually_exclusive_group()
    group.add_argument("--activate", dest="active", action="store_const", const=True)
    group.add_argument("--deactivate", dest="active", action="store_const", const=False)
    edit.add_argument("--new-password", action="store_true", help="generate a new SIP password")
    edit.add_argument("--skill", action="append", help="the listener's skills (replaces them; repeatable)")
    edit.add_argument("--no-skill", action="store_true", help="remove every skill")
    edit.add_argument("--language", action="append", help="the languages spoken (replaces them; repeatable)")
    trainee = edit.add_mutually_exclusive_group()
    trainee.add_argument(
        "--trainee", dest="trainee", action="store_const", const=True, help="in training (practice calls)"
    )
    trainee.add_argument("--no-trainee", dest="trainee", action="store_const", const=False)
    consent = edit.add_mutually_exclusive_group()
    consent.add_argument(
        "--consent",
        dest="consent",
        action="store_const",
        const=True,
        help="agreed that a supervisor may listen to, coach or join their calls",
    )
    consent.add_argument("--no-consent", dest="consent", action="store_const", const=False)
    rm = l_sub.add_parser("remove", help="remove a listener (their call records stay, anonymous)")
    rm.add_argument("listener", help="id, endpoint or pseudonym")
    show = l_sub.add_parser("show", help="one listener: presence, state, short code, training")
    show.add_argument("listener", help="id, endpoint, pseudonym or short code")
    # The same as the codes on the listener's phone; the service takes the change at its next roster poll.
    for name, what in (
        ("login", "put the listener on duty (as *11 on their phone)"),
        ("logout", "take the listener off duty (as *12)"),
        ("resume", "end the listener's pause (as *14)"),
    ):
        presence = l_sub.add_parser(name, help=what)
        presence.add_argument("listener", help="id, endpoint, pseudonym or short code")
    pause = l_sub.add_parser("pause", help="pause the listener: no call until they resume (as *13)")
    pause.add_argument("listener", help="id, endpoint, pseudonym or short code")
    pause.add_argument("--reason", default="break", help='why, in a few words (default "break")')

    debriefs = sub.add_parser("debriefs", help="debrief requests after calls listeners marked difficult")
    d_sub = debriefs.add_subparsers(dest="debriefs_command", required=True)
    d_sub.add_parser("list", help="requests not handled yet, oldest first")
    handle = d_sub.add_parser("handle", help="close a listener's open requests (as *41 + their code)")
    handle.add_argument("listener", help="id, endpoint, pseudonym or short code")

    supervisions = sub.add_parser("supervisions", help="audit of supervisors listening in")
    s_sub = supervisions.add_subparsers(dest="supervisions_command", required=True)
    s_list = s_sub.add_parser("list", help="who supervised whose call, how, when; oldest first")
    s_list.add_argument("--days", type=float, default=30.0, help="how far back (default 30 days)")

    callers = sub.add_parser(
        "callers", help="bar abusive callers, by call code only (no number is ever shown)"
    )
    c_sub = callers.add_subparsers(dest="callers_command", required=True)
    bar = c_sub.add_parser("bar", help="bar the caller of a recent call")
    bar.add_argument("call", help='the call\'s code as the listener heard it ("4821") or its call id')
    bar.add_argument("--days", type=float, default=30.0, help="how long (default 30 days)")
    bar.add_argument("--reason", required=True, help="why, for the team (no caller details)")
    lift = c_sub.add_parser("lift", help="lift a bar")
    lift.add_argument("bar_id", type=int)
    c_sub.add_parser("list", help="bars in force")

    sub.add_parser("purge", help="forget what is past its retention period (the service does it daily)")
    lines_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        match args.command:
            case "serve":
                return _serve()
            case "check":
                load_settings()
                print("settings: ok")
                return 0
            case "welcome":
                return _welcome()
            case "db":
                from helpline_pbx.roster.database import upgrade_sync

                upgrade_sync(_database_url())
                print("database: at the latest schema")
                return 0
            case "listeners":
                return asyncio.run(_listeners(args))
            case "debriefs":
                return asyncio.run(_debriefs(args))
            case "supervisions":
                return asyncio.run(_supervisions(args))
            case "callers":
                return asyncio.run(_callers(args))
            case "purge":
                return asyncio.run(_purge())
            case "lines":
                return asyncio.run(lines_cli.run(args))
    except SettingsError as exc:
        print(f"helpline-pbx: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_FAILED


def _serve() -> int:
    from helpline_pbx.app import serve
    from helpline_pbx.logs import configure_logging

    settings = load_settings()
    redactor = configure_logging(settings.log_level)
    asyncio.run(serve(settings, redactor))
    return 0


def _welcome() -> int:
    port = os.environ.get("HELPLINE_SIP_PORT", "5060")
    print(
        f"""
helpline-pbx is starting.

  Listeners' softphones register to this machine, UDP port {port}:
    add a listener:   .venv/bin/helpline-pbx listeners add "Camille" --role volunteer
    then in the softphone: user = the endpoint printed, password = the password printed,
    domain/registrar = this machine's address, port {port}, transport UDP.
    A listener takes calls once logged in: *11 from their phone,
    or .venv/bin/helpline-pbx listeners login camille

  Callers come in through the SIP trunk (the address in HELPLINE_TRUNK_MATCH, 127.0.0.2 by default),
  dialling the line's number, for example sip:0800123456@<this machine>:{port}.
  To try it without a trunk:  sipp -sf tests/sipp/caller.xml -i 127.0.0.2 -s 0800123456 127.0.0.1:{port} -m 1

  Stop with Ctrl-C: calls in progress finish; waiting callers go to the fallback, which rings the
  listeners' phones directly, then plays a message with alternatives. A second Ctrl-C stops at once.
"""
    )
    return 0


async def _listeners(args: argparse.Namespace) -> int:
    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.roster.errors import RosterError
    from helpline_pbx.roster.repository import Roster

    engine = make_engine(_database_url())
    roster = Roster(engine)
    try:
        match args.listeners_command:
            case "add":
                endpoint = args.endpoint or _endpoint_from(args.pseudonym)
                added = await roster.add_listener(
                    args.pseudonym, endpoint, args.role, skills=args.skill, languages=args.language or ["fr"]
                )
                print(f"added {added.id}  pseudonym={added.pseudonym}  role={added.role.value}")
                print(f"  SIP user: {added.endpoint}")
                print(
                    f"  SIP password: {added.sip_password}   (shown once, never stored; "
                    "`edit --new-password` makes another)"
                )
                print(
                    f"  off duty until logged in: *11 from the phone, or `listeners login {added.endpoint}`"
                )
            case "list":
                rows = await roster.list_listeners(active_only=args.active)
                print(
                    f"{'id':<12} {'pseudonym':<20} {'endpoint':<20} {'role':<13} {'active':<6} "
                    f"{'presence':<8} {'state':<16} {'code':<6} languages / skills"
                )
                for r in rows:
                    print(
                        f"{r.id:<12} {r.pseudonym:<20} {r.endpoint:<20} {r.role.value:<13} "
                        f"{'yes' if r.active else 'no':<6} {r.presence.value:<8} {r.state.value:<16} "
                        f"{r.code or '-':<6} "
                        f"{','.join(sorted(r.languages))} / {','.join(sorted(r.skills)) or '-'}"
                    )
            case "edit":
                edited = await roster.edit_listener(
                    args.listener,
                    pseudonym=args.pseudonym,
                    role=args.role,
                    active=args.active,
                    endpoint=args.endpoint,
                    regenerate_secret=args.new_password,
                    skills=[] if args.no_skill else args.skill,
                    languages=args.language,
                    trainee=args.trainee,
                    monitoring_consent=args.consent,
                )
                print(f"edited {edited.id}  pseudonym={edited.pseudonym}  role={edited.role.value}")
                if edited.sip_password is not None:
                    print(f"  new SIP password: {edited.sip_password}   (shown once, never stored)")
            case "remove":
                removed = await roster.remove_listener(args.listener)
                print(f"removed {removed.id} ({removed.pseudonym})")
            case "show":
                _print_listener(await roster.get_listener(args.listener))
            case "login" | "logout" | "resume" | "pause":
                return await _set_presence(roster, args)
        return 0
    except RosterError as exc:
        print(f"helpline-pbx: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await engine.dispose()


_PRESENCE_OF = {"login": "on", "resume": "on", "logout": "off", "pause": "paused"}
_PRESENCE_SAID = {"on": "on duty", "off": "off duty", "paused": "paused"}


async def _set_presence(roster: Roster, args: argparse.Namespace) -> int:
    presence = _PRESENCE_OF[args.listeners_command]
    reason = None
    if presence == "paused":
        reason = args.reason.strip()
        if not reason:
            print("helpline-pbx: a pause needs a reason of a few words", file=sys.stderr)
            return EXIT_FAILED
    changed = await roster.set_presence(args.listener, presence, reason=reason, now=datetime.now(UTC))
    why = f" ({changed.presence_reason})" if changed.presence_reason else ""
    print(f"{changed.pseudonym} ({changed.id}) is {_PRESENCE_SAID[presence]}{why}")
    print("  the service takes it within a few seconds; calls in progress and rests run to their end")
    return 0


def _print_listener(r: ListenerSnapshot) -> None:
    def when(value: datetime | None) -> str:
        return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"

    presence = r.presence.value + (f" ({r.presence_reason})" if r.presence_reason else "")
    state = r.state.value
    if r.state_until is not None:
        state += f" until {when(r.state_until)}"
    if r.state_reason:
        state += f" ({r.state_reason})"
    print(f"{r.id}  {r.pseudonym}")
    print(f"  endpoint:   {r.endpoint}")
    print(f"  role:       {r.role.value}{'' if r.active else ' (inactive)'}")
    print(f"  presence:   {presence}")
    # Since the state (and its reason) last changed: "available since" is since calls could be offered.
    print(f"  state:      {state}  since {when(r.state_changed_at)}")
    print(f"  shift from: {when(r.shift_started_at)}")
    print(f"  code:       {r.code or '-'}  (supervisors dial *31/*32/*33 or *41 + this code)")
    print(f"  trainee:    {'yes' if r.trainee else 'no'}")
    consent = (
        "yes (supervisors may listen in, coach or join)"
        if r.monitoring_consent
        else "no (supervisors may not listen in to their calls"
        + (", except while they are in training)" if r.trainee else ")")
    )
    print(f"  consent:    {consent}")
    print(f"  languages:  {','.join(sorted(r.languages))}  skills: {','.join(sorted(r.skills)) or '-'}")


async def _debriefs(args: argparse.Namespace) -> int:
    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.roster.debriefs import Debriefs
    from helpline_pbx.roster.errors import RosterError
    from helpline_pbx.roster.repository import Roster

    engine = make_engine(_database_url())
    debriefs = Debriefs(engine)
    try:
        match args.debriefs_command:
            case "list":
                listeners = {r.id: r for r in await Roster(engine).list_listeners()}
                print(f"{'request':<8} {'asked (UTC)':<17} {'listener':<20} {'code':<6} call")
                for d in await debriefs.open():
                    who = listeners.get(d.listener_id)
                    name = who.pseudonym if who else f"({d.listener_id}, removed)"
                    code = (who.code if who else None) or "-"
                    print(
                        f"{d.id:<8} {d.requested_at:%Y-%m-%d %H:%M} {name:<20} {code:<6} {d.call_id or '-'}"
                    )
            case "handle":
                handled = await debriefs.handle(args.listener, "cli", datetime.now(UTC))
                if handled == 0:
                    print(f"helpline-pbx: no open debrief request for {args.listener!r}", file=sys.stderr)
                    return EXIT_FAILED
                print(f"{handled} debrief request{'s' if handled > 1 else ''} of {args.listener} handled")
        return 0
    except RosterError as exc:
        print(f"helpline-pbx: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await engine.dispose()


async def _supervisions(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.roster.errors import RosterError
    from helpline_pbx.roster.repository import Roster
    from helpline_pbx.roster.supervisions import Supervisions

    engine = make_engine(_database_url())
    try:
        names = {r.id: r.pseudonym for r in await Roster(engine).list_listeners()}
        since = datetime.now(UTC) - timedelta(days=args.days)
        print(f"{'started (UTC)':<17} {'until':<8} {'mode':<7} {'supervisor':<20} {'listener':<20} call")
        for row in await Supervisions(engine).list(since):
            until = f"{row.ended_at:%H:%M:%S}" if row.ended_at else "ongoing"
            print(
                f"{row.started_at:%Y-%m-%d %H:%M} {until:<8} {row.mode.value:<7} "
                f"{names.get(row.supervisor_id, row.supervisor_id):<20} "
                f"{names.get(row.listener_id, row.listener_id):<20} {row.call_id or '-'}"
            )
        return 0
    except RosterError as exc:
        print(f"helpline-pbx: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await engine.dispose()


async def _callers(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from helpline_pbx.roster.callers import Callers
    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.roster.errors import RosterError

    engine = make_engine(_database_url())
    callers = Callers(engine)
    now = datetime.now(UTC)
    try:
        match args.callers_command:
            case "bar":
                bar = await callers.bar_call(
                    args.call,
                    until=now + timedelta(days=args.days),
                    reason=args.reason,
                    created_by="cli",
                    now=now,
                )
                print(f"bar {bar.id} in force until {bar.until:%Y-%m-%d %H:%M} UTC")
            case "lift":
                if not await callers.lift_bar(args.bar_id, now):
                    print(f"helpline-pbx: no bar {args.bar_id} in force", file=sys.stderr)
                    return EXIT_FAILED
                print(f"bar {args.bar_id} lifted")
            case "list":
                print(f"{'bar':<6} {'until (UTC)':<17} {'by':<12} reason")
                for b in await callers.bars(now):
                    print(f"{b.id:<6} {b.until:%Y-%m-%d %H:%M} {b.created_by:<12} {b.reason}")
        return 0
    except RosterError as exc:
        print(f"helpline-pbx: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await engine.dispose()


async def _purge() -> int:
    from helpline_pbx.housekeeping import housekeep, retention_of
    from helpline_pbx.roster.database import make_engine
    from helpline_pbx.tokens import KeyRing

    defaults = Settings.model_fields
    days = int(os.environ.get("HELPLINE_RETENTION_DAYS", defaults["retention_days"].default))
    keys_dir = keys_dir_from_env()
    engine = make_engine(_database_url())
    try:
        report = await housekeep(engine, KeyRing(keys_dir), retention_of(days))
    finally:
        await engine.dispose()
    print(report.summary())
    return 0


def _endpoint_from(pseudonym: str) -> str:
    import re
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", pseudonym).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9_-]+", "-", ascii_name.lower()).strip("-") or "listener"


if __name__ == "__main__":
    sys.exit(main())
