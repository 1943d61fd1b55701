"""`helpline-pbx serve`, `check` and `welcome`: the service itself, its settings, and a first-day guide."""

from __future__ import annotations

import argparse
import asyncio
import os

from helpline_pbx.cli.common import EXIT_OK
from helpline_pbx.settings import load_settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("serve", help="run the service (drains on SIGTERM)")
    sub.add_parser("check", help="validate the settings and exit")
    sub.add_parser("welcome", help="print how to register a softphone and which number to call")


def serve() -> int:
    from helpline_pbx.app import serve
    from helpline_pbx.logs import configure_logging

    settings = load_settings()
    redactor = configure_logging(settings.log_level)
    asyncio.run(serve(settings, redactor))
    return EXIT_OK


def check() -> int:
    load_settings()
    print("settings: ok")
    return EXIT_OK


def welcome() -> int:
    port = os.environ.get("HELPLINE_SIP_PORT", "5060")
    print(
        f"""
helpline-pbx is starting.

  Listeners' softphones register to this machine, UDP port {port}:
    add a listener:   .venv/bin/helpline-pbx listeners add "Camille" --role volunteer
    then in the softphone: user = the endpoint printed, password = the password printed,
    domain/registrar = this machine's address, port {port}, transport UDP.
    A listener takes calls once logged in: *11 from their phone,
    or .venv/bin/helpline-pbx listeners login camille

  Callers come in through the SIP trunk (the address in HELPLINE_TRUNK_MATCH, 127.0.0.2 by default),
  dialling the line's number, for example sip:0800123456@<this machine>:{port}.
  To try it without a trunk:  sipp -sf tests/sipp/caller.xml -i 127.0.0.2 -s 0800123456 127.0.0.1:{port} -m 1

  The web console (live board, statistics, listeners, lines) is on http://127.0.0.1:8089/ (loopback:
  reach it through an SSH tunnel, or set HELPLINE_CONSOLE_HOST and it serves HTTPS). The first coordinator:
    .venv/bin/helpline-pbx accounts add coordination --role coordinator   (prints a one-time password)
  The same board in this terminal:  .venv/bin/helpline-pbx board      Metrics: /metrics

  Stop with Ctrl-C: calls in progress finish; waiting callers go to the fallback, which rings the
  listeners' phones directly, then plays a message with alternatives. A second Ctrl-C stops at once.
"""
    )
    return EXIT_OK
