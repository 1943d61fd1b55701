"""The one place where the service is wired together: settings, logs, database, ARI, switchboard."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import structlog

from helpline_pbx.agi.server import AgiServer
from helpline_pbx.ami import AmiSession
from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.stream import EventStream
from helpline_pbx.auth_log import AuthFailureFile, AuthFailureWatcher
from helpline_pbx.core import Policy
from helpline_pbx.housekeeping import retention_of, run_daily
from helpline_pbx.lines.repository import Lines
from helpline_pbx.logs import Redactor
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.database import make_engine
from helpline_pbx.roster.repository import Roster
from helpline_pbx.screening import Screener, ScreeningPolicy
from helpline_pbx.settings import Settings
from helpline_pbx.state import keep_private, private_folder
from helpline_pbx.switchboard.runtime import Switchboard, SwitchboardConfig
from helpline_pbx.tokens import KeyRing

log = structlog.get_logger(__name__)


def switchboard_config(settings: Settings, agi_url: str | None = None) -> SwitchboardConfig:
    return SwitchboardConfig(
        app=settings.ari_app,
        line_name=settings.line_name,
        fallback_context=settings.fallback_context,
        roster_poll_interval=settings.roster_poll_interval,
        drain_timeout=settings.drain_timeout,
        policy=Policy(
            ring_timeout=settings.ring_timeout,
            rest_after_call=settings.rest_after_call,
            missed_offer_delay=settings.missed_offer_delay,
            declined_offer_delay=settings.declined_offer_delay,
            max_missed_offers=settings.max_missed_offers,
            rest_extension=settings.rest_extension,
            rest_after_difficult=settings.rest_after_difficult,
            difficult_window=settings.difficult_window,
            shift_break=settings.shift_break,
            shift_limits=settings.shift_limit_map(),
        ),
        repeat_hint=settings.repeat_hint,
        bar_days=settings.bar_days,
        supervision_tone=settings.supervision_tone,
        supervision=settings.supervision_policy(),
        service_grace=settings.service_grace,
        dids=settings.did_list(),
        agi_url=agi_url or settings.agi_url(),
    )


def screening_policy(settings: Settings) -> ScreeningPolicy:
    return ScreeningPolicy(
        rate_limit_calls=settings.rate_limit_calls,
        rate_limit_window=timedelta(minutes=settings.rate_limit_window_minutes),
        repeat_window=timedelta(days=settings.key_period_days),
        default_country=settings.default_country_code,
    )


def auth_failure_watcher(settings: Settings, roster: Roster) -> AuthFailureWatcher | None:
    """The auth-failure log's reader, or None (logged) when Asterisk has no AMI password for us."""
    secret = settings.ami_secret()
    if secret is None:
        log.warning(
            "auth_failure_log_off", reason="no AMI password file", path=str(settings.ami_password_file)
        )
        return None

    def session() -> AmiSession:
        return AmiSession(settings.ami_host, settings.ami_port, settings.ami_user, secret.get_secret_value())

    async def endpoints() -> frozenset[str]:
        return frozenset(listener.endpoint for listener in await roster.list_listeners())

    return AuthFailureWatcher(session, endpoints, AuthFailureFile(settings.auth_failure_log))


async def serve(settings: Settings, redactor: Redactor | None = None) -> None:
    """Run until SIGTERM/SIGINT has drained the calls in progress; `redactor`, the logs' own, is told the
    line's numbers (the instance's and its lines'), which the logs keep."""
    keep_private()
    private_folder(settings.state_dir)
    dids = settings.did_list()
    if redactor is not None:
        redactor.keep_numbers(dids)
    engine = make_engine(settings.database_url)
    secret = settings.ari_secret()
    keyring = KeyRing(
        settings.keys_dir, period_days=settings.key_period_days, overlap_days=settings.key_overlap_days
    )
    callers = Callers(engine)
    screener = Screener(keyring, callers, screening_policy(settings))
    agi = AgiServer(screener.handle, settings.agi_host, settings.agi_port)
    housekeeping = asyncio.create_task(run_daily(engine, keyring, retention_of(settings.retention_days)))
    watcher = auth_failure_watcher(settings, Roster(engine))
    auth_failures = asyncio.create_task(watcher.run()) if watcher is not None else None
    try:
        await agi.start()
        async with (
            AriClient(settings.ari_url, settings.ari_user, secret) as ari,
            EventStream(settings.ari_url, settings.ari_user, secret, settings.ari_app) as stream,
        ):
            # The screen's real address (port 0 in settings means any free port).
            config = switchboard_config(settings, f"agi://{agi.host}:{agi.port}/screen")
            board = Switchboard(config, ari, stream, Roster(engine), callers, Lines(engine))
            if redactor is not None:
                keep = redactor.keep_numbers
                board.line_cache.numbers_changed = lambda numbers: keep([*dids, *numbers])
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, board.request_drain)
            log.info("service_started", app=settings.ari_app)
            await board.run()
            if board.replaced:
                raise SystemExit(
                    "another process took the ARI application over: two services must not share it"
                )
            log.info(
                "service_stopped",
                events=board.handled_events,
                lane_failures=board.executor.lanes.failures,
            )
    finally:
        housekeeping.cancel()
        if auth_failures is not None:
            auth_failures.cancel()
        await asyncio.gather(housekeeping, *filter(None, [auth_failures]), return_exceptions=True)
        await agi.close()
        await engine.dispose()
