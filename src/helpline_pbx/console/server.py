"""The console's server inside the service: its address, its certificate, and the box's board token.

The address it actually listens on is written to `<console_dir>/url` and a token to
`<console_dir>/board-token` (the folder is the service user's only), which `helpline-pbx board` reads on the
box.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from helpline_pbx.addresses import is_ip
from helpline_pbx.console.accounts import Accounts
from helpline_pbx.console.web import Route, make_app, sign_in_routes

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from helpline_pbx.console.live import LiveBoard
    from helpline_pbx.lines.snapshots import LineSnapshot
    from helpline_pbx.settings import Settings
    from helpline_pbx.switchboard.runtime import Switchboard
    from helpline_pbx.switchboard.scribe import Scribe

log = structlog.get_logger(__name__)

CERT_DAYS = 825


class ConsoleError(RuntimeError):
    pass


def url_file(console_dir: Path) -> Path:
    return console_dir / "url"


def token_file(console_dir: Path) -> Path:
    return console_dir / "board-token"


def board_token(console_dir: Path) -> str:
    """The box's board token, made once."""
    path = token_file(console_dir)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def ensure_certificate(cert: Path, key: Path, host: str) -> None:
    """A self-signed certificate for `host` when the operator gave none (openssl, on every Debian)."""
    if cert.exists() and key.exists():
        return
    if cert.exists() != key.exists():
        raise ConsoleError(f"the console has {cert if cert.exists() else key} but not its pair: give both")
    cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = f"DNS:localhost,IP:127.0.0.1,{'IP' if is_ip(host) else 'DNS'}:{host}"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                str(CERT_DAYS),
                "-subj",
                "/CN=helpline-pbx console",
                "-addext",
                f"subjectAltName={names}",
            ],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConsoleError(f"could not make the console's certificate with openssl: {exc}") from exc
    key.chmod(0o600)
    log.info("console_certificate_made", path=str(cert), days=CERT_DAYS)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConsoleError(f"the console's certificate {cert} or key {key} cannot be used: {exc}") from exc
    return context


class ConsoleServer:
    def __init__(self, app: web.Application, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._host = host
        self._port = port
        self._tls = tls
        self.url = ""

    async def start(self, console_dir: Path | None = None) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._tls)
        await site.start()
        # Port 0 asks for any free port: the runner knows which it got.
        port = int(self._runner.addresses[0][1])
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"{'https' if self._tls else 'http'}://{host}:{port}"
        if console_dir is not None:
            path = url_file(console_dir)
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_text(self.url + "\n")
        log.info("console_started", url=self.url)
        return self.url

    async def close(self) -> None:
        await self._runner.cleanup()


def build_app(accounts: Accounts, routes: list[Route], *, secure: bool) -> web.Application:
    return make_app(accounts, [*sign_in_routes(), *routes], secure=secure)


def console_for(
    settings: Settings, engine: AsyncEngine, board: Switchboard, scribe: Scribe
) -> tuple[ConsoleServer, LiveBoard]:
    """The console of this service: its live board and metrics watch the switchboard's decisions."""
    from helpline_pbx.console.live import LiveBoard
    from helpline_pbx.console.metrics import Metrics, Sources
    from helpline_pbx.console.pages import PARTS_KEY, Parts, console_routes
    from helpline_pbx.console.statistics import LineRules, Thresholds
    from helpline_pbx.lines.repository import Lines
    from helpline_pbx.roster.callers import Callers
    from helpline_pbx.roster.debriefs import Debriefs
    from helpline_pbx.roster.repository import Roster
    from helpline_pbx.roster.supervisions import Supervisions

    def lines() -> list[LineSnapshot]:
        return list({line.name: line for line in board.line_cache.line_by_number.values()}.values())

    defaults = Thresholds(settings.service_level, settings.short_abandon)
    live = LiveBoard(
        queue=board.queue,
        book=board.book,
        lines=lines,
        listeners=lambda: board.sync.listeners,
        engine=engine,
        defaults=defaults,
    )
    metrics = Metrics(
        Sources(
            calls=board.queue.calls,
            listeners=board.queue.listeners,
            thresholds=lambda: {
                x.name: LineRules.of_line(x, defaults).thresholds.service_level for x in lines()
            },
            ari_connected=board.connected.is_set,
            ari_connections=lambda: board.connections,
            lane_failures=lambda: board.executor.lanes.failures,
            roster_write_retries=lambda: scribe.retries,
        )
    )
    board.observers.append(live.on_decision)
    board.observers.append(metrics.on_decision)
    secure = settings.console_https()
    tls = None
    if secure:
        cert, key = settings.console_certificate()
        ensure_certificate(cert, key, settings.console_host)
        tls = tls_context(cert, key)
    app = build_app(Accounts(engine), console_routes(), secure=secure)
    app[PARTS_KEY] = Parts(
        live=live,
        metrics=metrics,
        roster=Roster(engine),
        debriefs=Debriefs(engine),
        supervisions=Supervisions(engine),
        callers=Callers(engine),
        lines=Lines(engine),
        board_token=board_token(settings.console_dir),
        bar_days=settings.bar_days,
        defaults=defaults,
    )
    return ConsoleServer(app, settings.console_host, settings.console_port, tls), live
