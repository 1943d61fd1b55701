"""`helpline-pbx board`: the live board in the terminal, for ops engineers on the box.

It reads the running service's board (the same snapshot as the web page) from the console's address with
the box's board token, both in the console's folder, which only the service's user reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import urllib.request

from helpline_pbx.cli.common import EXIT_FAILED, EXIT_OK, fail


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    board = sub.add_parser("board", help="the live board in the terminal (refreshing; --once prints it once)")
    board.add_argument("--once", action="store_true", help="print the board once and exit")
    board.add_argument("--every", type=float, default=1.0, help="seconds between refreshes (default 1)")
    board.add_argument("--json", action="store_true", help="the board as JSON (with --once)")


def fetch_board(url: str, token: str) -> dict[str, object]:
    """The running console's board, with the box's token."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"the console's address {url!r} is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        f"{url}/api/board", headers={"Authorization": f"Bearer {token}"}
    )
    # The console's certificate is the box's own (often self-signed): on the box, over loopback, the token
    # is what proves who we are, and the address is the one the service wrote.
    context = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
    with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
        data: dict[str, object] = json.load(response)
        return data


def board(args: argparse.Namespace) -> int:
    from helpline_pbx.console.board import render_text
    from helpline_pbx.console.server import token_file, url_file
    from helpline_pbx.settings import console_dir_from_env

    folder = console_dir_from_env()
    try:
        url = url_file(folder).read_text().strip()
        token = token_file(folder).read_text().strip()
    except OSError:
        return fail(f"no running console found in {folder}: is the service running (make run)?")
    while True:
        try:
            data = fetch_board(url, token)
        except OSError as exc:
            return fail(f"the service's console at {url} did not answer: {exc}")
        if args.once and args.json:
            print(json.dumps(data, indent=2))
            return EXIT_OK
        text = render_text(data)
        if args.once:
            print(text)
            return EXIT_OK
        sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
        sys.stdout.flush()
        try:
            asyncio.run(asyncio.sleep(args.every))
        except KeyboardInterrupt:
            return EXIT_OK
    return EXIT_FAILED
