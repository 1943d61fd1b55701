"""Pseudonymous caller tokens: recognise a repeat caller without ever knowing who they are.

The dialplan hands the caller's number to the service once, before Stasis; it becomes a keyed hash
(HMAC-SHA256) and the number is wiped. Keys rotate: one key per period, and a key is destroyed once its
period (plus a short overlap) is over, so tokens older than that can no longer be linked to anyone, not even
by someone who later learns the number and reads the key directory.

Periods are ``period_days`` long and aligned on ``PERIOD_EPOCH`` (2024-01-01, UTC): with 30-day periods
they start on 2024-01-01, 2024-01-31, 2024-03-01, ... Each period's key lives in ``<start date>.key``
(``2024-01-31.key``) and its key id is ``k`` followed by that date's digits (``k20240131``). Every token
carries its key id, so tokens of different periods never collide.

Several service instances that share bars must share the key directory too (or the same key files):
a token only means something under the key that made it.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from urllib.parse import unquote

PERIOD_EPOCH = date(2024, 1, 1)
KEY_BYTES = 32
TOKEN_HEX_CHARS = 32

# What carriers and Asterisk put in place of a withheld number; any other non-number is refused too,
# but these are the expected ones.
WITHHELD = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld", "blocked", "none"}
)

_MAX_RAW_CHARS = 256
_MIN_DIGITS = 8
_MAX_DIGITS = 15  # ITU-T E.164
# What people and carriers put between a number's digits.
NUMBER_SEPARATORS = re.compile(r"[\s.\-()/]")
# "+33 (0)6 ..." : the national trunk prefix some people write after the country code.
_TRUNK_ZERO = re.compile(r"^(\+|00)(\d{1,3})\s*\(0\)")
_E164 = re.compile(rf"^\+[1-9]\d{{{_MIN_DIGITS - 1},{_MAX_DIGITS - 1}}}$")
_COUNTRY_CODE = re.compile(r"^[1-9]\d{0,2}$")
_KEY_FILE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.key$")
# Partly written key files left by a crash: ".<date>.key.<random>.tmp".
_TMP_FILE = re.compile(r"^\.(\d{4})-(\d{2})-(\d{2})\.key\.[0-9a-f]+\.tmp$")
_URI_SCHEMES = ("sip:", "sips:", "tel:")


def normalise_e164(raw: str, default_country: str = "33") -> str | None:
    """The calling number in E.164 (``+33639981234``), or None when withheld or not a number.

    Accepted: ``+CC...``, ``00CC...`` (international prefix), ``0...`` (national: ``default_country``
    replaces the leading 0), bare digits (taken as international without the ``+``, the way many trunks
    send it), with spaces, dots, dashes, slashes or parentheses, and the user part of a ``sip:``,
    ``sips:`` or ``tel:`` URI (parameters stripped). Withheld and invalid numbers get None, never a
    shared placeholder: they must not all become one "person".
    """
    if not _COUNTRY_CODE.match(default_country):
        raise ValueError("default_country must be an E.164 country code: 1 to 3 digits, not starting with 0")
    if len(raw) > _MAX_RAW_CHARS:
        return None
    text = _uri_user(raw.strip())
    if text.lower() in WITHHELD:
        return None
    text = _TRUNK_ZERO.sub(r"\1\2", text)
    text = NUMBER_SEPARATORS.sub("", text)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif text.startswith("0"):
        digits = default_country + text[1:]
    else:
        digits = text
    candidate = "+" + digits
    return candidate if _E164.match(candidate) else None


def _uri_user(text: str) -> str:
    """The user part of a SIP/tel URI (``"Name" <sip:user;npdi@host;user=phone>`` → ``user``)."""
    if "<" in text and text.endswith(">"):
        text = text[text.rindex("<") + 1 : -1].strip()
    lowered = text.lower()
    for scheme in _URI_SCHEMES:
        if lowered.startswith(scheme):
            user = text[len(scheme) :].split("@", 1)[0]
            user = user.split(";", 1)[0].split(":", 1)[0]
            return unquote(user).strip()
    return text


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


class KeyRingError(Exception):
    """The key directory or one of its files cannot be used. Messages name files, never key bytes."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class KeyRing:
    """Rotating HMAC keys in files, one per period; see the module docstring for the layout.

    ``clock`` returns an aware datetime (converted to UTC); tests inject one to move time.
    Nothing touches the disk until a key is needed.
    """

    def __init__(
        self,
        directory: Path,
        *,
        period_days: int = 30,
        overlap_days: int = 2,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if period_days < 1:
            raise ValueError("period_days must be at least 1")
        if not 0 <= overlap_days < period_days:
            raise ValueError("overlap_days must be between 0 and period_days - 1")
        self._directory = directory
        self._period = timedelta(days=period_days)
        self._overlap = timedelta(days=overlap_days)
        self._clock = clock

    @property
    def directory(self) -> Path:
        return self._directory

    def current(self) -> tuple[str, bytes]:
        """The current period's (key id, key), creating the key if this period has none yet."""
        start = self._period_start(self._today())
        return _key_id(start), self._load_or_create(start)

    def token(self, number_e164: str) -> str:
        """The caller's token under the current key: ``k20240131-`` and 32 hex chars."""
        key_id, key = self.current()
        return _token(key_id, key, _checked(number_e164))

    def tokens_for_lookup(self, number_e164: str) -> tuple[str, ...]:
        """The current token, then the previous period's during the overlap (if its key still exists).

        A bar recorded just before a rotation still applies just after it.
        """
        number = _checked(number_e164)
        today = self._today()
        start = self._period_start(today)
        tokens = [_token(_key_id(start), self._load_or_create(start), number)]
        if today < start + self._overlap:
            previous = start - self._period
            key = self._load(previous)
            if key is not None:
                tokens.append(_token(_key_id(previous), key, number))
        return tuple(tokens)

    def rotate(self) -> list[str]:
        """Destroy keys older than the previous period, and the previous one once the overlap is over.

        Returns the key ids destroyed (ids are dates, not secrets). Files that are not key files are left
        alone. Call it at start-up and then periodically (daily is plenty).
        """
        if not self._directory.is_dir():
            return []
        today = self._today()
        start = self._period_start(today)
        keep_from = start - self._period if today < start + self._overlap else start
        destroyed: list[str] = []
        for path in sorted(self._directory.iterdir()):
            matched = _KEY_FILE.match(path.name) or _TMP_FILE.match(path.name)
            if matched is None:
                continue
            try:
                file_start = date(int(matched[1]), int(matched[2]), int(matched[3]))
            except ValueError:
                continue
            if file_start < keep_from:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue  # another instance rotated first
                except OSError as exc:
                    raise KeyRingError(f"cannot delete key file {path}: {exc.strerror}") from None
                if _KEY_FILE.match(path.name):
                    destroyed.append(_key_id(file_start))
        return destroyed

    def _today(self) -> date:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the key ring's clock must return an aware datetime")
        return now.astimezone(UTC).date()

    def _period_start(self, day: date) -> date:
        periods = (day - PERIOD_EPOCH).days // self._period.days
        return PERIOD_EPOCH + periods * self._period

    def _path(self, start: date) -> Path:
        return self._directory / f"{start.isoformat()}.key"

    def _load(self, start: date) -> bytes | None:
        path = self._path(start)
        try:
            with path.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                key = handle.read(KEY_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyRingError(f"cannot read key file {path}: {exc.strerror}") from None
        if len(key) != KEY_BYTES:
            raise KeyRingError(
                f"key file {path} is corrupt: expected exactly {KEY_BYTES} bytes; "
                "delete it to start a new key (tokens of this period will change)"
            )
        if stat.S_IMODE(mode) & 0o077:
            # A key others could read makes every token of its period reversible by brute force.
            try:
                path.chmod(0o600)
            except OSError as exc:
                raise KeyRingError(f"key file {path} is readable by others: {exc.strerror}") from None
        return key

    def _load_or_create(self, start: date) -> bytes:
        key = self._load(start)
        if key is not None:
            return key
        self._ensure_directory()
        path = self._path(start)
        tmp = self._directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                os.write(fd, secrets.token_bytes(KEY_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            # link() never overwrites: if another instance created this period's key first, both use
            # that one, and nobody keeps a key that was replaced under it.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        except OSError as exc:
            raise KeyRingError(f"cannot create key file {path}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
        key = self._load(start)
        if key is None:
            raise KeyRingError(f"key file {path} vanished right after it was created")
        return key

    def _ensure_directory(self) -> None:
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self._directory.stat().st_mode) != 0o700:
                self._directory.chmod(0o700)
        except OSError as exc:
            raise KeyRingError(f"cannot prepare key directory {self._directory}: {exc.strerror}") from None


def caller_token(raw_number: str, keyring: KeyRing, default_country: str = "33") -> str | None:
    """The token for a raw calling number, or None when the number is withheld or invalid."""
    number = normalise_e164(raw_number, default_country)
    return None if number is None else keyring.token(number)


def _key_id(start: date) -> str:
    return "k" + start.strftime("%Y%m%d")


def _checked(number: str) -> str:
    if not _E164.match(number):
        # Never echo the argument: it may be a real number in some other spelling.
        raise ValueError("not an E.164 number; normalise it with normalise_e164() first")
    return number


def _token(key_id: str, key: bytes, number: str) -> str:
    digest = hmac.new(key, number.encode("ascii"), sha256).hexdigest()
    return f"{key_id}-{digest[:TOKEN_HEX_CHARS]}"
