"""Caller tokens: E.164 normalisation, keyed tokens, key files and their rotation.

Every number here is in a range reserved for fiction (06 39 98, 01 99 00, UK 07700 900, US 555-01xx).
"""

from __future__ import annotations

import hmac
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpline_pbx.tokens import (
    PERIOD_EPOCH,
    KeyRing,
    KeyRingError,
    caller_token,
    normalise_e164,
)

NUMBER = "+33639981234"
OTHER = "+33639981235"
# 2024-11-05 falls in the 30-day period that starts on 2024-10-27 (PERIOD_EPOCH + 300 days).
NOW = datetime(2024, 11, 5, 12, 0, tzinfo=UTC)
PERIOD_START = datetime(2024, 10, 27, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def ring(keys_dir: Path, clock: Clock) -> KeyRing:
    return KeyRing(keys_dir, period_days=30, overlap_days=2, clock=clock)


@pytest.fixture
def open_umask() -> Iterator[None]:
    # Key files must be private whatever the umask of the process that creates them.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# --- normalise_e164 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+33639981234",
        "+33 6 39 98 12 34",
        "0033639981234",
        "00 33 6 39 98 12 34",
        "0639981234",
        "06 39 98 12 34",
        "06.39.98.12.34",
        "06-39-98-12-34",
        "(06) 39 98 12 34",
        "+33 (0)6 39 98 12 34",
        "+33(0)639981234",
        "33639981234",
        " 0639981234\n",
        "sip:+33639981234@trunk.example;user=phone",
        "sip:0639981234@192.0.2.1:5060",
        "SIP:0033639981234@trunk.example",
        "sips:+33639981234@trunk.example",
        "sip:+33639981234;npdi;rn=123@trunk.example",
        "sip:%2B33639981234@trunk.example",
        "<sip:0639981234@trunk.example>",
        '"Someone" <sip:+33639981234@trunk.example;user=phone>',
        "tel:+33-6-39-98-12-34;phone-context=example.org",
        "tel:0639981234",
    ],
)
def test_french_spellings_normalise_to_one_number(raw: str) -> None:
    assert normalise_e164(raw) == NUMBER


@pytest.mark.parametrize(
    ("raw", "default_country", "expected"),
    [
        ("+44 7700 900123", "33", "+447700900123"),
        ("0044 7700 900123", "33", "+447700900123"),
        ("07700 900123", "44", "+447700900123"),
        ("+44 (0)7700 900123", "33", "+447700900123"),
        ("+1 (415) 555-0100", "33", "+14155550100"),
        ("001 415 555 0100", "33", "+14155550100"),
        ("+1-415-555-0100", "1", "+14155550100"),
        ("0199001234", "33", "+33199001234"),
        ("+32 2 555 01 23", "33", "+3225550123"),
    ],
)
def test_other_countries_and_default_country(raw: str, default_country: str, expected: str) -> None:
    assert normalise_e164(raw, default_country) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "anonymous",
        "Anonymous",
        "ANONYMOUS",
        "unknown",
        "restricted",
        "private",
        "unavailable",
        "Withheld",
        "sip:anonymous@anonymous.invalid",
        '"Anonymous" <sip:anonymous@anonymous.invalid>',
        "<sip:Restricted@trunk.example>",
        "tel:unknown",
    ],
)
def test_withheld_numbers_have_no_e164(raw: str) -> None:
    assert normalise_e164(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "06 39 98 12 3x",
        "+33 6 39 98 12 34 ext 5",
        "*31#0639981234",
        "#31#0639981234",
        "++33639981234",
        "+0639981234",
        "+33_639981234",
        "٠٦٣٩٩٨١٢٣٤",  # Arabic-Indic digits: str.isdigit() says yes, E.164 says no
        "0612",
        "1234567",
        "+1234567",
        "+1234567890123456",
        "00123456789012345678",
        "0" * 300,
        "sip:@trunk.example",
    ],
)
def test_invalid_numbers_have_no_e164(raw: str) -> None:
    assert normalise_e164(raw) is None


def test_length_limits_are_eight_to_fifteen_digits() -> None:
    assert normalise_e164("+12345678") == "+12345678"
    assert normalise_e164("+123456789012345") == "+123456789012345"
    assert normalise_e164("+1234567") is None
    assert normalise_e164("+1234567890123456") is None


@pytest.mark.parametrize("country", ["", "0", "033", "1234", "x", "+33"])
def test_default_country_must_be_a_country_code(country: str) -> None:
    with pytest.raises(ValueError, match="country code"):
        normalise_e164("0639981234", country)


@given(st.text(max_size=40))
def test_normalised_numbers_are_e164_and_stable(raw: str) -> None:
    normalised = normalise_e164(raw)
    if normalised is not None:
        assert re.fullmatch(r"\+[1-9][0-9]{7,14}", normalised)
        assert normalise_e164(normalised) == normalised


@given(
    st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True),
    st.lists(st.sampled_from([" ", ".", "-", "  "]), min_size=14, max_size=14),
)
def test_separators_never_change_the_number(number: str, separators: list[str]) -> None:
    spelled = number[:2] + "".join(d + s for d, s in zip(number[2:], separators, strict=False))
    assert normalise_e164(spelled.strip(" .-")) == number


# --- KeyRing ----------------------------------------------------------------------------------------------


def test_nothing_is_written_until_a_key_is_needed(keys_dir: Path, ring: KeyRing) -> None:
    assert not keys_dir.exists()
    ring.rotate()
    assert not keys_dir.exists()


@pytest.mark.usefixtures("open_umask")
def test_key_files_are_private_and_named_by_period_start(keys_dir: Path, ring: KeyRing) -> None:
    key_id, key = ring.current()

    assert key_id == "k20241027"
    assert len(key) == 32
    path = keys_dir / "2024-10-27.key"
    assert path.read_bytes() == key
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in keys_dir.iterdir()) == ["2024-10-27.key"]


def test_an_existing_permissive_directory_is_tightened(keys_dir: Path, ring: KeyRing) -> None:
    keys_dir.mkdir(mode=0o755)
    keys_dir.chmod(0o755)
    ring.current()
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700


def test_a_readable_key_file_is_made_private_on_load(keys_dir: Path, ring: KeyRing) -> None:
    ring.current()
    path = keys_dir / "2024-10-27.key"
    path.chmod(0o644)
    ring.current()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_period_key_is_kept_and_shared_through_the_directory(
    keys_dir: Path, ring: KeyRing, clock: Clock
) -> None:
    first = ring.current()
    clock.advance(days=20)
    assert ring.current() == first
    assert KeyRing(keys_dir, clock=clock).current() == first


def test_fresh_keys_are_random(tmp_path: Path, clock: Clock) -> None:
    one = KeyRing(tmp_path / "a", clock=clock).current()
    two = KeyRing(tmp_path / "b", clock=clock).current()
    assert one[0] == two[0]
    assert one[1] != two[1]


def test_token_is_the_keyed_hmac_of_the_number(ring: KeyRing) -> None:
    key_id, key = ring.current()
    token = ring.token(NUMBER)

    expected = hmac.new(key, NUMBER.encode(), sha256).hexdigest()[:32]
    assert token == f"{key_id}-{expected}"
    assert re.fullmatch(r"k20241027-[0-9a-f]{32}", token)


def test_same_number_same_token_within_a_period(ring: KeyRing, clock: Clock) -> None:
    token = ring.token(NUMBER)
    clock.now = PERIOD_START + timedelta(days=29, hours=23)  # the last hour of the period
    assert ring.token(NUMBER) == token
    assert ring.token(OTHER) != token


def test_tokens_differ_across_periods_and_key_rings(tmp_path: Path, ring: KeyRing, clock: Clock) -> None:
    before = ring.token(NUMBER)
    assert KeyRing(tmp_path / "elsewhere", clock=clock).token(NUMBER) != before

    clock.now = PERIOD_START + timedelta(days=30)
    after = ring.token(NUMBER)

    assert after.startswith("k20241126-")
    assert after.split("-")[1] != before.split("-")[1]


def test_periods_are_aligned_on_the_epoch(keys_dir: Path) -> None:
    clock = Clock(datetime(2024, 1, 1, 0, 0, tzinfo=UTC) - timedelta(microseconds=1))
    ring = KeyRing(keys_dir, period_days=7, overlap_days=1, clock=clock)
    assert ring.current()[0] == "k20231225"
    clock.advance(microseconds=1)
    assert ring.current()[0] == "k" + PERIOD_EPOCH.strftime("%Y%m%d")


def test_clock_in_another_zone_counts_in_utc(keys_dir: Path) -> None:
    paris_morning = datetime.fromisoformat("2024-10-27T00:30:00+02:00")  # still 2024-10-26 in UTC
    ring = KeyRing(keys_dir, clock=lambda: paris_morning)
    assert ring.current()[0] == "k20240927"


def test_overlap_lookup_returns_two_tokens_then_one(ring: KeyRing, keys_dir: Path, clock: Clock) -> None:
    barred_yesterday = ring.token(NUMBER)

    clock.now = PERIOD_START + timedelta(days=30, hours=1)  # just after the rotation
    lookup = ring.tokens_for_lookup(NUMBER)
    assert lookup == (ring.token(NUMBER), barred_yesterday)

    clock.now = PERIOD_START + timedelta(days=32)  # the overlap is over, even before rotate() runs
    assert (keys_dir / "2024-10-27.key").exists()
    assert ring.tokens_for_lookup(NUMBER) == (ring.token(NUMBER),)


def test_lookup_never_creates_the_previous_key(ring: KeyRing, keys_dir: Path) -> None:
    assert ring.tokens_for_lookup(NUMBER) == (ring.token(NUMBER),)
    assert sorted(p.name for p in keys_dir.iterdir()) == ["2024-10-27.key"]


def test_without_overlap_lookup_is_one_token(keys_dir: Path, clock: Clock) -> None:
    ring = KeyRing(keys_dir, overlap_days=0, clock=clock)
    ring.token(NUMBER)
    clock.now = PERIOD_START + timedelta(days=30)
    assert len(ring.tokens_for_lookup(NUMBER)) == 1


def test_rotation_destroys_old_keys_and_then_the_previous_one(
    ring: KeyRing, keys_dir: Path, clock: Clock
) -> None:
    for period in range(3):
        clock.now = PERIOD_START + timedelta(days=30 * period)
        ring.current()
    (keys_dir / "notes.txt").write_text("not a key")
    names = sorted(p.name for p in keys_dir.iterdir())
    assert names == ["2024-10-27.key", "2024-11-26.key", "2024-12-26.key", "notes.txt"]

    clock.now = PERIOD_START + timedelta(days=60, hours=6)  # inside the overlap
    assert ring.rotate() == ["k20241027"]
    assert sorted(p.name for p in keys_dir.iterdir()) == ["2024-11-26.key", "2024-12-26.key", "notes.txt"]
    assert len(ring.tokens_for_lookup(NUMBER)) == 2

    clock.now = PERIOD_START + timedelta(days=62)  # the overlap is over
    assert ring.rotate() == ["k20241126"]
    assert sorted(p.name for p in keys_dir.iterdir()) == ["2024-12-26.key", "notes.txt"]
    assert ring.rotate() == []


def test_rotation_makes_old_tokens_unreproducible(ring: KeyRing, clock: Clock) -> None:
    old = ring.token(NUMBER)
    clock.now = PERIOD_START + timedelta(days=62)
    ring.rotate()
    clock.now = NOW  # even with the clock set back, the old key is gone for good
    assert ring.token(NUMBER) != old


def test_rotation_removes_leftover_partial_key_files(ring: KeyRing, keys_dir: Path, clock: Clock) -> None:
    ring.current()
    leftover = keys_dir / ".2024-09-27.key.0123abcd.tmp"
    leftover.write_bytes(b"x" * 32)
    ring.rotate()
    assert not leftover.exists()


@pytest.mark.parametrize("content", [b"", b"short", bytes(range(33)), bytes(range(64))])
def test_corrupt_key_file_is_a_clear_error_without_key_bytes(
    ring: KeyRing, keys_dir: Path, content: bytes
) -> None:
    keys_dir.mkdir()
    path = keys_dir / "2024-10-27.key"
    path.write_bytes(content)

    with pytest.raises(KeyRingError) as caught:
        ring.token(NUMBER)

    message = str(caught.value)
    assert str(path) in message
    assert "corrupt" in message
    for shown in (content.hex(), repr(content)[2:-1], content.decode("latin-1")):
        if len(shown) >= 4:
            assert shown not in message
    assert NUMBER not in message
    assert "39981234" not in message


def test_unusable_key_directory_is_a_key_ring_error(tmp_path: Path, clock: Clock) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeyRingError, match="Not a directory") as caught:
        KeyRing(blocker / "keys", clock=clock).current()
    assert str(blocker / "keys") in str(caught.value)


@pytest.mark.parametrize("raw", ["0639981234", "33639981234", "+33 6 39 98 12 34", "06"])
def test_token_refuses_non_e164_without_echoing_it(ring: KeyRing, raw: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164") as caught:
        ring.token(raw)
    with pytest.raises(ValueError, match=r"E\.164"):
        ring.tokens_for_lookup(raw)
    assert raw.strip() not in str(caught.value)
    assert "39981234" not in str(caught.value)


def test_naive_clock_is_refused(keys_dir: Path) -> None:
    ring = KeyRing(keys_dir, clock=lambda: datetime(2024, 11, 5, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        ring.current()


@pytest.mark.parametrize(("period", "overlap"), [(0, 0), (30, -1), (30, 30), (1, 1)])
def test_period_and_overlap_are_checked(keys_dir: Path, period: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="days"):
        KeyRing(keys_dir, period_days=period, overlap_days=overlap)


# --- caller_token -----------------------------------------------------------------------------------------


def test_caller_token_is_spelling_independent(ring: KeyRing) -> None:
    token = caller_token("06 39 98 12 34", ring)
    assert token is not None
    assert caller_token("sip:+33639981234@trunk.example", ring, "33") == token
    assert caller_token("07700 900123", ring, "44") != token


@pytest.mark.parametrize("raw", ["anonymous", "unknown", "", "restricted", "junk"])
def test_withheld_callers_get_no_token_and_touch_no_file(ring: KeyRing, keys_dir: Path, raw: str) -> None:
    assert caller_token(raw, ring) is None
    assert not keys_dir.exists()


def test_token_never_contains_the_number(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys", clock=Clock(NOW))

    @given(st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True))
    def check(number: str) -> None:
        token = ring.token(number)
        digest = token.split("-", 1)[1]
        # The key id is a date, chosen before any number is seen: the hash part is what must not leak.
        assert number[1:] not in digest
        assert number[-8:] not in digest
        assert number not in token

    check()
