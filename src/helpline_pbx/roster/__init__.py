"""The roster database: listeners, claims, anonymous call records."""

# Importing the lines' and the console's tables here puts them on the shared metadata (migrations and the
# schema test read it). A plain import: the lines import this package, so it may be half imported here.
import helpline_pbx.console.tables
import helpline_pbx.lines.tables  # noqa: F401
from helpline_pbx.roster.database import make_engine, session_factory, upgrade, upgrade_sync
from helpline_pbx.roster.errors import (
    DatabaseUnavailable,
    DuplicateListener,
    InvalidListener,
    ListenerNotFound,
    RosterError,
)
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
