"""The embedded profile store: one DuckDB file in the data directory.

DuckDB lets one process write a file, or several processes read it, never both at once. The web
server, a worker and a CLI ``profiles load`` are different processes, so every connection here is
short-lived: readers open the file read-only for one query, writers for one load, and a lock held
by someone else is waited for briefly, then reported clearly (:class:`~segmentsync.errors.Retriable`,
so that a run retries later instead of failing for good).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from segmentsync import files
from segmentsync.errors import ConfigError, Invalid, NotFound, Retriable
from segmentsync.settings import Settings

T = TypeVar("T")

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STAGING_PREFIX = "_segmentsync_staging_"
LOCK_WAIT_SECONDS = 10.0


def duckdb_file(url: str) -> Path | None:
    """The file a ``duckdb://`` URL names; None for other engines and in-memory DuckDB."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "duckdb":
        return None
    path = parsed.netloc + parsed.path
    if not path or path == ":memory:":
        return None
    return Path(path).absolute()


def embedded_path(settings: Settings) -> Path:
    """The embedded DuckDB file that ``profiles load`` and ``generate`` write into."""
    url = settings.resolved_profiles_url
    path = duckdb_file(url)
    if path is None:
        scheme = urllib.parse.urlparse(url).scheme or url
        raise ConfigError(
            "profiles load and generate write into the embedded DuckDB store, but the profile source is a %(scheme)s engine (SEGMENTSYNC_PROFILES_URL); load data with that engine's own tools",
            params={"scheme": scheme},
            code="not_embedded",
        )
    return path


def check_identifier(name: str, *, what: str) -> str:
    """A table name we create ourselves: plain letters, digits and underscores only."""
    if not IDENTIFIER.match(name):
        raise Invalid(
            "%(what)s %(name)s is not allowed: use letters, digits and underscores, starting with a letter (at most 63 characters)",
            params={"what": what, "name": repr(name)},
            field=what.replace(" ", "_"),
        )
    return name


def quote(identifier: str) -> str:
    """A SQL identifier in double quotes (for names already checked or read from the catalog)."""
    return '"' + identifier.replace('"', '""') + '"'


def _lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "different configuration" in text


def connect(
    path: Path, *, read_only: bool, lock_wait: float = LOCK_WAIT_SECONDS
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting up to ``lock_wait`` seconds for another process's lock."""
    if read_only and not path.exists():
        raise _no_store(path)
    return _waiting_for_lock(path, lock_wait, lambda: duckdb.connect(str(path), read_only=read_only))


def attach(
    con: duckdb.DuckDBPyConnection, path: Path, alias: str, *, lock_wait: float = LOCK_WAIT_SECONDS
) -> None:
    """Attach the file read-only to another DuckDB as ``alias`` (``check_identifier``-safe),
    waiting for another process's lock as :func:`connect` does."""
    if not path.exists():
        raise _no_store(path)
    literal = "'" + str(path).replace("'", "''") + "'"
    _waiting_for_lock(path, lock_wait, lambda: con.execute(f"ATTACH {literal} AS {quote(alias)} (READ_ONLY)"))


def _no_store(path: Path) -> NotFound:
    return NotFound(
        "there is no profile store at %(path)s yet: load profiles with `segmentsync profiles load FILE` or create synthetic ones with `segmentsync profiles generate --rows N`",
        params={"path": path},
        code="no_profile_store",
    )


def _waiting_for_lock(path: Path, lock_wait: float, open_it: Callable[[], T]) -> T:
    deadline = time.monotonic() + lock_wait
    delay = 0.05
    while True:
        try:
            return open_it()
        except duckdb.Error as exc:
            if not _lock_conflict(exc):
                raise ConfigError(
                    "cannot open the profile store %(path)s: %(exc)s", params={"path": path, "exc": exc}
                ) from exc
            if time.monotonic() + delay > deadline:
                raise Retriable(
                    "the profile store %(path)s is locked by another process (a `profiles load` or `profiles generate` that is still running?); try again when it has finished. DuckDB says: %(exc)s",
                    params={"path": path, "exc": exc},
                    code="profile_store_locked",
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextmanager
def writer(path: Path, *, lock_wait: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for one load, closed afterwards so that readers can come back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(path, read_only=False, lock_wait=lock_wait)
    wal = path.with_name(path.name + ".wal")
    files.private_files(path, wal)  # DuckDB creates them with the umask's mode
    try:
        # Progress is polled from another thread (query_progress); DuckDB must not print its own.
        con.execute("SET TimeZone = 'UTC'")  # dates become instants the same way everywhere
        con.execute("SET enable_progress_bar = true")
        con.execute("SET enable_progress_bar_print = false")
        yield con
        files.private_files(path, wal)  # the log written meanwhile
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?",
        [name],
    ).fetchone()
    return bool(row and row[0])


def column_names(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [row[0] for row in rows]


def staging_name(table: str) -> str:
    return STAGING_PREFIX + table


def drop_staging(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f"DROP TABLE IF EXISTS {quote(staging_name(table))}")


def swap_in(con: duckdb.DuckDBPyConnection, table: str, *, append: bool) -> None:
    """Make the validated staging table the profile table, in one transaction.

    Replace drops the old table and renames the staging one; append inserts its rows by column
    name. Either all of it happens or none (the previous table stays intact).
    """
    staging = quote(staging_name(table))
    con.execute("BEGIN TRANSACTION")
    try:
        if append:
            # S608 is wrong here: both names are quoted identifiers and there are no values
            con.execute(f"INSERT INTO {quote(table)} BY NAME SELECT * FROM {staging}")  # noqa: S608
            con.execute(f"DROP TABLE {staging}")
        else:
            con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            con.execute(f"ALTER TABLE {staging} RENAME TO {quote(table)}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
