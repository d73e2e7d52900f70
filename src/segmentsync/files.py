"""Private files: the data folder is 0700 and every data file in it 0600, whatever the umask.

The metadata store (SQLite, with its ``-wal`` and ``-shm`` files), the profile store (DuckDB,
with its ``.wal``), the key file and the run workspaces hold member emails, profile data and
encrypted secrets: nobody but the account that runs segmentsync may read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def _restrict(path: Path, mode: int) -> None:
    """``chmod`` to ``mode`` when it gives more away, if this account owns ``path``."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if stat.S_IMODE(info.st_mode) & ~mode == 0:
        return
    if info.st_uid != os.getuid():
        log.warning("%s is readable by others and owned by another account; cannot restrict it", path)
        return
    path.chmod(mode)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by this account only; restrict it if it exists."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _restrict(path, PRIVATE_DIR)
    return path


def private_file(path: Path, *, create: bool = False) -> Path:
    """Restrict ``path`` to this account (0600); with ``create``, create it empty first if missing.

    Creating it before the database engine opens it makes the engine keep the mode (SQLite gives
    its ``-wal`` and ``-shm`` files the mode of the database file).
    """
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    _restrict(path, PRIVATE_FILE)
    return path


def private_files(*paths: Path) -> None:
    for path in paths:
        private_file(path)
