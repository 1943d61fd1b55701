"""`helpline-pbx db upgrade` and `helpline-pbx purge`: the roster database's schema and retention."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from helpline_pbx.cli.common import EXIT_OK, on_database
from helpline_pbx.settings import database_url_from_env, default_of, keys_dir_from_env

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate the roster database to the latest schema")
    sub.add_parser("purge", help="forget what is past its retention period (the service does it daily)")


def upgrade() -> int:
    from helpline_pbx.roster.database import upgrade_sync

    upgrade_sync(database_url_from_env())
    print("database: at the latest schema")
    return EXIT_OK


async def purge() -> int:
    from helpline_pbx.housekeeping import housekeep, retention_of
    from helpline_pbx.tokens import KeyRing

    # The retention the service would use, without needing the service's other settings (ARI password).
    days = int(os.environ.get("HELPLINE_RETENTION_DAYS", default_of("retention_days")))

    async def work(engine: AsyncEngine) -> int:
        report = await housekeep(engine, KeyRing(keys_dir_from_env()), retention_of(days))
        print(report.summary())
        return EXIT_OK

    return await on_database(work)
