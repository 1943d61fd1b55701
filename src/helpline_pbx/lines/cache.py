"""The lines as the switchboard holds them between polls: by number, reloaded when they change, and pushed
to the dialplan as globals (each number's menu and prompts' language).

Without any line set up every number dialled reaches the queue, and the numbers that did are the line's
own (the logs keep them: they are no caller's).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from helpline_pbx.ari.interface import Ari
from helpline_pbx.lines.repository import Lines
from helpline_pbx.lines.snapshots import LineSnapshot, LinesVersion
from helpline_pbx.protocol import language_of_number, menu_of_number

log = structlog.get_logger(__name__)

# The languages prompts/ has texts for.
PROMPT_LANGUAGES = frozenset({"fr", "en"})
# How many numbers dialled without lines the logs learn to keep (a provider routes a handful to a line).
MAX_SERVED_NUMBERS = 32


def menu_of(line: LineSnapshot | None) -> str:
    """What the dialplan asks a line's callers first: the trainee's code on a training line, the kind of
    support (1 to N) when the line offers several, else nothing."""
    if line is None:
        return ""
    if line.practice:
        return "practice"
    return str(len(line.support)) if len(line.support) > 1 else ""


class LineCache:
    def __init__(self, *, ari: Ari, lines: Lines | None) -> None:
        self._ari = ari
        self._lines = lines
        # Lines by number, refreshed when the lines change; empty means "no lines set up: serve every number".
        self.line_by_number: dict[str, LineSnapshot] = {}
        # Told the lines' numbers whenever they change (the logs keep them: they are no caller's).
        self.numbers_changed: Callable[[frozenset[str]], None] | None = None
        # Without lines every number dialled reaches the queue: those that did are the line's own.
        self._served_numbers: set[str] = set()
        self._version: LinesVersion | None = None

    def line_named(self, name: str) -> LineSnapshot | None:
        """The line a call is on, by the name the core knows it by, or by the number dialled (what a caller
        re-adopted after a restart is known by); None when no lines are set up."""
        found = next((line for line in self.line_by_number.values() if line.name == name), None)
        return found or self.line_by_number.get(name)

    def served_number(self, number: str) -> None:
        """A number dialled that reached the queue without any line set up: the line's, not a caller's.
        Bounded, so a trunk sending odd numbers cannot grow it."""
        if number in self._served_numbers or len(self._served_numbers) >= MAX_SERVED_NUMBERS:
            return
        self._served_numbers.add(number)
        self._tell_numbers()

    async def sync(self, *, force: bool) -> None:
        """Reload the lines when they changed (or when forced, after a connect: Asterisk may have lost the
        globals), and push each number's menu and language."""
        if self._lines is None:
            return
        version = await self._lines.version()
        if not force and version == self._version:
            return
        previous = set(self.line_by_number)
        self.line_by_number = {number: line for line in await self._lines.list() for number in line.numbers}
        self._version = version
        if self.line_by_number:
            self._served_numbers.clear()
        self._tell_numbers()
        # The dialplan asks a line's callers which kind of support they need when it offers several.
        for number in previous | set(self.line_by_number):
            line = self.line_by_number.get(number)
            await self._ari.set_global_variable(menu_of_number(number), menu_of(line))
            # Prompts in the line's language, where the line has them (French otherwise).
            language = line.language if line is not None and line.language in PROMPT_LANGUAGES else ""
            await self._ari.set_global_variable(language_of_number(number), language)
        log.info("lines_loaded", lines=len({line.id for line in self.line_by_number.values()}))

    def _tell_numbers(self) -> None:
        if self.numbers_changed is not None:
            self.numbers_changed(frozenset(self._served_numbers | set(self.line_by_number)))
