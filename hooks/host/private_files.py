"""The host's files are its owner's alone: the SQLite database, its WAL, and the demo key file.

The database holds contacts and chat transcripts, the key file opens every secret. So a file is
made ``0600`` before anything is written to it (SQLite gives its ``-wal`` and ``-shm`` files the
database's own mode), in a folder made ``0700``: other users of the machine can neither read the
data nor list, replace or plant files beside it (a ``-wal`` planted before a start would be read
as part of the database).

A folder or file that exists already with a wider mode is tightened, and the log says so: the
host's user owns it, and the data must not stay readable. Two cases stop the start instead, with
a clear message: a folder others may write to (``/tmp``, a group's folder: what they planted or
replaced there is not undone by tightening it now, and tightening a shared folder would break it
for everyone), and a folder or file the host cannot tighten (another user's).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("hooks.host.files")

FOLDER_MODE = 0o700
FILE_MODE = 0o600
# The files SQLite keeps beside a database; each takes the database's mode when SQLite makes it.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class UnsafeStorage(ValueError):
    """A folder or file of the host's data cannot be made owner-only: the host must not start."""


def private_folder(folder: Path) -> None:
    """``folder`` (and its parents, if missing) exists, with ``folder`` itself owner-only."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeStorage(
            f"the folder {folder} is shared (mode {mode:04o}: others may write to it), so it"
            " cannot hold the host's data: give the database a folder of its own"
            " (the host makes it owner-only)"
        )
    _owner_only(folder, mode, FOLDER_MODE, "folder")


def private_file(path: Path) -> None:
    """``path`` exists (empty if it is new), owner-only, in an owner-only folder."""
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    tighten_file(path)


def private_sqlite_files(path: Path) -> None:
    """The database file before SQLite opens it, and whatever SQLite kept beside it before."""
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            tighten_file(companion)


def tighten_file(path: Path) -> None:
    """An existing file loses whatever permission it gave other users."""
    _owner_only(path, stat.S_IMODE(path.stat().st_mode), FILE_MODE, "file")


def _owner_only(path: Path, current: int, allowed: int, what: str) -> None:
    """``path``, of mode ``current``, loses every permission bit outside ``allowed``."""
    if current & ~allowed == 0:
        return
    try:
        path.chmod(current & allowed)
    except PermissionError:
        raise UnsafeStorage(
            f"the {what} {path} is open to other users (mode {current:04o}) and belongs to"
            f" another user: give the host's data a {what} of its own"
        ) from None
    log.warning(
        "made the %s %s owner-only (mode %04o, was %04o)", what, path, current & allowed, current
    )
