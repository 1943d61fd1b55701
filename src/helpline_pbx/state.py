"""The line's state folder (roster, token keys, secrets): nobody but the service's user reads it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# What the service creates (SQLite files, keys, anything else) is its user's only, whatever umask it got.
PRIVATE_UMASK = 0o077


def keep_private() -> None:
    os.umask(PRIVATE_UMASK)


def private_folder(path: Path) -> None:
    """Create the state folder 0700, or take group and world read/write away from an existing one.

    Search (x) bits are left on an existing folder: with the host's own Asterisk its folders live inside
    the state folder (scripts/asterisk.sh makes it 0711 then), and traversing reveals no name.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o066:
        path.chmod(mode & ~0o066)
