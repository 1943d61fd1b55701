"""The one place where the service is wired together: settings, logs, database, ARI, switchboard."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import structlog

from helpline_pbx.agi.server import AgiServer
from helpline_pbx.ami import AmiSession
from helpline_pbx.ari.client import AriClient
from helpline_pbx.ari.interface import Ari
from helpline_pbx.ari.pool import pool_size
from helpline_pbx.ari.stream import EventStream
from helpline_pbx.auth_log import AuthFailureFile, AuthFailureWatcher
from helpline_pbx.caller_memory import CallerMemory
from helpline_pbx.core import CallQueue, Policy
from helpline_pbx.housekeeping import retention_of, run_daily
from helpline_pbx.lines.cache import LineCache
from helpline_pbx.lines.repository import Lines
from helpline_pbx.logs import Redactor
from helpline_pbx.roster.callers import Callers
from helpline_pbx.roster.database import make_engine
from helpline_pbx.roster.debriefs import Debriefs
from helpline_pbx.roster.repository import Roster
from helpline_pbx.roster.supervisions import Supervisions
from helpline_pbx.screening import Screener, ScreeningPolicy
from helpline_pbx.settings import Settings
from helpline_pbx.state import keep_private, private_folder
from helpline_pbx.switchboard.calls.admission import Admission
from helpline_pbx.switchboard.calls.executor import Executor
from helpline_pbx.switchboard.calls.legs import LegBook
from helpline_pbx.switchboard.core_loop import CoreLoop
from helpline_pbx.switchboard.features import Features
from helpline_pbx.switchboard.presence.codes import PresenceCodes
from helpline_pbx.switchboard.presence.sync import RosterSync
from helpline_pbx.switchboard.recovery import Recovery
from helpline_pbx.switchboard.runtime import Switchboard, SwitchboardConfig, SwitchboardParts
from helpline_pbx.switchboard.scribe import Scribe
from helpline_pbx.switchboard.supervision.sessions import Supervision
from helpline_pbx.switchboard.waiting_room.room import WaitingRoom
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


def build_switchboard(
    config: SwitchboardConfig,
    ari: Ari,
    stream: EventStream,
    roster: Roster,
    callers: Callers | None = None,
    lines: Lines | None = None,
    scribe: Scribe | None = None,
) -> Switchboard:
    """The switchboard and every part of the edge, wired here and nowhere else. `scribe` writes the
    roster behind the calls (one is made when none is given); its owner closes it."""
    core = CoreLoop(CallQueue(config.policy))
    book = LegBook(call_id_prefix=f"{config.app}-")
    debriefs = Debriefs(roster.engine)
    scribe = scribe or Scribe(roster.engine)
    executor = Executor(
        ari=ari,
        roster=roster,
        scribe=scribe,
        book=book,
        feed=core.feed,
        app=config.app,
        instance=config.app,
        holding_bridge=f"{config.app}-waiting",
        fallback_context=config.fallback_context,
        service_grace=config.service_grace,
        debriefs=debriefs,
    )
    core.perform = executor.submit
    line_cache = LineCache(ari=ari, lines=lines)
    sync = RosterSync(
        ari=ari, roster=roster, lines=line_cache, queue=core.queue, feed=core.feed, app=config.app
    )
    supervision = Supervision(
        ari=ari,
        roster=roster,
        supervisions=Supervisions(roster.engine),
        queue=core.queue,
        book=book,
        lanes=executor.lanes,
        app=config.app,
        tone=config.supervision_tone,
        policy=config.supervision,
    )
    waiting_room = WaitingRoom(
        ari=ari,
        queue=core.queue,
        book=book,
        lanes=executor.lanes,
        feed=core.feed,
        line_named=line_cache.line_named,
        rest_after_call=config.policy.rest_after_call,
    )
    core.observers.append(waiting_room.on_decision)
    features = Features(ari, roster, callers, config.bar_days)
    # Presence codes tell the core at once; the roster poll would see them only later.
    features.handlers.update(PresenceCodes(ari, roster, debriefs, core.feed, core.queue).handlers())
    features.handlers.update(supervision.handlers())
    admission = Admission(
        ari=ari,
        line_name=config.line_name,
        repeat_hint=config.repeat_hint,
        fallback_context=config.fallback_context,
        book=book,
        executor=executor,
        scribe=scribe,
        lines=line_cache,
        sync=sync,
        callers=callers,
        feed=core.feed,
    )
    recovery = Recovery(
        ari=ari,
        app=config.app,
        line_name=config.line_name,
        dids=config.dids,
        agi_url=config.agi_url,
        roster=roster,
        book=book,
        executor=executor,
        lines=line_cache,
        sync=sync,
        feed=core.feed,
    )
    parts = SwitchboardParts(
        core=core,
        book=book,
        executor=executor,
        line_cache=line_cache,
        sync=sync,
        features=features,
        admission=admission,
        recovery=recovery,
        supervision=supervision,
        waiting_room=waiting_room,
        ari_observers=[supervision.on_event, waiting_room.on_event],
    )
    return Switchboard(config, ari, stream, parts)


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
    scribe = Scribe(engine)
    screening = screening_policy(settings)
    memory = CallerMemory(callers, scribe, instance=settings.ari_app, keep=screening.longest_window)
    # The first screens count what the roster holds: loaded before the screen opens.
    await memory.refresh()
    remembering = asyncio.create_task(memory.run())
    screener = Screener(keyring, memory, screening)
    agi = AgiServer(screener.handle, settings.agi_host, settings.agi_port)
    housekeeping = asyncio.create_task(run_daily(engine, keyring, retention_of(settings.retention_days)))
    watcher = auth_failure_watcher(settings, Roster(engine))
    auth_failures = asyncio.create_task(watcher.run()) if watcher is not None else None
    background: list[asyncio.Task[None]] = []
    try:
        await agi.start()
        async with (
            AriClient(
                settings.ari_url,
                settings.ari_user,
                secret,
                max_in_flight=pool_size(settings.ari_session_limit),
            ) as ari,
            EventStream(settings.ari_url, settings.ari_user, secret, settings.ari_app) as stream,
        ):
            # The screen's real address (port 0 in settings means any free port).
            config = switchboard_config(settings, f"agi://{agi.host}:{agi.port}/screen")
            board = build_switchboard(config, ari, stream, Roster(engine), callers, Lines(engine), scribe)
            if redactor is not None:
                keep = redactor.keep_numbers
                board.line_cache.numbers_changed = lambda numbers: keep([*dids, *numbers])
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, board.request_drain)
            console = None
            if settings.console:
                from helpline_pbx.console.server import ConsoleError, console_for

                try:
                    console, live = console_for(settings, engine, board, scribe)
                    await console.start(settings.console_dir)
                    background.append(asyncio.create_task(live.run(), name="console-board"))
                except (OSError, ConsoleError) as exc:
                    # The calls matter more than the console: they go on without it, loudly.
                    log.error("console_not_started", error=str(exc), port=settings.console_port)
                    console = None
            log.info("service_started", app=settings.ari_app)
            try:
                await board.run()
            finally:
                if console is not None:
                    await console.close()
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
        remembering.cancel()
        if auth_failures is not None:
            auth_failures.cancel()
        for task in background:
            task.cancel()
        await asyncio.gather(
            housekeeping, remembering, *filter(None, [auth_failures]), *background, return_exceptions=True
        )
        await agi.close()
        await scribe.close()
        await engine.dispose()
