"""What a waiting caller may hear, and the record the waiting room keeps of each waiting caller."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from helpline_pbx.core.estimate import Announcement
from helpline_pbx.lines.snapshots import LineSnapshot

Prompt = Literal["overloaded", "announce", "choice"]

# Sounds of our own, under helpline/ (prompts/<language>/<name>.txt); numbers are Asterisk's own.
NEXT_IN_LINE = "next-in-line"
POSITION = "position"
WAIT_UNDER_A_MINUTE = "wait-under-a-minute"
WAIT_ONE_MINUTE = "wait-one-minute"
WAIT_ABOUT = "wait-about"
MINUTES = "minutes"
KEEP_OR_ALTERNATIVES = "keep-or-alternatives"
KEEP_DIGIT = "1"
ALTERNATIVES_DIGIT = "2"


def sound(name: str) -> str:
    return f"sound:helpline/{name}"


def announcement_media(said: Announcement) -> list[str]:
    """What to play for an announcement: the place ("your call is next" for the first), then the figure."""
    media = [sound(NEXT_IN_LINE)] if said.position == 1 else [sound(POSITION), f"number:{said.position}"]
    if said.minutes == 0:
        media.append(sound(WAIT_UNDER_A_MINUTE))
    elif said.minutes == 1:
        # "number:1" would say "un", and "un minutes" is wrong: one minute has a prompt of its own.
        media.append(sound(WAIT_ONE_MINUTE))
    elif said.minutes is not None:
        media += [sound(WAIT_ABOUT), f"number:{said.minutes}", sound(MINUTES)]
    return media


@dataclass(eq=False, slots=True)
class Waiter:
    call_id: str
    channel_id: str
    line: LineSnapshot
    # Prompts due, in the order they came due; each kind at most once.
    pending: list[Prompt] = field(default_factory=list)
    # Our playback on the caller's channel, from the moment we decide to play it until it ends.
    playing: str | None = None
    playing_kind: Prompt | None = None
    playing_since: float = 0.0
    # Connected, gone or handed to the alternatives: nothing may play any more.
    hushed: bool = False
    # The playback cut short because a listener's phone started ringing for the caller.
    interrupted: str | None = None
    # The keep-or-alternatives choice has been offered: 2 now means alternatives.
    choice_open: bool = False
    last: Announcement | None = None
    prompts: int = 0
    announce_timer: asyncio.TimerHandle | None = None
    choice_timer: asyncio.TimerHandle | None = None
