"""Alembic environment for the roster database.

The URL comes from, in order: the `url` config attribute (set by helpline_pbx.roster.database),
`alembic -x url=...`, or the HELPLINE_DATABASE_URL environment variable. A `connection` config
attribute, when present, is used as is so that upgrades can run inside an existing event loop.
"""

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from helpline_pbx.roster.database import make_engine
from helpline_pbx.roster.tables import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata

# Only the alembic CLI passes an ini file; programmatic upgrades keep the service's logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or os.environ.get("HELPLINE_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set HELPLINE_DATABASE_URL")
    return str(url)


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Revisions must not import the application: render the stored type, not the decorator.
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_async() -> None:
    engine = make_engine(database_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations_on(connection)
    else:
        asyncio.run(run_migrations_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
