"""The `helpline-pbx` command against a real SQLite roster: listeners, migrations, settings checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpline_pbx.cli import main


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'roster.db'}"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    return url


def test_listener_lifecycle_from_the_cli(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["listeners", "add", "Élodie", "--role", "professional"]) == 0
    added = capsys.readouterr().out
    endpoint = re.search(r"SIP user: (\S+)", added)
    password = re.search(r"SIP password: (\S+)", added)
    assert endpoint is not None
    assert endpoint.group(1) == "elodie"
    assert password is not None
    assert len(password.group(1)) >= 24

    assert main(["listeners", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Élodie" in listing
    assert "professional" in listing
    # The password is shown once, at creation, never in a listing.
    assert password.group(1) not in listing

    assert main(["listeners", "edit", "elodie", "--role", "volunteer", "--deactivate"]) == 0
    capsys.readouterr()
    assert main(["listeners", "list", "--active"]) == 0
    assert "Élodie" not in capsys.readouterr().out

    assert main(["listeners", "edit", "elodie", "--new-password"]) == 0
    renewed = re.search(r"new SIP password: (\S+)", capsys.readouterr().out)
    assert renewed is not None
    assert renewed.group(1) != password.group(1)

    assert main(["listeners", "remove", "elodie"]) == 0
    capsys.readouterr()
    assert main(["listeners", "list"]) == 0
    assert "Élodie" not in capsys.readouterr().out


def test_bad_input_gets_a_clear_error_and_changes_nothing(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["listeners", "add", "Sam"]) == 0
    assert main(["listeners", "add", "Sam"]) == 1
    assert "Sam" in capsys.readouterr().err
    assert main(["listeners", "remove", "nobody"]) == 1
    assert "nobody" in capsys.readouterr().err
    assert main(["listeners", "add", "Bad", "--endpoint", "no spaces allowed"]) == 1
    assert capsys.readouterr().err.startswith("helpline-pbx: ")
    assert main(["listeners", "list"]) == 0
    assert capsys.readouterr().out.count("\nl-") == 1


@pytest.mark.parametrize(
    ("password", "why"),
    [("", "empty"), ("asterisk", "default"), ("short-one", "shorter")],
)
def test_check_refuses_sample_or_short_secrets(
    password: str,
    why: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_file = tmp_path / "ari-password"
    secret_file.write_text(password + "\n", encoding="utf-8")
    monkeypatch.setenv("HELPLINE_ARI_PASSWORD_FILE", str(secret_file))
    monkeypatch.delenv("HELPLINE_ARI_PASSWORD", raising=False)
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "HELPLINE_ARI_PASSWORD_FILE" in err
    assert why in err


def test_check_names_a_missing_password_file_and_accepts_a_generated_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HELPLINE_ARI_PASSWORD", raising=False)
    monkeypatch.setenv("HELPLINE_ARI_PASSWORD_FILE", str(tmp_path / "missing"))
    assert main(["check"]) == 2
    assert "make asterisk-start" in capsys.readouterr().err
    (tmp_path / "missing").write_text("Zq8pW3nRt5yU7iO9aS2dF4gH", encoding="utf-8")
    assert main(["check"]) == 0


def test_a_broken_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELPLINE_ARI_PASSWORD", "Zq8pW3nRt5yU7iO9aS2dF4gH")
    monkeypatch.setenv("HELPLINE_RING_TIMEOUT", "soon")
    assert main(["check"]) == 2
    assert "HELPLINE_RING_TIMEOUT" in capsys.readouterr().err
