"""The leak hunt's tools: a fictitious caller identity, every spelling of it, and a hunter that searches
texts, JSON, SIP messages, files and databases for them.

A hit says WHERE (artefact, message, header, JSON path, line) and shows a redacted excerpt: the
identity itself never reaches a report, so a failing test cannot leak it into CI output either.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

# ARCEP keeps 06 39 98 00 00 - 06 39 98 99 99 for fiction: no real person can own these numbers.
FICTION_PREFIX = "063998"
# Between two digits of a number as people and systems write it: spaces, dots, dashes, escapes.
_SEPARATOR = r"(?:[\s.\-_/()]|%20|%2[eE]|\\u00a0|\u00a0){0,2}"
_EXCERPT_RADIUS = 40
_DIGIT_RUN = re.compile(r"\d(?:[\s.\-]?\d){7,}")
# Asterisk's channel unique ids (epoch seconds, a dot, a sequence) stay readable in locations.
_UNIQUEID = re.compile(r"\d{9,11}\.\d{1,9}")


@dataclass(frozen=True, repr=False)
class CallerIdentity:
    """A fictitious caller: a number in the fiction range and a name with a unique surname."""

    national: str
    first_name: str
    surname: str

    def __repr__(self) -> str:
        # Tracebacks show arguments: even a fictitious identity stays out of CI output.
        return "CallerIdentity(<redacted>)"

    def __post_init__(self) -> None:
        if not (self.national.startswith(FICTION_PREFIX) and len(self.national) == 10):
            raise ValueError("test callers must use the fiction range 06 39 98 xx xx")

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.surname}"

    @property
    def pairs(self) -> list[str]:
        """The national number in the five pairs the French write it in."""
        return [self.national[i : i + 2] for i in range(0, 10, 2)]

    @property
    def international(self) -> str:
        return "+33" + self.national[1:]

    @property
    def international_00(self) -> str:
        return "0033" + self.national[1:]

    @property
    def spaced(self) -> str:
        return " ".join(self.pairs)

    @property
    def spaced_international(self) -> str:
        return "+33 " + self.national[1] + " " + " ".join(self.pairs[1:])

    @property
    def dotted(self) -> str:
        return ".".join(self.pairs)

    def spellings(self) -> dict[str, str]:
        """Every way the number is written, by a label that names the spelling but not the number."""
        last8 = self.national[2:]
        return {
            "number (+33)": self.international,
            "number (0033)": self.international_00,
            "number (national)": self.national,
            "number (without prefix)": self.national[1:],
            "number (+33, spaced)": self.spaced_international,
            "number (national, spaced)": self.spaced,
            "number (national, dotted)": self.dotted,
            "number (last 8 digits)": last8,
            "number (last 8 digits, spaced)": " ".join(self.pairs[1:]),
            "number (last 8 digits, dotted)": ".".join(self.pairs[1:]),
        }


@dataclass(frozen=True)
class Hit:
    """One place where the identity was found."""

    where: str
    what: str
    excerpt: str

    def describe(self) -> str:
        return f"{self.where}: {self.what} in ...{self.excerpt}..."


def base64_forms(raw: bytes) -> list[str]:
    """What base64 text holds of `raw` wherever it sits in the encoded data: at each of the 3 byte
    alignments, the characters that encode only bytes of `raw` (those mixing in a neighbour's bits vary).
    Too short a form (under 8 characters) would match by chance and is left out."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw).decode("ascii")
        start, end = (4 if shift else 0), (shift + len(raw)) // 3 * 4
        if end - start >= 8:
            forms.append(encoded[start:end])
    return forms


class Needles:
    """Finds the identity in text: every spelling and encoding of the number and of the name, and any
    `extra` strings a case marks (a carrier's Call-ID, Request-URI parameters), by a label that does not
    show them."""

    def __init__(self, identity: CallerIdentity, extra: Mapping[str, str] | None = None) -> None:
        self.identity = identity
        # Most specific first: a span found by an earlier pattern is reported under its label only.
        patterns: list[tuple[str, str, int]] = [
            (label, re.escape(value), re.IGNORECASE) for label, value in identity.spellings().items()
        ]
        last8 = identity.national[2:]
        patterns.append(("number (last 8 digits, any separators)", _SEPARATOR.join(last8), re.IGNORECASE))
        for label, value in identity.spellings().items():
            if quote(value, safe="") != value:
                patterns.append((f"{label} (URL-encoded)", re.escape(quote(value, safe="")), re.IGNORECASE))
        name = identity.name
        for label, value in (
            ("name", name),
            ("name (URL-encoded)", quote(name)),
            ("name (URL-encoded, Latin-1)", quote(name.encode("latin-1", errors="replace"))),
            ("name (JSON-escaped)", json.dumps(name)[1:-1]),
            # Latin-1 bytes shown by something that decoded them as UTF-8.
            ("name (Latin-1 read as UTF-8)", name.encode("latin-1", "replace").decode("utf-8", "replace")),
            ("name (UTF-8 read as Latin-1)", name.encode().decode("latin-1")),
            ("name (surname)", identity.surname),
        ):
            patterns.append((label, re.escape(value), re.IGNORECASE))
        # Base64 is case-sensitive: matched exactly, in both alphabets (a JWT uses base64url).
        encoded: list[tuple[str, bytes]] = [(label, v.encode()) for label, v in identity.spellings().items()]
        encoded += [
            ("name", name.encode()),
            ("name (Latin-1)", name.encode("latin-1", "replace")),
            ("name (surname)", identity.surname.encode()),
        ]
        for label, raw in encoded:
            for form in base64_forms(raw):
                patterns.append((f"{label} (base64)", re.escape(form), 0))
                url = form.translate(str.maketrans("+/", "-_"))
                if url != form:
                    patterns.append((f"{label} (base64url)", re.escape(url), 0))
        for label, value in (extra or {}).items():
            patterns.append((label, re.escape(value), re.IGNORECASE))
        self._extra = set(extra or {})
        self._patterns = [(label, re.compile(regex, flags)) for label, regex, flags in patterns]

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, label) of every hit, overlapping hits reported once."""
        found: list[tuple[int, int, str]] = []
        for label, pattern in self._patterns:
            for match in pattern.finditer(text):
                start, end = match.span()
                if not any(s < end and start < e for s, e, _ in found):
                    found.append((start, end, label))
        return sorted(found)

    def redact(self, text: str) -> str:
        """The text with every hit, and any other long digit run, masked."""
        out, last = [], 0
        for start, end, label in self.spans(text):
            out.append(text[last:start])
            out.append(
                "[CARRIER]" if label in self._extra else "[NAME]" if label.startswith("name") else "[NUMBER]"
            )
            last = end
        out.append(text[last:])
        return _DIGIT_RUN.sub(_mask_digits, "".join(out))

    def excerpt(self, text: str, start: int, end: int) -> str:
        spans = self.spans(text)
        lo, hi = max(0, start - _EXCERPT_RADIUS), min(len(text), end + _EXCERPT_RADIUS)
        # Never cut through a hit: half a number would survive the redaction below.
        for s, e, _ in spans:
            if s < lo < e:
                lo = s
            if s < hi < e:
                hi = e
        window = self.redact(text[lo:hi])
        return "".join(c if c.isprintable() else "·" for c in window)


@dataclass
class LeakHunt:
    """Collects the hits of one identity across every artefact it is shown, and what it searched."""

    needles: Needles
    hits: list[Hit] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)

    def _hit(self, where: str, what: str, excerpt: str) -> Hit:
        # A location can hold the identity too: a JSON key, a file named after the number.
        return Hit(self.needles.redact(where), what, excerpt)

    # -- plain text ---------------------------------------------------------------------------

    def text(self, where: str, text: str) -> list[Hit]:
        """Search a text; hits are located by line number."""
        self.searched.append(where)
        found = []
        for start, end, label in self.needles.spans(text):
            line = text.count("\n", 0, start) + 1
            found.append(self._hit(f"{where} line {line}", label, self.needles.excerpt(text, start, end)))
        self.hits += found
        return found

    def data(self, where: str, raw: bytes) -> list[Hit]:
        """Search bytes as UTF-8 and as Latin-1 text, so either storage of the name is found."""
        self.searched.append(where)
        found: list[Hit] = []
        seen: set[tuple[int, str]] = set()
        for encoding in ("utf-8", "latin-1"):
            text = raw.decode(encoding, errors="replace")
            for start, end, label in self.needles.spans(text):
                line = text.count("\n", 0, start) + 1
                if (line, label) in seen:
                    continue
                seen.add((line, label))
                excerpt = self.needles.excerpt(text, start, end)
                found.append(self._hit(f"{where} (as {encoding}) line {line}", label, excerpt))
        self.hits += found
        return found

    # -- structured ---------------------------------------------------------------------------

    def json_value(self, where: str, value: Any) -> list[Hit]:
        """Search every key and string of a JSON value; hits are located by JSON path."""
        self.searched.append(where)
        found = []
        for path, text in _json_strings(value, "$"):
            for start, end, label in self.needles.spans(text):
                found.append(self._hit(f"{where} at {path}", label, self.needles.excerpt(text, start, end)))
        self.hits += found
        return found

    def json_lines(self, where: str, text: str) -> list[Hit]:
        """A JSON-lines log: each line by its JSON paths, or as text if it is not JSON."""
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                value = json.loads(line)
            except ValueError:
                found += self.text(f"{where} line {number} (not JSON)", line)
                continue
            event = value.get("event", "?") if isinstance(value, dict) else "?"
            found += self.json_value(f"{where} line {number} (event {event!r})", value)
        # Also the raw text: an escape the parser undid is still what was written.
        found += self.text(f"{where} (raw)", text)
        return found

    def sip_messages(self, where: str, messages: Iterable[str]) -> list[Hit]:
        """SIP messages, each hit located by message, its start line (redacted) and header."""
        found = []
        for index, message in enumerate(messages, 1):
            start_line = self.needles.redact(message.split("\r\n", 1)[0].strip())
            for start, end, label in self.needles.spans(message):
                found.append(
                    self._hit(
                        f"{where} message #{index} ({start_line}) {_sip_part(message, start)}",
                        label,
                        self.needles.excerpt(message, start, end),
                    )
                )
        self.searched.append(where)
        self.hits += found
        return found

    # -- files and databases ------------------------------------------------------------------

    def file(self, path: Path, label: str) -> list[Hit]:
        found = self.data(label, path.read_bytes())
        if _is_sqlite(path):
            found += self.sqlite_dump(path, f"{label} (SQL dump)")
        return found

    def tree(self, root: Path, label: str) -> list[Hit]:
        """Every regular file under root (symlinks are installed content, not written files)."""
        found: list[Hit] = []
        for path in sorted(_regular_files(root)):
            found += self.file(path, f"{label}/{path.relative_to(root)}")
        return found

    def sqlite_dump(self, path: Path, label: str) -> list[Hit]:
        # Read-only and immutable-free: the owner (Asterisk, the roster) may still have it open.
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            dump = "\n".join(connection.iterdump())
        finally:
            connection.close()
        return self.text(label, dump)

    def report(self, limit: int = 60) -> str:
        lines = [f"{len(self.hits)} leak(s) of the caller's identity:"]
        lines += ["  " + hit.describe() for hit in self.hits[:limit]]
        if len(self.hits) > limit:
            lines.append(f"  ... and {len(self.hits) - limit} more")
        return "\n".join(lines)


def _mask_digits(match: re.Match[str]) -> str:
    return match.group() if _UNIQUEID.fullmatch(match.group()) else "[digits]"


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path} (key)", str(key)
            yield from _json_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, f"{path}[{index}]")
    elif value is not None and not isinstance(value, bool):
        yield path, str(value)


def _sip_part(message: str, offset: int) -> str:
    head_end = message.find("\r\n\r\n")
    if head_end != -1 and offset > head_end:
        return "in the body"
    line_start = message.rfind("\r\n", 0, offset)
    if line_start == -1:
        return "in the start line"
    line_end = message.find("\r\n", offset)
    line = message[line_start + 2 : line_end if line_end != -1 else len(message)]
    return f"header {line.split(':', 1)[0].strip()!r}"


def _regular_files(root: Path) -> Iterator[Path]:
    # os.walk does not follow symlinked folders (the sound packages link theirs in).
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"
