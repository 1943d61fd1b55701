"""Listening lines on both backends: administration, lookup by number, validation, the migration, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from helpline_pbx.hours import OpeningHours, TimeRange
from helpline_pbx.lines import cli as lines_cli
from helpline_pbx.lines.errors import DuplicateLine, DuplicateNumber, InvalidHours, InvalidLine, LineNotFound
from helpline_pbx.lines.repository import Lines
from helpline_pbx.lines.snapshots import UNSET, LineMessages, LineSnapshot
from helpline_pbx.lines.validators import normalize_number, parse_hours
from helpline_pbx.roster.database import alembic_config, make_engine, upgrade
from helpline_pbx.roster.errors import RosterError
from helpline_pbx.roster.tables import Base

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LINE_TABLES = ("line_numbers", "lines")


@pytest.fixture
async def lines(engine: AsyncEngine, backend: str) -> Lines:
    if backend == "postgres":
        # The shared fixture empties the tables it knew of when it was imported, which may predate these.
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(LINE_TABLES)}"))
    return Lines(engine)


async def add_jeunes(lines: Lines, **changes: object) -> LineSnapshot:
    fields: dict[str, object] = {
        "label": "Écoute Jeunes",
        "numbers": ["0800123456"],
        "audience": "young people: bullying, identity, anxiety",
        "support": ["psychological", "social"],
        "skills": ["harcelement"],
        "hours": parse_hours("mon-fri 09:00-21:00; sat 10:00-18:00", "2026-12-25 closed"),
        "now": NOW,
    }
    fields.update(changes)
    return await lines.add("jeunes", **fields)  # type: ignore[arg-type]


# Administration


async def test_added_line_is_found_by_id_name_or_number(lines: Lines) -> None:
    line = await lines.add(
        "jeunes",
        label="Écoute Jeunes",
        numbers=["0800 12 34 56", "+33 800 123 457"],
        audience="young people: bullying, identity, anxiety",
        support=["Psychological", "social", "psychological"],
        skills=["harcelement"],
        hours=parse_hours("mon-fri 09:00-21:00; sat 20:00-02:00", "2026-12-25 closed"),
        ring_timeout=25,
        now=NOW,
    )
    assert re.fullmatch(r"ln-[0-9a-f]{8}", line.id)
    assert line.name == "jeunes"
    assert line.numbers == ("0800123456", "33800123457")
    assert line.support == ("psychological", "social")
    assert line.skills == ("harcelement",)
    assert line.language == "fr"
    assert line.timezone == "Europe/Paris"
    assert line.ring_timeout == 25
    assert line.active is True
    assert line.created_at == NOW
    assert line.updated_at == NOW
    assert line.hours.weekly[5] == (TimeRange(20 * 60, 2 * 60),)
    assert line.hours.ranges_on(date(2026, 12, 25)) == ()
    for ref in (line.id, "jeunes", "0800123456", "+33 8 00 12 34 57"):
        assert await lines.get(ref) == line
    assert await lines.line_for_number("33800123457") == line


async def test_defaults_are_open_always_in_paris_with_standard_messages(lines: Lines) -> None:
    line = await lines.add("adultes", label="Écoute Adultes")
    assert line.numbers == ()
    assert line.hours == OpeningHours()
    assert line.hours.is_always_open_weekly()
    assert line.timezone == "Europe/Paris"
    assert line.messages == LineMessages("closed", "overloaded", "alternatives")
    assert line.ring_timeout is None
    assert line.audience == ""
    assert line.support == ()


async def test_hours_and_messages_survive_the_database(lines: Lines) -> None:
    hours = OpeningHours.parse(
        "mon-thu 09:00-12:00,14:00-18:00; fri 20:00-02:00; sat-sun closed",
        ["2026-12-24 09:00-14:00", "2026-12-25 closed"],
        timezone="America/Montreal",
    )
    messages = LineMessages(closed="jeunes/closed", overloaded="jeunes/busy", alternatives="alternatives-fr")
    added = await lines.add("quebec", label="Écoute Québec", hours=hours, messages=messages, language="fr-CA")
    stored = await lines.get("quebec")
    assert stored.hours == hours
    assert stored.messages == messages
    assert stored.language == "fr-CA"
    assert stored == added


async def test_snapshots_are_frozen(lines: Lines) -> None:
    line = await lines.add("jeunes", label="Écoute Jeunes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.name = "other"  # type: ignore[misc]


async def test_list_orders_by_name_and_filters_inactive(lines: Lines) -> None:
    await lines.add("vif", label="Écoute VIF", numbers=["0800000111"], active=False)
    await lines.add("adultes", label="Écoute Adultes", numbers=["0800000222"])
    await lines.add("jeunes", label="Écoute Jeunes", numbers=["0800000333", "0800000334"])
    assert [line.name for line in await lines.list()] == ["adultes", "jeunes", "vif"]
    assert [line.name for line in await lines.list(active_only=True)] == ["adultes", "jeunes"]
    assert (await lines.list())[1].numbers == ("0800000333", "0800000334")


async def test_ids_never_look_like_phone_numbers(lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(["12345678", "0a123456", "ab12cd34"])
    monkeypatch.setattr("helpline_pbx.lines.repository.secrets.token_hex", lambda _n: next(draws))
    line = await lines.add("jeunes", label="Écoute Jeunes")
    assert line.id == "ln-ab12cd34"


# Lookup by number


async def test_line_for_number_normalizes_and_never_raises(lines: Lines) -> None:
    line = await lines.add("jeunes", label="Écoute Jeunes", numbers=["33800123456"], active=False)
    found = await lines.line_for_number("+33 8.00-12-34-56")
    assert found is not None
    assert found.id == line.id
    # Inactive lines are still returned: the call path decides what an inactive line plays.
    assert found.active is False
    assert await lines.line_for_number("0800999999") is None
    assert await lines.line_for_number("anonymous") is None
    assert await lines.line_for_number("") is None


@pytest.mark.parametrize("bad", ["12", "0800abc", "+", "1234567890123456", "08 00 ; 12"])
def test_numbers_must_be_3_to_15_digits(bad: str) -> None:
    with pytest.raises(InvalidLine) as caught:
        normalize_number(bad)
    assert bad in str(caught.value)


# Duplicates and validation


async def test_duplicate_name_is_refused(lines: Lines) -> None:
    await add_jeunes(lines)
    with pytest.raises(DuplicateLine) as caught:
        await lines.add("jeunes", label="Autre", numbers=["0800000001"])
    assert caught.value.code == "line_duplicate"
    assert [line.name for line in await lines.list()] == ["jeunes"]
    assert await lines.line_for_number("0800000001") is None


async def test_a_number_reaches_one_line_only(lines: Lines) -> None:
    await add_jeunes(lines)
    with pytest.raises(DuplicateNumber) as caught:
        await lines.add("adultes", label="Écoute Adultes", numbers=["0800000002", "08 00 12 34 56"])
    assert caught.value.code == "line_number_duplicate"
    assert "jeunes" in str(caught.value)
    assert isinstance(caught.value, DuplicateLine)
    assert [line.name for line in await lines.list()] == ["jeunes"]
    assert await lines.line_for_number("0800000002") is None


async def test_concurrent_adds_of_one_number_let_exactly_one_win(lines: Lines) -> None:
    results = await asyncio.gather(
        *(lines.add(f"line-{i}", label=f"Ligne {i}", numbers=["0800555000"]) for i in range(4)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, DuplicateLine) for r in losers), losers
    found = await lines.line_for_number("0800555000")
    assert found is not None
    assert found.id == winners[0].id
    assert len(await lines.list()) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Jeunes"),
        ("name", "0800"),
        ("name", "a" * 33),
        ("name", "jeunes adultes"),
        ("label", "  "),
        ("label", "x" * 65),
        ("support", ["aide psychologique"]),
        ("skills", ["harcèlement"]),
        ("language", "french"),
        ("language", "F"),
        ("ring_timeout", 0),
        ("ring_timeout", 3600),
        ("numbers", ["0800-AIDE"]),
        ("messages", LineMessages(closed="../etc/passwd")),
        ("audience", "line\nbreak"),
    ],
)
async def test_invalid_fields_are_refused_and_nothing_is_stored(
    lines: Lines, field: str, value: object
) -> None:
    fields: dict[str, object] = {"name": "jeunes", "label": "Écoute Jeunes", field: value}
    name = fields.pop("name")
    with pytest.raises(InvalidLine) as caught:
        await lines.add(name, **fields)  # type: ignore[arg-type]
    assert caught.value.code == "line_invalid"
    assert isinstance(caught.value, RosterError)
    assert await lines.list() == []


async def test_invalid_hours_have_their_own_code(lines: Lines) -> None:
    with pytest.raises(InvalidHours) as caught:
        await lines.add("jeunes", label="Écoute Jeunes", hours="mon-fri 9h-21h")
    assert caught.value.code == "line_hours_invalid"
    assert "mon-fri 9h-21h" in str(caught.value)
    with pytest.raises(InvalidHours):
        parse_hours("24/7", timezone="Europe/Pariss")
    assert await lines.list() == []


# Edits


async def test_edit_changes_only_what_is_given(lines: Lines) -> None:
    line = await add_jeunes(lines, ring_timeout=30)
    later = NOW + timedelta(hours=1)
    edited = await lines.edit(
        "jeunes",
        name="jeunes-vif",
        label="Écoute Jeunes VIF",
        audience="young people: violence in the family",
        support=["legal"],
        skills=[],
        language="fr-BE",
        now=later,
    )
    assert edited.id == line.id
    assert (edited.name, edited.label, edited.language) == ("jeunes-vif", "Écoute Jeunes VIF", "fr-BE")
    assert edited.support == ("legal",)
    assert edited.skills == ()
    assert edited.numbers == ("0800123456",)
    assert edited.hours == line.hours
    assert edited.ring_timeout == 30
    assert edited.updated_at == later
    assert edited.created_at == NOW
    assert await lines.get("jeunes-vif") == edited
    with pytest.raises(LineNotFound):
        await lines.get("jeunes")


async def test_edit_numbers_hours_messages_and_ring_timeout(lines: Lines) -> None:
    await add_jeunes(lines, ring_timeout=30)
    edited = await lines.edit(
        "0800123456",
        add_numbers=["0800123457", "+33 800 123 458"],
        remove_numbers=["0800 123 456"],
        hours=lambda hours: hours.with_exception(date(2026, 12, 24), [TimeRange(9 * 60, 14 * 60)]),
        messages=lambda messages: dataclasses.replace(messages, closed="jeunes/closed"),
        ring_timeout=None,
    )
    assert edited.numbers == ("0800123457", "33800123458")
    assert edited.hours.ranges_on(date(2026, 12, 24)) == (TimeRange(540, 840),)
    assert edited.hours.ranges_on(date(2026, 12, 25)) == ()
    assert edited.messages == LineMessages(closed="jeunes/closed")
    assert edited.ring_timeout is None
    assert await lines.line_for_number("0800123456") is None
    assert await lines.get("jeunes") == edited

    replaced = await lines.edit("jeunes", numbers=["0800000001"], hours=OpeningHours(), ring_timeout=UNSET)
    assert replaced.numbers == ("0800000001",)
    assert replaced.hours.is_always_open_weekly()
    assert replaced.ring_timeout is None


async def test_a_number_can_move_to_another_line(lines: Lines) -> None:
    await add_jeunes(lines)
    adultes = await lines.add("adultes", label="Écoute Adultes")
    with pytest.raises(DuplicateNumber):
        await lines.edit("adultes", add_numbers=["0800123456"])
    await lines.edit("jeunes", remove_numbers=["0800123456"])
    await lines.edit("adultes", add_numbers=["0800123456"])
    found = await lines.line_for_number("0800123456")
    assert found is not None
    assert found.id == adultes.id


async def test_a_failed_edit_changes_nothing(lines: Lines) -> None:
    before = await add_jeunes(lines)
    await lines.add("adultes", label="Écoute Adultes", numbers=["0800000009"])
    with pytest.raises(DuplicateNumber):
        await lines.edit("jeunes", label="Changed", add_numbers=["0800000009"])
    with pytest.raises(InvalidLine):
        await lines.edit("jeunes", label="Changed", remove_numbers=["0800000777"])
    with pytest.raises(InvalidHours):
        await lines.edit("jeunes", label="Changed", hours=lambda hours: hours.in_zone("Nowhere/Atlantis"))
    with pytest.raises(InvalidLine):
        await lines.edit("jeunes", label="Changed", messages=LineMessages(overloaded="no spaces"))
    with pytest.raises(DuplicateLine):
        await lines.edit("jeunes", label="Changed", name="adultes")
    assert await lines.get("jeunes") == before


async def test_unknown_lines_raise_not_found(lines: Lines) -> None:
    for call in (
        lines.get("nowhere"),
        lines.edit("nowhere", label="x"),
        lines.remove("nowhere"),
        lines.get("0800000000"),
    ):
        with pytest.raises(LineNotFound) as caught:
            await call
        assert caught.value.code == "line_not_found"


async def test_remove_frees_the_numbers(lines: Lines) -> None:
    line = await add_jeunes(lines)
    removed = await lines.remove("jeunes")
    assert removed == line
    assert await lines.list() == []
    assert await lines.line_for_number("0800123456") is None
    again = await lines.add("jeunes", label="Écoute Jeunes", numbers=["0800123456"])
    assert again.id != removed.id


async def test_version_changes_on_every_change_and_only_then(lines: Lines) -> None:
    empty = await lines.version()
    assert (empty.count, empty.last_change) == (0, None)
    await add_jeunes(lines)
    added = await lines.version()
    assert added == (await lines.version())
    assert (added.count, added.last_change) == (1, NOW)
    await lines.get("jeunes")
    await lines.line_for_number("0800123456")
    await lines.edit("jeunes", label="Écoute Jeunes", now=NOW + timedelta(minutes=1))  # no change
    assert await lines.version() == added
    await lines.edit("jeunes", add_numbers=["0800123499"], now=NOW + timedelta(minutes=2))
    numbered = await lines.version()
    assert numbered.last_change == NOW + timedelta(minutes=2)
    await lines.add("adultes", label="Écoute Adultes", now=NOW + timedelta(minutes=3))
    await lines.remove("adultes")
    removed = await lines.version()
    assert removed.count == 1
    assert removed != added


# The migration


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _downgrade_to(connection: Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_migration_builds_the_lines_schema_and_reverts(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            assert set(LINE_TABLES) <= await connection.run_sync(_tables)
            assert await connection.run_sync(_drift) == []
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to, empty_database_url, "0002")
        async with engine.connect() as connection:
            assert not set(LINE_TABLES) & await connection.run_sync(_tables)
    finally:
        await engine.dispose()
    await upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        assert await Lines(engine).list() == []
    finally:
        await engine.dispose()


# The CLI


@pytest.fixture
def cli(lines: Lines, database_url: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    monkeypatch.setenv("HELPLINE_DATABASE_URL", database_url)
    parser = argparse.ArgumentParser(prog="helpline-pbx")
    lines_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


async def run_cli(parser: argparse.ArgumentParser, *argv: str) -> int:
    return await lines_cli.run(parser.parse_args(["lines", *argv]))


async def test_line_lifecycle_from_the_cli(
    cli: argparse.ArgumentParser, lines: Lines, capsys: pytest.CaptureFixture[str]
) -> None:
    added = await run_cli(
        cli,
        "add", "jeunes",
        "--number", "0800123456", "--number", "0800123457",
        "--label", "Écoute Jeunes",
        "--audience", "young people: bullying, identity, anxiety",
        "--support", "psychological", "--support", "social",
        "--language", "fr",
        "--skill", "harcelement",
        "--hours", "mon-fri 09:00-21:00; sat 10:00-18:00",
        "--closed-on", "2026-12-25",
        "--hours-on", "2026-12-24 09:00-14:00",
        "--timezone", "Europe/Paris",
        "--ring-timeout", "25",
    )  # fmt: skip
    assert added == 0
    assert "du lundi au vendredi : 9 h–21 h" in capsys.readouterr().out
    line = await lines.get("jeunes")
    assert line.numbers == ("0800123456", "0800123457")
    assert line.hours == OpeningHours.parse(
        "mon-fri 09:00-21:00; sat 10:00-18:00", "2026-12-25 closed; 2026-12-24 09:00-14:00"
    )
    assert line.ring_timeout == 25

    assert await run_cli(cli, "list") == 0
    listing = capsys.readouterr().out
    assert re.search(r"^jeunes\s+ln-\w+\s+Écoute Jeunes\s+fr\s+0800123456, 0800123457", listing, re.M)

    assert await run_cli(cli, "show", "0800123457") == 0
    shown = capsys.readouterr().out
    assert "samedi : 10 h–18 h ; dimanche : fermé" in shown
    assert "2026-12-24 09:00-14:00; 2026-12-25 closed" in shown
    assert re.search(r"now:\s+(open|closed until \d{4}-\d\d-\d\d \d\d:\d\d CES?T)$", shown, re.M)

    edited = await run_cli(
        cli,
        "edit", "jeunes",
        "--hours", "24/7",
        "--open-on", "2026-12-25",
        "--remove-number", "0800123457",
        "--closed-message", "jeunes/closed",
        "--no-ring-timeout",
        "--no-skill",
        "--deactivate",
    )  # fmt: skip
    assert edited == 0
    line = await lines.get("jeunes")
    assert line.hours == OpeningHours.parse("24/7", "2026-12-24 09:00-14:00")
    assert line.numbers == ("0800123456",)
    assert line.messages == LineMessages(closed="jeunes/closed")
    assert line.ring_timeout is None
    assert line.skills == ()
    assert line.support == ("psychological", "social")
    assert line.active is False
    capsys.readouterr()
    assert await run_cli(cli, "show", "jeunes") == 0
    assert re.search(r"now:\s+inactive$", capsys.readouterr().out, re.M)

    assert await run_cli(cli, "remove", "jeunes") == 0
    assert await lines.list() == []


async def test_show_says_open_or_when_it_reopens(
    cli: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(cli, "add", "always", "--label", "Toujours") == 0
    assert await run_cli(cli, "add", "never", "--label", "Jamais", "--hours", "mon closed") == 0
    capsys.readouterr()
    assert await run_cli(cli, "show", "always") == 0
    assert re.search(r"now:\s+open$", capsys.readouterr().out, re.M)
    assert await run_cli(cli, "show", "never") == 0
    assert re.search(r"now:\s+closed, no opening ahead$", capsys.readouterr().out, re.M)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["add", "autre", "--label", "Autre", "--number", "0800123456"], "0800123456"),
        (["add", "jeunes", "--label", "Autre"], "jeunes"),
        (["add", "autre", "--label", "Autre", "--hours", "mon-fri 9-21"], "mon-fri 9-21"),
        (["add", "autre", "--label", "Autre", "--closed-on", "25/12/2026"], "25/12/2026"),
        (["add", "autre", "--label", "Autre", "--timezone", "Paris"], "Paris"),
        (["add", "autre", "--label", "Autre", "--skill", "harcèlement"], "harcèlement"),
        (
            [
                "edit",
                "jeunes",
                "--label",
                "Changed",
                "--add-number",
                "0800999999",
                "--hours",
                "sun 25:00-26:00",
            ],
            "25:00",
        ),
        (["edit", "jeunes", "--label", "Changed", "--remove-number", "0800000000"], "0800000000"),
        (["edit", "jeunes", "--label", "Changed", "--ring-timeout", "1"], "ring timeout"),
        (["edit", "nowhere", "--label", "Changed"], "nowhere"),
        (["show", "nowhere"], "nowhere"),
        (["remove", "nowhere"], "nowhere"),
    ],
)
async def test_cli_errors_are_one_line_and_change_nothing(
    cli: argparse.ArgumentParser,
    lines: Lines,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    fragment: str,
) -> None:
    assert await run_cli(cli, "add", "jeunes", "--label", "Écoute Jeunes", "--number", "0800123456") == 0
    before = await lines.list()
    capsys.readouterr()

    assert await run_cli(cli, *argv) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("helpline-pbx: ")
    assert captured.err.count("\n") == 1
    assert fragment in captured.err
    assert await lines.list() == before


async def test_waiting_rest_and_practice_settings_from_the_cli(
    cli: argparse.ArgumentParser, lines: Lines, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(
        cli,
        "add", "adultes",
        "--label", "Écoute Adultes",
        "--rest-after-call", "120",
        "--announce-every", "60",
        "--choice-after", "180",
        "--max-wait", "900",
    ) == 0  # fmt: skip
    line = await lines.get("adultes")
    assert (line.rest_after_call, line.announce_every, line.choice_after, line.max_wait) == (
        120,
        60,
        180,
        900,
    )
    assert not line.practice
    assert await run_cli(cli, "edit", "adultes", "--no-announce-every", "--max-wait", "600") == 0
    line = await lines.get("adultes")
    assert (line.announce_every, line.max_wait, line.choice_after) == (None, 600, 180)
    assert await run_cli(cli, "add", "formation", "--label", "Mise en situation", "--practice") == 0
    assert (await lines.get("formation")).practice
    capsys.readouterr()
    assert await run_cli(cli, "show", "formation") == 0
    assert "trainees only" in capsys.readouterr().out
    # Out of bounds: a clear error, nothing changed.
    assert await run_cli(cli, "edit", "adultes", "--announce-every", "5") == 1
    assert "announce every must be 15 to 3600 seconds" in capsys.readouterr().err
    assert (await lines.get("adultes")).announce_every is None
