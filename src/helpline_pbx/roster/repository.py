"""The roster: listeners, their availability, claims, and anonymous call records.

Every method runs in its own short transaction and returns frozen snapshots, so no session is
ever held while the caller awaits other I/O (ARI, timers). One class for the service to hold, made of
one part per group of tables and duties.
"""

from helpline_pbx.roster.availability import Availability
from helpline_pbx.roster.listeners import ListenerAdmin
from helpline_pbx.roster.records import Records


class Roster(ListenerAdmin, Availability, Records):
    """Listeners' administration, their availability and claims, the audit and the call records."""
