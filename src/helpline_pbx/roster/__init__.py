"""The roster database: listeners, claims, anonymous call records."""

from helpline_pbx.roster.database import make_engine, session_factory, upgrade, upgrade_sync
from helpline_pbx.roster.errors import (
    DatabaseUnavailable,
    DuplicateListener,
    InvalidListener,
    ListenerNotFound,
    RosterError,
)

# Importing lines here puts its tables on the shared metadata (migrations and the schema test read it).
from helpline_pbx.roster.lines import Lines, LineSnapshot
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import (
    CallRecordData,
    ListenerEventSnapshot,
    ListenerSnapshot,
    RosterVersion,
)
from helpline_pbx.roster.states import ListenerState, Outcome, Role

__all__ = [
    "CallRecordData",
    "DatabaseUnavailable",
    "DuplicateListener",
    "InvalidListener",
    "LineSnapshot",
    "Lines",
    "ListenerEventSnapshot",
    "ListenerNotFound",
    "ListenerSnapshot",
    "ListenerState",
    "Outcome",
    "Role",
    "Roster",
    "RosterError",
    "RosterVersion",
    "make_engine",
    "session_factory",
    "upgrade",
    "upgrade_sync",
]
