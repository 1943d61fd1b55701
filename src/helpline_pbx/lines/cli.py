"""`helpline-pbx lines ...`: add, list, show, edit and remove listening lines.

Every command is one transaction: on error, one line on stderr, exit 1, and nothing changed.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, on_database
from helpline_pbx.hours import (
    DEFAULT_TIMEZONE,
    DayRanges,
    OpeningHours,
    parse_date,
    parse_exceptions,
    parse_weekly,
)
from helpline_pbx.hours.edits import HoursEdit

if TYPE_CHECKING:
    # The roster pulls in SQLAlchemy: imported when a command runs, not when the parser is built.
    from sqlalchemy.ext.asyncio import AsyncEngine

    from helpline_pbx.lines.repository import Lines
    from helpline_pbx.lines.snapshots import LineSnapshot

_HOURS_HELP = 'weekly hours, e.g. "mon-fri 09:00-21:00; sat 10:00-18:00; sun closed" or "24/7"'


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lines = subparsers.add_parser("lines", help="manage the listening lines: numbers, audience, hours")
    sub = lines.add_subparsers(dest="lines_command", required=True)

    add = sub.add_parser("add", help="add a line")
    add.add_argument("name", help='short name, e.g. "jeunes" or "adultes-vif"')
    add.add_argument("--label", required=True, help='what listeners\' phones show, e.g. "Écoute Jeunes"')
    add.add_argument(
        "--number", action="append", default=[], help="a number (DID) that reaches the line; repeatable"
    )
    add.add_argument("--audience", default="", help="who the line is for")
    add.add_argument("--support", action="append", default=[], help="a kind of support offered; repeatable")
    add.add_argument("--language", default="fr")
    add.add_argument("--skill", action="append", default=[], help="a skill listeners need; repeatable")
    add.add_argument("--hours", default="24/7", help=_HOURS_HELP + " (default 24/7)")
    add.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="IANA time zone of the hours")
    _add_exception_options(add)
    _add_message_options(add)
    add.add_argument(
        "--ring-timeout", type=int, help="seconds a listener's phone rings (overrides the default)"
    )
    add.add_argument(
        "--repeat-hint",
        action="store_true",
        help="show listeners how often a (pseudonymous) caller called this period",
    )
    add.add_argument(
        "--professionals-after",
        type=int,
        help="volunteers are tried first; after this many seconds of waiting, professionals too",
    )
    _add_waiting_options(add)
    add.add_argument("--practice", action="store_true", help="a training line: calls reach trainees only")
    add.add_argument(
        "--trainees-allowed", action="store_true", help="real calls may reach trainees (under supervision)"
    )
    add.add_argument("--inactive", action="store_true", help="create it inactive (takes no calls)")

    lst = sub.add_parser("list", help="list lines, and whether each is open now")
    lst.add_argument("--active", action="store_true", help="only active lines")

    show = sub.add_parser("show", help="show a line: hours in words, and whether it is open now")
    show.add_argument("line", help="id, name or number")

    edit = sub.add_parser("edit", help="change a line")
    edit.add_argument("line", help="id, name or number")
    edit.add_argument("--name")
    edit.add_argument("--label")
    edit.add_argument("--add-number", action="append", default=[])
    edit.add_argument("--remove-number", action="append", default=[])
    edit.add_argument("--audience")
    edit.add_argument("--support", action="append", help="replaces the kinds of support; repeatable")
    edit.add_argument("--no-support", action="store_true", help="clear the kinds of support")
    edit.add_argument("--language")
    edit.add_argument("--skill", action="append", help="replaces the required skills; repeatable")
    edit.add_argument("--no-skill", action="store_true", help="clear the required skills")
    edit.add_argument("--hours", help=_HOURS_HELP)
    edit.add_argument("--timezone")
    _add_exception_options(edit)
    edit.add_argument(
        "--open-on", action="append", default=[], metavar="DATE", help="drop the exception of that date"
    )
    _add_message_options(edit)
    timeout = edit.add_mutually_exclusive_group()
    timeout.add_argument("--ring-timeout", type=int)
    timeout.add_argument("--no-ring-timeout", action="store_true", help="use the service's default again")
    hint = edit.add_mutually_exclusive_group()
    hint.add_argument("--repeat-hint", dest="repeat_hint", action="store_const", const=True)
    hint.add_argument("--no-repeat-hint", dest="repeat_hint", action="store_const", const=False)
    reach = edit.add_mutually_exclusive_group()
    reach.add_argument("--professionals-after", type=int, help="volunteers first, professionals after N s")
    reach.add_argument("--everyone-at-once", action="store_true", help="any role may take calls at once")
    _add_waiting_options(edit, removable=True)
    practice = edit.add_mutually_exclusive_group()
    practice.add_argument("--practice", dest="practice", action="store_const", const=True)
    practice.add_argument("--no-practice", dest="practice", action="store_const", const=False)
    trainees = edit.add_mutually_exclusive_group()
    trainees.add_argument("--trainees-allowed", dest="trainees_allowed", action="store_const", const=True)
    trainees.add_argument("--no-trainees", dest="trainees_allowed", action="store_const", const=False)
    active = edit.add_mutually_exclusive_group()
    active.add_argument("--activate", dest="active", action="store_const", const=True)
    active.add_argument("--deactivate", dest="active", action="store_const", const=False)

    rm = sub.add_parser("remove", help="remove a line and its numbers (call records keep its name)")
    rm.add_argument("line", help="id, name or number")


# The line's durations in seconds: the option, what it means.
WAITING_OPTIONS = {
    "rest_after_call": "minimum rest of a listener after a call on this line",
    "announce_every": "tell waiting callers their position and estimated wait every N s",
    "choice_after": "after N s of waiting, offer to keep the place or hear the alternatives",
    "max_wait": "an estimated wait above N s: callers first hear the overloaded message",
    "service_level": "the service level counts calls answered within N s; a longer wait raises an alert",
    "short_abandon": "a caller who hangs up within N s is a short abandon, left out of the service level",
}


def _add_waiting_options(parser: argparse.ArgumentParser, *, removable: bool = False) -> None:
    for key, meaning in WAITING_OPTIONS.items():
        option = "--" + key.replace("_", "-")
        if removable:
            group = parser.add_mutually_exclusive_group()
            group.add_argument(option, type=int, metavar="SECONDS", help=meaning)
            group.add_argument("--no-" + key.replace("_", "-"), action="store_true", help="remove it")
        else:
            parser.add_argument(option, type=int, metavar="SECONDS", help=meaning)


def _waiting_changes(args: argparse.Namespace) -> dict[str, object]:
    from helpline_pbx.lines.snapshots import UNSET

    changes: dict[str, object] = {}
    for key in WAITING_OPTIONS:
        if getattr(args, "no_" + key, False):
            changes[key] = None
        elif getattr(args, key) is not None:
            changes[key] = getattr(args, key)
        else:
            changes[key] = UNSET
    return changes


def _add_exception_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--closed-on", action="append", default=[], metavar="DATE", help="closed that day, e.g. 2026-12-25"
    )
    parser.add_argument(
        "--hours-on",
        action="append",
        default=[],
        metavar='"DATE RANGES"',
        help='special hours that day, e.g. "2026-12-24 09:00-14:00"',
    )


def _add_message_options(parser: argparse.ArgumentParser) -> None:
    for kind in ("closed", "overloaded", "alternatives"):
        parser.add_argument(f"--{kind}-message", metavar="PROMPT", help=f"prompt played when {kind}")


async def run(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        from helpline_pbx.lines.repository import Lines

        lines = Lines(engine)
        match args.lines_command:
            case "add":
                await _add(lines, args)
            case "list":
                _print_list(await lines.list(active_only=args.active))
            case "show":
                _print_line(await lines.get(args.line))
            case "edit":
                await _edit(lines, args)
            case "remove":
                removed = await lines.remove(args.line)
                print(f"removed {removed.id} ({removed.name})")
        return EXIT_OK

    return await on_database(work)


async def _add(lines: Lines, args: argparse.Namespace) -> None:
    from helpline_pbx.lines.snapshots import LineMessages

    closed: list[tuple[date, DayRanges]] = [(day, ()) for day in _dates(args.closed_on)]
    hours = OpeningHours(parse_weekly(args.hours), (*closed, *_special_hours(args.hours_on)), args.timezone)
    messages = dataclasses.replace(LineMessages(), **_message_changes(args))
    added = await lines.add(
        args.name,
        label=args.label,
        numbers=args.number,
        audience=args.audience,
        support=args.support,
        language=args.language,
        skills=args.skill,
        hours=hours,
        messages=messages,
        ring_timeout=args.ring_timeout,
        professionals_after=args.professionals_after,
        repeat_hint=args.repeat_hint,
        rest_after_call=args.rest_after_call,
        announce_every=args.announce_every,
        choice_after=args.choice_after,
        max_wait=args.max_wait,
        service_level=args.service_level,
        short_abandon=args.short_abandon,
        practice=args.practice,
        trainees_allowed=args.trainees_allowed,
        active=not args.inactive,
    )
    print(f"added {added.id}  name={added.name}  label={added.label}")
    if not added.numbers:
        print("  no number reaches it yet: `lines edit NAME --add-number …`")
    print(f"  hours: {added.hours.describe()}")


async def _edit(lines: Lines, args: argparse.Namespace) -> None:
    from helpline_pbx.lines.snapshots import UNSET, LineMessages, Unset

    # Everything is parsed before the transaction: a typo fails before anything is read or written.
    hours = HoursEdit(
        weekly=None if args.hours is None else parse_weekly(args.hours),
        timezone=args.timezone,
        closed=tuple(_dates(args.closed_on)),
        special=tuple(_special_hours(args.hours_on)),
        reopened=tuple(_dates(args.open_on)),
    )

    message_changes = _message_changes(args)

    def messages(current: LineMessages) -> LineMessages:
        return dataclasses.replace(current, **message_changes)

    ring_timeout: int | Unset | None = UNSET
    if args.no_ring_timeout:
        ring_timeout = None
    elif args.ring_timeout is not None:
        ring_timeout = args.ring_timeout
    edited = await lines.edit(
        args.line,
        name=args.name,
        label=args.label,
        add_numbers=args.add_number,
        remove_numbers=args.remove_number,
        audience=args.audience,
        support=[] if args.no_support else args.support,
        language=args.language,
        skills=[] if args.no_skill else args.skill,
        hours=hours.change(),
        messages=messages if message_changes else None,
        ring_timeout=ring_timeout,
        repeat_hint=args.repeat_hint,
        professionals_after=(
            None
            if args.everyone_at_once
            else args.professionals_after
            if args.professionals_after is not None
            else UNSET
        ),
        practice=args.practice,
        trainees_allowed=args.trainees_allowed,
        active=args.active,
        **_waiting_changes(args),  # type: ignore[arg-type]
    )
    print(f"edited {edited.id}  name={edited.name}  label={edited.label}")


def _dates(texts: Iterable[str]) -> list[date]:
    return [parse_date(text) for text in texts]


def _special_hours(texts: Iterable[str]) -> list[tuple[date, DayRanges]]:
    return [pair for text in texts for pair in parse_exceptions(text)]


def _message_changes(args: argparse.Namespace) -> dict[str, str]:
    changes = {kind: getattr(args, f"{kind}_message") for kind in ("closed", "overloaded", "alternatives")}
    return {kind: value for kind, value in changes.items() if value is not None}


def _seconds(value: int | None, none: str, prefix: str = "") -> str:
    return none if value is None else f"{prefix}{value} s"


def _now_text(line: LineSnapshot, now: datetime) -> str:
    if not line.active:
        return "inactive"
    if line.hours.is_open(now):
        return "open"
    reopening = line.hours.next_opening(now)
    if reopening is None:
        return "closed, no opening ahead"
    return f"closed until {reopening.astimezone(line.hours.zone):%Y-%m-%d %H:%M %Z}"


def _print_list(rows: list[LineSnapshot]) -> None:
    now = datetime.now(UTC)
    print(f"{'name':<16} {'id':<12} {'label':<24} {'lang':<6} {'numbers':<28} now")
    for line in rows:
        numbers = ", ".join(line.numbers) or "-"
        print(
            f"{line.name:<16} {line.id:<12} {line.label:<24} {line.language:<6} {numbers:<28} "
            f"{_now_text(line, now)}"
        )


def _print_line(line: LineSnapshot) -> None:
    now = datetime.now(UTC)
    timeout = "service default" if line.ring_timeout is None else f"{line.ring_timeout} s"
    fields = [
        ("id", line.id),
        ("label", line.label),
        ("numbers", ", ".join(line.numbers) or "none"),
        ("audience", line.audience or "-"),
        ("support", ", ".join(line.support) or "-"),
        ("language", line.language),
        ("skills", ", ".join(line.skills) or "-"),
        ("time zone", line.timezone),
        ("hours", line.hours.describe(with_exceptions=False)),
        ("as text", line.hours.weekly_text()),
        ("exceptions", line.hours.exceptions_text() or "-"),
        (
            "messages",
            f"closed={line.messages.closed} overloaded={line.messages.overloaded} "
            f"alternatives={line.messages.alternatives}",
        ),
        ("ring timeout", timeout),
        ("rest after", _seconds(line.rest_after_call, "service default")),
        ("announce", _seconds(line.announce_every, "never", "every ")),
        ("choice after", _seconds(line.choice_after, "never")),
        ("max wait", _seconds(line.max_wait, "no limit")),
        ("service level", _seconds(line.service_level, "service default")),
        ("short abandon", _seconds(line.short_abandon, "service default")),
        ("practice", "yes: trainees only" if line.practice else "no"),
        ("trainees", "allowed (supervised)" if line.trainees_allowed else "not on real calls"),
        ("active", "yes" if line.active else "no"),
        ("now", _now_text(line, now)),
    ]
    print(line.name)
    for label, value in fields:
        print(f"  {label + ':':<14}{value}")
