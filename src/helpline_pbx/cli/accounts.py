"""`helpline-pbx accounts ...`: who may sign in to the web console. The first coordinator is made here."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, on_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = sub.add_parser("accounts", help="web console accounts (coordinators, supervisors, listeners)")
    a_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    add = a_sub.add_parser("add", help="add an account; prints a one-time password")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["coordinator", "supervisor", "listener"])
    add.add_argument("--listener", help="tie it to a listener of the roster (id or pseudonym)")
    a_sub.add_parser("list", help="list accounts")
    reset = a_sub.add_parser("password", help="a new one-time password (closes the account's sessions)")
    reset.add_argument("username")
    for name, what in (
        ("deactivate", "refuse its sign-ins and close its sessions"),
        ("activate", "allow it again"),
    ):
        one = a_sub.add_parser(name, help=what)
        one.add_argument("username")


async def run(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        from helpline_pbx.console.accounts import Accounts

        accounts = Accounts(engine)
        match args.accounts_command:
            case "add":
                account, password = await accounts.add(args.username, args.role, listener=args.listener)
                print(f"added {account.username} ({account.role.value})")
                print(f"  one-time password: {password}")
                print("  shown once: it must be changed at the first sign-in")
            case "list":
                print(f"{'username':<24} {'role':<12} {'active':<6} listener")
                for a in await accounts.all():
                    active = "yes" if a.active else "no"
                    print(f"{a.username:<24} {a.role.value:<12} {active:<6} {a.listener_id or '-'}")
            case "password":
                password = await accounts.reset_password(args.username)
                print(f"one-time password of {args.username}: {password}")
                print("  shown once: it must be changed at the first sign-in")
            case "deactivate" | "activate":
                await accounts.set_active(args.username, args.accounts_command == "activate")
                print(f"{args.username} {args.accounts_command}d")
        return EXIT_OK

    return await on_database(work)
