"""What the dialplan, Asterisk and the service agree on, in one place: the Stasis arguments, bridge roles,
the ids the service chooses, the channel and global variables each side sets for the other, and the lanes
that keep one call's or one listener's ARI requests in order.

A name changed here must change in dialplan/extensions.conf too (the variables' comments say where).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class StasisRole(StrEnum):
    """The first Stasis argument: who entered the application."""

    CALLER = "caller"  # [helpline-caller]: caller,<number dialled>,<token>,<repeat>,<choice>
    FEATURE = "feature"  # [feature-code]: feature,<code>,<argument>
    LISTENER = "listener"  # a listener's leg the service originated
    SNOOP = "snoop"  # a supervision's snoop channel: snoop,<token>


class CallerArgs(NamedTuple):
    number: str  # the number dialled (the line's), digits only: the dialplan normalised it
    token: str | None  # the caller's pseudonymous token; None for a withheld number
    repeat: int  # their arrivals within the key period
    choice: str  # what they keyed in the line's menu ("" for none)


def caller_args(args: list[str]) -> CallerArgs:
    """The caller's Stasis arguments; hand-made calls may carry fewer."""
    number = args[1] if len(args) > 1 and args[1] else "s"
    token = args[2] if len(args) > 2 and args[2] else None
    try:
        repeat = int(args[3]) if len(args) > 3 else 0
    except ValueError:
        repeat = 0
    choice = args[4] if len(args) > 4 else ""
    return CallerArgs(number, token, repeat, choice)


def endpoint_of(channel_name: str) -> str | None:
    """ "PJSIP/alice-0000002a" -> "alice": the endpoint of a PJSIP channel (for a phone's, the
    authenticated one that placed or took the call); None for any other channel."""
    tech, _, rest = channel_name.partition("/")
    if tech != "PJSIP" or "-" not in rest:
        return None
    return rest.rsplit("-", 1)[0] or None


# A caller in the holding bridge: with this role Asterisk plays them music on their own channel whenever
# the bridge has lost its music announcer (no role means idle mode "none": silence).
HOLDING_ROLE = "holding_participant"

# The bridge where a caller and their listener talk is named after the call.
TALK_SUFFIX = "-talk"


def talk_bridge_id(call_id: str) -> str:
    return f"{call_id}{TALK_SUFFIX}"


def call_of_talk_bridge(bridge_id: str) -> str | None:
    """The call a talk bridge belongs to; None for any other bridge."""
    if not bridge_id.endswith(TALK_SUFFIX) or bridge_id == TALK_SUFFIX:
        return None
    return bridge_id[: -len(TALK_SUFFIX)]


# Channel variables. The service sets these for the dialplan ...
NOTICE = "HELPLINE_NOTICE"  # the message a listener's phone plays when rung with a notice ([notice])
NOTICE_CODE = "HELPLINE_NOTICE_CODE"  # the listener code a debrief notice is about
LINE_PROMPT = "HELPLINE_LINE_PROMPT"  # a line's own recorded message ([helpline-closed], alternatives)
# ... and reads these, which the dialplan set.
CHOICE = "HELPLINE_CHOICE"  # the menu choice, read again when a caller is re-adopted after a restart
# The screen's FastAGI answer, as channel variables ([screen]).
SCREEN = "HELPLINE_SCREEN"
TOKEN = "HELPLINE_TOKEN"  # noqa: S105 - a variable name, not a secret
REPEAT = "HELPLINE_REPEAT"

# Global variables the service sets so the dialplan routes without asking it.
FEATURE_APP = "HELPLINE_FEATURE_APP"  # the application phones' feature codes go to, by default
RING_GROUP = "HELPLINE_RING_GROUP"  # every on-duty phone, for the fallback when the service is away


def app_of_number(number: str) -> str:
    return f"HELPLINE_APP_{number}"  # the application a number's callers enter


def agi_of_number(number: str) -> str:
    return f"HELPLINE_AGI_{number}"  # the screen's FastAGI address for that number


def menu_of_number(number: str) -> str:
    return f"HELPLINE_MENU_{number}"  # how many kinds of support the number's menu offers


def language_of_number(number: str) -> str:
    return f"HELPLINE_LANG_{number}"


def grace_of_app(app: str) -> str:
    # The seconds a caller entering this app's Stasis is covered for before its first keep-alive: the
    # dialplan sets the caller's absolute timeout from it, so a service that dies in between strands nobody.
    return f"HELPLINE_GRACE_{app}"


def app_of_phone(endpoint: str) -> str:
    return f"HELPLINE_PHONE_APP_{endpoint}"  # the application a phone's feature codes go to


# Lanes: requests in one lane run in order, lanes run side by side.
RECORDS_LANE = "records"
SUPERVISION_LANE = "supervision"


def call_lane(call_id: str) -> str:
    return f"call:{call_id}"


def listener_lane(listener_id: str) -> str:
    return f"listener:{listener_id}"


def channel_lane(channel_id: str) -> str:
    return f"channel:{channel_id}"


def notice_lane(listener_id: str) -> str:
    return f"notice:{listener_id}"


def alive_lane(call_id: str) -> str:
    # Its own lane: Asterisk holds a request about a channel while a prompt plays to it, and the call's
    # own work (an offer) must not wait behind the keep-alive.
    return f"alive:{call_id}"
