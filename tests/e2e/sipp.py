"""Run SIPp scenarios (tests/sipp/*.xml) as background processes for tests.

One `SippProcess` is one SIPp run: a caller (UAC) placing calls, a listener's
softphone (UAS) answering them, or a REGISTER. Every run writes its traces in
its own work directory (a test's tmp_path): the SIP messages it saw, its
unexpected-message errors, its statistics and its final screen.

    with SippProcess("listener_answer", workdir=tmp_path) as phone:
        phone.wait_listening()
        with SippProcess(
            "caller_hangup", workdir=tmp_path, remote=f"127.0.0.1:{phone.port}",
            calls=1, pause_ms=1000,
        ) as caller:
            assert caller.wait(timeout=10).successful_calls == 1
        assert "INVITE sip:" in phone.messages()[0]

Leaving the `with` block (or `async with`) always stops and reaps the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "sipp"

# SIPp's documented exit codes.
EXIT_ALL_CALLS_SUCCEEDED = 0
EXIT_SOME_CALLS_FAILED = 1
EXIT_INTERNAL_COMMAND = 97
EXIT_NO_CALL_PROCESSED = 99
EXIT_FATAL = 255

_POLL_INTERVAL = 0.02
# A SIPp left behind by a crashed test run still exits on its own.
_DEFAULT_LIFETIME = 600.0

# Each entry of -trace_msg starts with a dashed line and the timestamp, then
# e.g. "UDP message received [566] bytes :" or "UDP message sent (468 bytes):".
_MESSAGE_HEADER = re.compile(
    rb"^-{20,} [^\n]*\n\S+ message "
    rb"(?:(?P<received>received) \[(?P<rlen>\d+)\] bytes :|(?P<sent>sent) \((?P<slen>\d+) bytes\):)"
    rb"\n\n",
    re.MULTILINE,
)


class SippError(RuntimeError):
    """SIPp could not be started, or exited before it was ready."""


@dataclass(frozen=True)
class SippResult:
    """How a SIPp run ended: its exit code and its cumulative call counters."""

    exit_code: int
    counters: Mapping[str, int] = field(default_factory=dict)
    stopped: bool = False

    @property
    def successful_calls(self) -> int:
        return self.counters.get("SuccessfulCall", 0)

    @property
    def failed_calls(self) -> int:
        return self.counters.get("FailedCall", 0)

    @property
    def all_succeeded(self) -> bool:
        """At least one call, none failed, and SIPp agrees."""
        return (
            self.successful_calls > 0
            and self.failed_calls == 0
            and (self.stopped or self.exit_code == EXIT_ALL_CALLS_SUCCEEDED)
        )


def scenario_path(name: str | Path) -> Path:
    """A scenario by bare name ("caller") from tests/sipp/, or any XML file path."""
    candidate = Path(name)
    path = candidate if candidate.suffix == ".xml" else SCENARIO_DIR / f"{name}.xml"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def free_udp_port(ip: str = "127.0.0.1") -> int:
    """A UDP port that nothing is bound to on `ip` right now."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((ip, 0))
        port: int = probe.getsockname()[1]
        return port


def _proc_net_address(ip: str, port: int) -> tuple[str, str]:
    """`ip:port` as the kernel prints it in /proc/net/udp{,6}, and that file."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    packed = socket.inet_pton(family, ip)
    # The kernel prints each 32-bit word of the address in host byte order.
    words = [f"{int.from_bytes(packed[i : i + 4], sys.byteorder):08X}" for i in range(0, len(packed), 4)]
    table = "/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp"
    return f"{''.join(words)}:{port:04X}", table


def udp_port_bound(ip: str, port: int) -> bool:
    """Whether some socket is bound to UDP `ip:port` (or the wildcard address on `port`)."""
    wanted, table = _proc_net_address(ip, port)
    # Only read, never bound: a socket on the wildcard address also serves `ip`.
    wildcard, _ = _proc_net_address("::" if ":" in ip else "0.0.0.0", port)  # noqa: S104
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except FileNotFoundError:
        return False
    return any(line.split()[1] in (wanted, wildcard) for line in lines if line.strip())


def parse_messages(raw: bytes) -> list[tuple[str, str]]:
    """(direction, text) of every entry of a SIPp -trace_msg file, in order."""
    entries: list[tuple[str, str]] = []
    for match in _MESSAGE_HEADER.finditer(raw):
        direction = "received" if match.group("received") else "sent"
        start = match.end()
        length = int(match.group("rlen") or match.group("slen"))
        text = raw[start : start + length].decode("utf-8", errors="replace")
        entries.append((direction, text))
    return entries


def parse_stats(text: str) -> dict[str, int]:
    """Cumulative counters, e.g. {"SuccessfulCall": 1}, from the last row of a -trace_stat CSV."""
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    counters: dict[str, int] = {}
    for name, value in zip(header, last, strict=False):
        if name.endswith("(C)") and value.strip().isdigit():
            counters[name.removesuffix("(C)")] = int(value)
    return counters


CALLER_AUDIO = "caller-audio.ulaw"


def write_caller_audio(workdir: Path) -> Path:
    """The audio callers' scenarios stream (rtp_stream, looped): one second of G.711 mu-law silence,
    so that what a test measures at a listener is only what it sent on purpose."""
    path = workdir / CALLER_AUDIO
    if not path.exists():
        path.write_bytes(b"\xff" * 8000)
    return path


class SippProcess:
    """One SIPp scenario run in the background; a context manager that always reaps it."""

    def __init__(
        self,
        scenario: str | Path,
        *,
        workdir: Path,
        local_ip: str = "127.0.0.1",
        local_port: int = 0,
        remote: str | None = None,
        service: str | None = None,
        keys: Mapping[str, str] | None = None,
        variables: Mapping[str, str] | None = None,
        calls: int | None = None,
        rate: float | None = None,
        pause_ms: int | None = None,
        auth_user: str | None = None,
        auth_password: str | None = None,
        lifetime: float | None = _DEFAULT_LIFETIME,
        extra_args: Sequence[str] = (),
        sipp_binary: str = "sipp",
    ) -> None:
        """Prepare a run; nothing starts before `start()` (or entering the context).

        scenario: bare name in tests/sipp/ ("listener_answer") or a path to an XML file.
        local_port: 0 picks a free UDP port, known from `port` right away.
        remote: "host:port" the UAC sends to; optional for a UAS.
        service: -s, the Request-URI user (the dialled number, or the AOR user).
        keys: -key NAME VALUE, for [NAME] in the scenario.
        variables: -set NAME VALUE, for the scenario's global [$NAME] variables.
        calls: -m, exit after that many calls; None serves calls until stopped.
        pause_ms: -d, the length of every <pause/> (talk time, ringing time...).
        lifetime: -timeout, SIPp quits by itself after that many seconds.
        """
        self.scenario = scenario_path(scenario)
        self.name = self.scenario.stem
        self.workdir = workdir
        self.local_ip = local_ip
        self.port = local_port or free_udp_port(local_ip)
        self.remote = remote
        self.service = service
        self.keys = dict(keys or {})
        self.variables = dict(variables or {})
        self.calls = calls
        self.rate = rate
        self.pause_ms = pause_ms
        self.auth_user = auth_user
        self.auth_password = auth_password
        self.lifetime = lifetime
        self.extra_args = list(extra_args)
        self.sipp_binary = sipp_binary

        prefix = workdir / f"{self.name}_{self.port}"
        self.message_file = prefix.with_name(prefix.name + "_messages.log")
        self.error_file = prefix.with_name(prefix.name + "_errors.log")
        self.stat_file = prefix.with_name(prefix.name + "_stats.csv")
        self.screen_file = prefix.with_name(prefix.name + "_screen.log")
        self.stdout_file = prefix.with_name(prefix.name + "_stdout.log")

        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._stopped = False

    # -- command line ------------------------------------------------------------------

    def command(self) -> list[str]:
        """The SIPp command line of this run."""
        args = [self.sipp_binary]
        if self.remote is not None:
            args.append(self.remote)
        args += ["-sf", str(self.scenario)]
        args += ["-i", self.local_ip, "-p", str(self.port), "-bind_local", "-t", "u1"]
        # No terminal: no keyboard input, and the final screen goes to a file.
        args += ["-nostdin", "-trace_screen", "-screen_file", str(self.screen_file)]
        args += ["-trace_msg", "-message_file", str(self.message_file)]
        args += ["-trace_err", "-error_file", str(self.error_file)]
        # A one-second dump period lets counters() follow a running process.
        args += ["-trace_stat", "-stf", str(self.stat_file), "-fd", "1"]
        # Answer UPDATE, INFO, OPTIONS and NOTIFY that a scenario does not expect.
        args.append("-aa")
        if self.calls is not None:
            args += ["-m", str(self.calls)]
        if self.rate is not None:
            args += ["-r", f"{self.rate:g}"]
        if self.pause_ms is not None:
            args += ["-d", str(self.pause_ms)]
        if self.service is not None:
            args += ["-s", self.service]
        if self.auth_user is not None:
            args += ["-au", self.auth_user]
        if self.auth_password is not None:
            args += ["-ap", self.auth_password]
        if self.lifetime is not None:
            args += ["-timeout", f"{self.lifetime:g}s"]
        for name, value in self.keys.items():
            args += ["-key", name, value]
        for name, value in self.variables.items():
            args += ["-set", name, value]
        args += self.extra_args
        return args

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._process is not None:
            raise SippError(f"{self.name} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_caller_audio(self.workdir)
        self._output = self.stdout_file.open("wb")
        try:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                # Its own process group, so stop() reaches whatever it spawned.
                start_new_session=True,
            )
        except BaseException:
            self._close_output()
            raise
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise SippError(f"{self.name} was not started")
        return self._process

    def _result(self, exit_code: int) -> SippResult:
        self._close_output()
        return SippResult(exit_code=exit_code, counters=self.counters(), stopped=self._stopped)

    def wait(self, timeout: float) -> SippResult:
        """Wait for SIPp to exit by itself; TimeoutError if it is still running after `timeout`."""
        process = self._require_process()
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"{self.name} still running after {timeout}s") from exc
        return self._result(exit_code)

    # The async methods take `timeout` like their blocking twins, so a test can switch freely.
    async def wait_async(self, timeout: float) -> SippResult:
        """`wait` for asyncio tests: the blocking wait runs in a thread."""
        process = self._require_process()
        try:
            exit_code = await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
        except TimeoutError as exc:
            # The thread returns once the process ends, at the latest when stop() ends it.
            raise TimeoutError(f"{self.name} still running after {timeout}s") from exc
        return self._result(exit_code)

    def stop(self, grace: float = 5.0) -> SippResult | None:
        """SIGTERM (SIPp then writes its final statistics), SIGKILL after `grace` seconds.

        Always reaps the process. Returns None if it was never started.
        """
        if self._process is None:
            return None
        process = self._process
        if process.poll() is None:
            self._stopped = True
            self._signal_group(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait()
        return self._result(process.returncode)

    async def stop_async(self, grace: float = 5.0) -> SippResult | None:
        """`stop` for asyncio tests."""
        if self._process is None:
            return None
        process = self._process
        if process.poll() is None:
            self._stopped = True
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), grace)
            except TimeoutError:
                self._signal_group(signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        return self._result(process.returncode)

    def _signal_group(self, signum: signal.Signals) -> None:
        process = self._require_process()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    # -- readiness ---------------------------------------------------------------------

    def _check_alive(self) -> None:
        process = self._require_process()
        if process.poll() is not None:
            self._close_output()
            raise SippError(
                f"{self.name} exited with {process.returncode} before it was ready: {self.output()[-2000:]}"
            )

    def wait_listening(self, timeout: float = 5.0) -> None:
        """Block until SIPp has bound its SIP port (or raise SippError/TimeoutError)."""
        deadline = time.monotonic() + timeout
        while not udp_port_bound(self.local_ip, self.port):
            self._check_alive()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} not listening on {self.port} after {timeout}s")
            time.sleep(_POLL_INTERVAL)

    async def wait_listening_async(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not udp_port_bound(self.local_ip, self.port):
            self._check_alive()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} not listening on {self.port} after {timeout}s")
            await asyncio.sleep(_POLL_INTERVAL)

    def _find_message(self, predicate: Callable[[str], bool]) -> str | None:
        return next((text for text in self.messages() if predicate(text)), None)

    def wait_for_message(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first received message for which `predicate` is true, as soon as it arrives."""
        deadline = time.monotonic() + timeout
        while (found := self._find_message(predicate)) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name}: no matching message after {timeout}s")
            time.sleep(_POLL_INTERVAL)
        return found

    async def wait_for_message_async(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (found := self._find_message(predicate)) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name}: no matching message after {timeout}s")
            await asyncio.sleep(_POLL_INTERVAL)
        return found

    # -- traces ------------------------------------------------------------------------

    def _trace(self, direction: str) -> list[str]:
        try:
            raw = self.message_file.read_bytes()
        except FileNotFoundError:
            return []
        return [text for entry, text in parse_messages(raw) if entry == direction]

    def messages(self) -> list[str]:
        """The full text of every SIP message this SIPp received so far, in order."""
        return self._trace("received")

    def sent_messages(self) -> list[str]:
        """The full text of every SIP message this SIPp sent so far, in order."""
        return self._trace("sent")

    def counters(self) -> dict[str, int]:
        """Latest cumulative counters (dumped every second, and at exit)."""
        try:
            return parse_stats(self.stat_file.read_text())
        except FileNotFoundError:
            return {}

    def errors(self) -> str:
        """SIPp's log of unexpected messages and aborted calls."""
        try:
            return self.error_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output(self) -> str:
        """What SIPp printed (fatal errors, final screen)."""
        try:
            return self.stdout_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- context managers --------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    def __repr__(self) -> str:
        return f"SippProcess({self.name!r}, port={self.port}, pid={self.pid})"
