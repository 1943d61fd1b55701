"""Hardening on the real Asterisk: its files are its user's only, its user is its own, and a failed SIP
login is logged for fail2ban while a hostile INVITE leaves no caller identity anywhere."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.conftest import REPO, AsteriskUnderTest, _script
from tests.e2e.artefacts import LeakHunt, Needles
from tests.e2e.conftest import ServiceFactory, Sipp, add_listener, online_phone
from tests.e2e.harness import RunningService
from tests.e2e.sipp import SippProcess
from tests.e2e.test_leak_hunt import ASTERISK_FOLDERS, IdentityPool

from helpline_pbx.app import auth_failure_watcher
from helpline_pbx.auth_log import AuthFailureFile, AuthFailureWatcher
from helpline_pbx.roster.repository import Roster
from helpline_pbx.settings import load_settings

AST_USER = os.environ.get("HELPLINE_ASTERISK_USER", "helpline-asterisk")
FILTER = REPO / "deploy" / "fail2ban" / "filter.d" / "helpline-pbx-sip.conf"
# An address on the loopback that is neither the trunk's nor a listener's: a stranger.
STRANGER_IP = "127.0.0.5"


def _state_dir() -> Path:
    return Path(os.environ.get("HELPLINE_STATE_DIR") or "/var/lib/helpline-pbx")


def _env() -> dict[str, str]:
    return dict(line.split("=", 1) for line in _script("env").stdout.splitlines() if "=" in line)


def _asterisk_trees(asterisk: AsteriskUnderTest) -> list[Path]:
    """Asterisk's configuration (ARI password inside), logs, astdb, spool and run folders, seen from here."""
    if asterisk.mode == "chroot":
        return [asterisk.root / d for d in ("etc/asterisk", *ASTERISK_FOLDERS, "run/asterisk")]
    base = _state_dir() / "asterisk"
    return [base / d for d in ("etc", "log", "spool", "lib", "run")]


def _written(tree: Path) -> Iterator[Path]:
    """The tree itself and everything in it, symlinks left out (installed content, not Asterisk's)."""
    yield tree
    for folder, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = Path(folder) / name
            if not path.is_symlink():
                yield path


def _asterisk_pid(asterisk: AsteriskUnderTest) -> int:
    if asterisk.mode == "chroot":
        pidfile = asterisk.root / "run/asterisk/asterisk.pid"
    else:
        pidfile = _state_dir() / "asterisk/run/asterisk.pid"
    return int(pidfile.read_text().strip())


def _umask(pid: int) -> int:
    found = re.search(r"^Umask:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert found is not None
    return int(found.group(1), 8)


def _ids(pid: int) -> tuple[int, int]:
    """The real uid and gid of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    gid = int(re.search(r"^Gid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    return uid, gid


# ---- 6: file modes ------------------------------------------------------------------------------------


async def test_every_asterisk_file_is_its_users_only_after_a_call(
    asterisk: AsteriskUnderTest, roster: Roster, service: ServiceFactory, sipp: Sipp
) -> None:
    """After a served call, a log rotation and an astdb write, no file or folder Asterisk keeps (config
    with the ARI password, logs, astdb, spool, run) is readable, writable or searchable by group or others."""
    camille = await add_listener(roster, "Camille")
    svc = await service()
    await online_phone(svc, sipp, camille)
    caller = sipp.caller("caller_hangup", talk_ms=500)
    [record] = await svc.decisions.wait_records(1)
    assert record.outcome == "served"
    assert (await caller.wait_async(15)).exit_code == 0, caller.errors()
    # Files Asterisk makes after start-up: a rotated log and a new messages.log, astdb's journal.
    for command in (
        "logger rotate",
        "database put helpline hardening test",
        "database del helpline hardening",
    ):
        assert _script("cli", command).returncode == 0

    checked, open_to_others = 0, []
    for tree in _asterisk_trees(asterisk):
        assert tree.is_dir(), f"{tree} is missing"
        for path in _written(tree):
            checked += 1
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077:
                open_to_others.append(f"{path} {mode:o}")
    assert checked > 20
    assert open_to_others == [], "\n".join(open_to_others)
    logs = _asterisk_trees(asterisk)[1]
    assert any(p.name.startswith("messages.log.") for p in logs.iterdir()), "the log was not rotated"
    # Asterisk keeps the umask it was started with, so what it creates from now on stays private too.
    assert _umask(_asterisk_pid(asterisk)) & 0o077 == 0o077


# ---- 7: Asterisk's own user ---------------------------------------------------------------------------


def test_asterisk_runs_as_a_user_of_its_own_that_owns_its_files(asterisk: AsteriskUnderTest) -> None:
    """The running Asterisk's uid is the project's user on the host, no other service's (not postgres),
    and that user owns the root's /etc/asterisk; no other host user owns anything of Asterisk's."""
    uid, gid = _ids(_asterisk_pid(asterisk))
    assert pwd.getpwuid(uid).pw_name == AST_USER
    assert uid != 0
    for service_user in ("postgres", "mysql", "redis", "www-data"):
        try:
            assert pwd.getpwnam(service_user).pw_uid != uid, f"Asterisk runs as {service_user}'s uid"
        except KeyError:
            continue
    owners = {
        (p.lstat().st_uid, p.lstat().st_gid) for tree in _asterisk_trees(asterisk) for p in _written(tree)
    }
    assert owners == {(uid, gid)}
    etc = _asterisk_trees(asterisk)[0]
    assert (etc / "ari.conf").stat().st_uid == uid
    if asterisk.mode == "chroot":
        # Inside the root the package's user keeps its name, with the host user's ids.
        entry = next(
            line
            for line in (asterisk.root / "etc/passwd").read_text().splitlines()
            if line.startswith("asterisk:")
        )
        assert entry.split(":")[2:4] == [str(uid), str(gid)]
        try:
            postgres = pwd.getpwnam("postgres").pw_uid
        except KeyError:
            return
        owned = subprocess.run(
            ["find", str(asterisk.root), "-xdev", "-uid", str(postgres), "-print", "-quit"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert owned == "", f"the host's postgres user owns {owned.strip()}"


# ---- 8: failed logins logged, nothing of a caller -----------------------------------------------------


class SignallingFile(AuthFailureFile):
    """The real file, and an event a test can await once a line is written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.written = asyncio.Event()

    def append(self, line: str) -> None:
        super().append(line)
        self.written.set()


@pytest.fixture
async def watcher(tmp_path: Path, roster: Roster) -> AsyncIterator[tuple[AuthFailureWatcher, SignallingFile]]:
    """The service's auth-failure watcher as app.serve wires it, logged in to Asterisk's AMI."""
    env = _env()
    settings = load_settings(
        state_dir=tmp_path / "state",
        ari_password_file=Path(env["HELPLINE_ARI_PASSWORD_FILE"]),
        ami_port=int(env["HELPLINE_AMI_PORT"]),
        ami_user=env["HELPLINE_AMI_USER"],
        ami_password_file=Path(env["HELPLINE_AMI_PASSWORD_FILE"]),
        auth_failure_log=tmp_path / "log" / "sip-auth-failures.log",
    )
    wired = auth_failure_watcher(settings, roster)
    assert wired is not None, "no AMI password: the auth-failure log is off"
    out = SignallingFile(settings.auth_failure_log)
    wired.out = out
    task = asyncio.create_task(wired.run())
    async with asyncio.timeout(10):
        await wired.connected.wait()
    yield wired, out
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _pushed(svc: RunningService, listener_id: str) -> None:
    await svc.decisions.wait_for(
        lambda: svc.board.queue.listener_state(listener_id) is not None, 10, "listener known"
    )


def _fail2ban_ips(log: Path) -> list[str]:
    """The addresses fail2ban's own regex tool finds in the log with the filter we ship."""
    tool = shutil.which("fail2ban-regex")
    assert tool is not None, "fail2ban is not installed: make deps installs it for the tests"
    result = subprocess.run(
        [tool, "-o", "ip", str(log), str(FILTER)], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.split()


async def test_a_wrong_password_is_logged_with_address_and_user_for_fail2ban(
    roster: Roster,
    service: ServiceFactory,
    sipp: Sipp,
    tmp_path: Path,
    watcher: tuple[AuthFailureWatcher, SignallingFile],
) -> None:
    """A REGISTER with a wrong password for a real listener's endpoint gives one line with the time, the
    source address and the endpoint, which the shipped fail2ban filter matches."""
    _, out = watcher
    dominique = await add_listener(roster, "Dominique")
    svc = await service()
    await _pushed(svc, dominique.id)
    guess = SippProcess(
        "listener_register",
        workdir=tmp_path / "sipp",
        remote=sipp.remote,
        service=dominique.endpoint,
        auth_user=dominique.endpoint,
        auth_password="not-the-password",
        calls=1,
        lifetime=20,
    )
    sipp.processes.append(guess)
    before = datetime.now(UTC).replace(microsecond=0)
    guess.start()
    assert (await guess.wait_async(25)).exit_code != 0, "Asterisk accepted a wrong password"
    async with asyncio.timeout(10):
        await out.written.wait()

    [line] = out.path.read_text(encoding="ascii").splitlines()
    match = re.fullmatch(r"(\S+)Z helpline-pbx sip-auth-failure remote=(\S+) port=(\d+) endpoint=(\S+)", line)
    assert match is not None, line
    when = datetime.fromisoformat(match[1]).replace(tzinfo=UTC)
    assert before <= when <= datetime.now(UTC) + timedelta(seconds=1)
    assert match[2] == "127.0.0.1"
    assert int(match[3]) == guess.port
    assert match[4] == dominique.endpoint
    assert stat.S_IMODE(out.path.stat().st_mode) == 0o600
    assert _fail2ban_ips(out.path) == ["127.0.0.1"]


async def test_a_hostile_invite_leaves_no_caller_number_or_name_in_any_file(
    asterisk: AsteriskUnderTest,
    sipp: Sipp,
    tmp_path: Path,
    watcher: tuple[AuthFailureWatcher, SignallingFile],
) -> None:
    """An INVITE from an unknown address carrying a caller's number (From user, Call-ID) and name, then a
    REGISTER with the number as user name, are refused; the failed login is logged, and neither the number
    nor the name reaches Asterisk's files or the auth-failure log."""
    identity = IdentityPool().draw("Camille")
    hostile = SippProcess(
        "caller",
        workdir=tmp_path / "sipp",
        local_ip=STRANGER_IP,
        remote=sipp.remote,
        service=sipp.line,
        variables={"caller_user": identity.national, "caller_name": identity.name},
        calls=1,
        lifetime=15,
        # A carrier may build the Call-ID from the caller's number: Asterisk's security events carry it.
        extra_args=["-cid_str", identity.national + "-%u-%p@%s"],
    )
    sipp.processes.append(hostile)
    hostile.start()
    assert (await hostile.wait_async(20)).exit_code != 0, "a stranger's INVITE was answered"
    replies = hostile.messages()
    assert any(m.startswith("SIP/2.0 401") for m in replies), "Asterisk did not challenge the stranger"
    # The stranger then tries to log in with the number as its user name: a failure is logged, without it.
    guess = SippProcess(
        "listener_register",
        workdir=tmp_path / "sipp",
        local_ip=STRANGER_IP,
        remote=sipp.remote,
        service=identity.national,
        auth_user=identity.national,
        auth_password="a-guess",
        calls=1,
        lifetime=20,
        extra_args=["-cid_str", identity.national + "-%u-%p@%s"],
    )
    sipp.processes.append(guess)
    guess.start()
    assert (await guess.wait_async(25)).exit_code != 0
    async with asyncio.timeout(10):
        await watcher[1].written.wait()
    [line] = watcher[1].path.read_text(encoding="ascii").splitlines()
    # A boolean first: pytest would otherwise print the line, which is what must not hold the number.
    logged = line.endswith(f" remote={STRANGER_IP} port={guess.port} endpoint=-")
    assert logged, "the stranger's failed login was not logged as expected"
    # Asterisk writes its logs from a queue: a CLI round trip after the INVITE lets it flush them.
    assert _script("cli", "core show uptime").returncode == 0

    # The control: the hunter sees the number and the name in what the stranger sent.
    control = LeakHunt(Needles(identity))
    control.sip_messages(
        "the stranger's INVITE", [m for m in hostile.sent_messages() if m.startswith("INVITE ")]
    )
    control.sip_messages("the stranger's REGISTER", guess.sent_messages())
    assert {"number (national)", "name"} <= {hit.what for hit in control.hits}

    hunt = LeakHunt(Needles(identity))
    root = asterisk.files_root()
    for folder in ASTERISK_FOLDERS:
        hunt.tree(root / folder, f"Asterisk {folder}")
    assert any("messages.log" in where for where in hunt.searched)
    hunt.file(watcher[1].path, "auth-failure log")
    if hunt.hits:
        pytest.fail(hunt.report(), pytrace=False)
