"""What can go wrong with a line, each with the code the CLI and the logs show."""

from __future__ import annotations

from typing import ClassVar

from helpline_pbx.roster.errors import RosterError


class LineError(RosterError):
    code: ClassVar[str] = "line_error"


class LineNotFound(LineError):
    code: ClassVar[str] = "line_not_found"


class DuplicateLine(LineError):
    code: ClassVar[str] = "line_duplicate"


class DuplicateNumber(DuplicateLine):
    code: ClassVar[str] = "line_number_duplicate"


class InvalidLine(LineError):
    code: ClassVar[str] = "line_invalid"


class InvalidHours(InvalidLine):
    code: ClassVar[str] = "line_hours_invalid"
