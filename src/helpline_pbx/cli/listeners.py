"""`helpline-pbx listeners ...`: the roster of listeners, and their presence as their phone's codes set it."""

from __future__ import annotations

import argparse
import re
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, on_database
from helpline_pbx.roster.states import Presence, Role

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from helpline_pbx.roster.repository import Roster
    from helpline_pbx.roster.snapshots import ListenerSnapshot

ROLES = [role.value for role in Role]

# The same as the codes on the listener's phone; the service takes the change at its next roster poll.
_PRESENCE_COMMANDS = {
    "login": (Presence.ON, "put the listener on duty (as *11 on their phone)"),
    "logout": (Presence.OFF, "take the listener off duty (as *12)"),
    "resume": (Presence.ON, "end the listener's pause (as *14)"),
    "pause": (Presence.PAUSED, "pause the listener: no call until they resume (as *13)"),
}
_PRESENCE_SAID = {Presence.ON: "on duty", Presence.OFF: "off duty", Presence.PAUSED: "paused"}
_WHO = "id, endpoint, pseudonym or short code"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listeners = sub.add_parser("listeners", help="manage the roster of listeners")
    l_sub = listeners.add_subparsers(dest="listeners_command", required=True)
    add = l_sub.add_parser("add", help="add a listener; prints the SIP password once")
    add.add_argument("pseudonym", help="how the team calls the listener (no real name needed)")
    add.add_argument("--endpoint", help="SIP user name (default: from the pseudonym)")
    add.add_argument("--role", default=Role.VOLUNTEER.value, choices=ROLES)
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
    edit.add_argument("--role", choices=ROLES)
    _add_switch(edit, "active", ("--activate", "--deactivate"))
    edit.add_argument("--new-password", action="store_true", help="generate a new SIP password")
    edit.add_argument("--skill", action="append", help="the listener's skills (replaces them; repeatable)")
    edit.add_argument("--no-skill", action="store_true", help="remove every skill")
    edit.add_argument("--language", action="append", help="the languages spoken (replaces them; repeatable)")
    _add_switch(edit, "trainee", ("--trainee", "--no-trainee"), "in training (practice calls)")
    _add_switch(
        edit,
        "consent",
        ("--consent", "--no-consent"),
        "agreed that a supervisor may listen to, coach or join their calls",
    )
    rm = l_sub.add_parser("remove", help="remove a listener (their call records stay, anonymous)")
    rm.add_argument("listener", help="id, endpoint or pseudonym")
    show = l_sub.add_parser("show", help="one listener: presence, state, short code, training")
    show.add_argument("listener", help=_WHO)
    for name, (_, what) in _PRESENCE_COMMANDS.items():
        presence = l_sub.add_parser(name, help=what)
        presence.add_argument("listener", help=_WHO)
        if name == "pause":
            presence.add_argument("--reason", default="break", help='why, in a few words (default "break")')


def _add_switch(
    parser: argparse.ArgumentParser, dest: str, flags: tuple[str, str], help: str | None = None
) -> None:
    """--x / --no-x: True, False, or None (unchanged) when neither is given."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(flags[0], dest=dest, action="store_const", const=True, help=help)
    group.add_argument(flags[1], dest=dest, action="store_const", const=False)


async def run(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        from helpline_pbx.roster.repository import Roster

        roster = Roster(engine)
        match args.listeners_command:
            case "add":
                await _add(roster, args)
            case "list":
                _print_list(await roster.list_listeners(active_only=args.active))
            case "edit":
                await _edit(roster, args)
            case "remove":
                removed = await roster.remove_listener(args.listener)
                print(f"removed {removed.id} ({removed.pseudonym})")
            case "show":
                _print_listener(await roster.get_listener(args.listener))
            case command if command in _PRESENCE_COMMANDS:
                return await _set_presence(roster, args)
        return EXIT_OK

    return await on_database(work)


async def _add(roster: Roster, args: argparse.Namespace) -> None:
    endpoint = args.endpoint or endpoint_from(args.pseudonym)
    added = await roster.add_listener(
        args.pseudonym, endpoint, args.role, skills=args.skill, languages=args.language or ["fr"]
    )
    print(f"added {added.id}  pseudonym={added.pseudonym}  role={added.role.value}")
    print(f"  SIP user: {added.endpoint}")
    print(
        f"  SIP password: {added.sip_password}   (shown once, never stored; "
        "`edit --new-password` makes another)"
    )
    print(f"  off duty until logged in: *11 from the phone, or `listeners login {added.endpoint}`")


async def _edit(roster: Roster, args: argparse.Namespace) -> None:
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


async def _set_presence(roster: Roster, args: argparse.Namespace) -> int:
    presence, _ = _PRESENCE_COMMANDS[args.listeners_command]
    reason = args.reason.strip() if presence is Presence.PAUSED else None
    changed = await roster.set_presence(args.listener, presence, reason=reason, now=datetime.now(UTC))
    why = f" ({changed.presence_reason})" if changed.presence_reason else ""
    print(f"{changed.pseudonym} ({changed.id}) is {_PRESENCE_SAID[presence]}{why}")
    print("  the service takes it within a few seconds; calls in progress and rests run to their end")
    return EXIT_OK


def _print_list(rows: list[ListenerSnapshot]) -> None:
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


def endpoint_from(pseudonym: str) -> str:
    """A SIP user name from a pseudonym: ASCII, lower case, dashes."""
    ascii_name = unicodedata.normalize("NFKD", pseudonym).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9_-]+", "-", ascii_name.lower()).strip("-") or "listener"
