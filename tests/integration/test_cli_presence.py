"""The `helpline-pbx` presence and debrief commands against a real SQLite roster."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpline_pbx.cli import main
from helpline_pbx.roster.database import make_engine
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.snapshots import ListenerSnapshot


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'roster.db'}"
    monkeypatch.setenv("HELPLINE_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    return url


def _listener(url: str, ref: str) -> ListenerSnapshot:
    async def get() -> ListenerSnapshot:
        engine = make_engine(url)
        try:
            return await Roster(engine).get_listener(ref)
        finally:
            await engine.dispose()

    return asyncio.run(get())


def _request_debrief(url: str, listener_id: str, call_id: str) -> None:
    async def request() -> None:
        engine = make_engine(url)
        try:
            await Debriefs(engine).request(listener_id, call_id, datetime.now(UTC))
        finally:
            await engine.dispose()

    asyncio.run(request())


def test_presence_from_the_cli(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """login, pause with a reason, resume and logout write the listener's presence; show prints it."""
    assert main(["listeners", "add", "Camille"]) == 0
    added = re.search(r"SIP password: (\S+)", capsys.readouterr().out)
    assert added is not None
    password = added[1]
    assert _listener(db, "camille").presence.value == "off"

    assert main(["listeners", "login", "camille"]) == 0
    assert "on duty" in capsys.readouterr().out
    on = _listener(db, "camille")
    assert on.presence.value == "on"
    assert on.shift_started_at is not None

    assert main(["listeners", "pause", "camille", "--reason", "formation"]) == 0
    assert "paused (formation)" in capsys.readouterr().out
    paused = _listener(db, "camille")
    assert (paused.presence.value, paused.presence_reason) == ("paused", "formation")

    assert main(["listeners", "show", "camille"]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"presence:\s+paused \(formation\)", shown)
    assert re.search(r"state:\s+offline", shown)
    assert re.search(rf"code:\s+{paused.code}\b", shown)
    assert re.search(r"trainee:\s+no", shown)
    # The SIP password is never shown again after creation.
    assert password not in shown

    assert main(["listeners", "resume", paused.code or ""]) == 0
    assert _listener(db, "camille").presence.value == "on"
    assert main(["listeners", "logout", "camille"]) == 0
    off = _listener(db, "camille")
    assert (off.presence.value, off.shift_started_at) == ("off", None)


def test_training_and_consent_are_edited_and_shown(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--trainee/--consent set both flags, --no-trainee/--no-consent clear them, and show says so."""
    assert main(["listeners", "add", "Sam"]) == 0
    assert main(["listeners", "edit", "sam", "--trainee", "--consent"]) == 0
    capsys.readouterr()
    assert main(["listeners", "show", "sam"]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"trainee:\s+yes", shown)
    assert re.search(r"consent:\s+yes", shown)
    assert main(["listeners", "edit", "sam", "--no-trainee", "--no-consent"]) == 0
    sam = _listener(db, "sam")
    assert (sam.trainee, sam.monitoring_consent) == (False, False)
    # Leaving the flags out changes neither.
    assert main(["listeners", "edit", "sam", "--trainee"]) == 0
    sam = _listener(db, "sam")
    assert (sam.trainee, sam.monitoring_consent) == (True, False)


def test_debriefs_are_listed_and_handled(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Open requests are listed with the listener's pseudonym and code until `debriefs handle` closes them."""
    assert main(["listeners", "add", "Camille"]) == 0
    camille = _listener(db, "camille")
    _request_debrief(db, camille.id, "helpline-call-1")
    capsys.readouterr()

    assert main(["debriefs", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Camille" in listing
    assert f" {camille.code} " in listing
    assert "helpline-call-1" in listing

    assert main(["debriefs", "handle", "camille"]) == 0
    assert "1 debrief request of camille handled" in capsys.readouterr().out
    assert main(["debriefs", "list"]) == 0
    assert "Camille" not in capsys.readouterr().out


def test_bad_input_gets_a_clear_error(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown listeners, an empty pause reason and nothing to handle are refused on stderr, exit 1."""
    assert main(["listeners", "add", "Camille"]) == 0
    capsys.readouterr()
    assert main(["listeners", "login", "nobody"]) == 1
    assert "nobody" in capsys.readouterr().err
    assert main(["listeners", "show", "nobody"]) == 1
    assert capsys.readouterr().err.startswith("helpline-pbx: ")
    assert main(["listeners", "pause", "camille", "--reason", "  "]) == 1
    assert "reason" in capsys.readouterr().err
    assert main(["listeners", "pause", "camille", "--reason", "x" * 201]) == 1
    assert "200" in capsys.readouterr().err
    assert _listener(db, "camille").presence.value == "off"
    assert main(["debriefs", "handle", "camille"]) == 1
    assert "no open debrief" in capsys.readouterr().err
    assert main(["debriefs", "handle", "nobody"]) == 1
    assert "nobody" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["listeners", "edit", "camille", "--trainee", "--no-trainee"])


def test_the_supervision_audit_is_listed(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`supervisions list` says who supervised whose call, how and when, by pseudonym."""
    from helpline_pbx.roster.supervisions import Supervisions

    assert main(["listeners", "add", "Camille"]) == 0
    assert main(["listeners", "add", "Sandra", "--role", "supervisor"]) == 0
    camille, sandra = _listener(db, "camille"), _listener(db, "sandra")

    async def record() -> None:
        engine = make_engine(db)
        try:
            await Supervisions(engine).start(
                sandra.id, camille.id, "helpline-call-7", "coach", datetime.now(UTC)
            )
        finally:
            await engine.dispose()

    asyncio.run(record())
    capsys.readouterr()
    assert main(["supervisions", "list"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "helpline-call-7" in line]
    assert re.search(r"ongoing\s+coach\s+Sandra\s+Camille\s+helpline-call-7", row)


def test_show_says_what_consent_allows(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Without consent, show says supervisors may not listen in (not that they may); with it, that they may."""
    assert main(["listeners", "add", "Noa"]) == 0
    capsys.readouterr()
    assert main(["listeners", "show", "noa"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "consent:" in x)
    assert re.search(r"consent:\s+no \(supervisors may not listen in to their calls\)$", line), line
    assert main(["listeners", "edit", "noa", "--consent"]) == 0
    capsys.readouterr()
    assert main(["listeners", "show", "noa"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "consent:" in x)
    assert re.search(r"consent:\s+yes \(supervisors may listen in, coach or join\)$", line), line
