"""Bulk traffic between the run engine and the metadata store, through the drivers' own fast paths.

A run moves up to a million rows each way: the export's delivered state into the workspace (as
CSV text: PostgreSQL's COPY, SQLite's ``group_concat`` in keyset chunks), the plan's rows into
``run_members`` (COPY; ``executemany`` with few bound values), and the rows still to send back
(the DBAPI cursor, not the ORM). Each row costs no Python object more than it must.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.engine.rows import COLUMNS, PlanRow
from segmentsync.engine.workspace import Workspace, sql_path

DELIVERED_CHUNK = 100_000  # members per piece of CSV text read from SQLite
# DuckDB's CSV reader holds a buffer per thread (32 MB by default: ≈ 45 MB more resident memory
# at a million members); a member's line is an email (≤ 320), a hash and its profile key.
MAX_LINE = 1 << 20


@dataclass(frozen=True)
class CsvQuery:
    """Rows of the metadata store, as CSV lines, for the workspace's table ``table``.

    ``sqlite`` takes (key, after, limit) and returns (lines, last keyset value, count);
    ``postgresql`` is a COPY with ``{key}``; ``start`` is the keyset value before the first row.
    """

    table: str
    columns: tuple[str, ...]  # all VARCHAR
    sqlite: str
    postgresql: str
    start: str | int


# Rows leave the metadata store as CSV text (quoted fields, a row a line) straight into a file of
# the run's workspace folder, which DuckDB reads: a million members cost no Python object each,
# and never sit in this process's memory whole (only DuckDB holds them, within its memory limit).
# SQLite: a chunk of lines at a time, in key order (after the last one).


def load_csv(ws: Workspace, session: Session, query: CsvQuery, key: int) -> None:
    """Fill the workspace's table of ``query`` from the metadata store, through a CSV file."""
    path = ws.folder / f"{query.table}.csv"
    with path.open("wb") as out:
        written = write_csv(session, query, key, out)
    columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in query.columns) + "}"
    if written:
        # Quoted fields keep commas, quotes and line breaks; an empty unquoted key is NULL, a
        # quoted one the empty string. The path is our own folder's: safe as a literal.
        source = (
            f"read_csv('{sql_path(path)}', header = false, auto_detect = false, "
            f"delim = ',', quote = '\"', escape = '\"', allow_quoted_nulls = false, "
            f"columns = {columns}, max_line_size = {MAX_LINE}, buffer_size = {2 * MAX_LINE})"
        )
        ws.con.execute(f"CREATE TABLE {query.table} AS SELECT * FROM {source}")  # noqa: S608  # see above
    else:
        names = ", ".join(f"{name} VARCHAR" for name in query.columns)
        ws.con.execute(f"CREATE TABLE {query.table} ({names})")
    path.unlink()


def write_csv(session: Session, query: CsvQuery, key: int, out: BinaryIO) -> int:
    """Write the rows of ``query`` to ``out`` as CSV; returns the bytes written.

    PostgreSQL: one COPY. SQLite: a chunk of lines at a time, by keyset (each chunk's last key).
    """
    connection = session.connection()
    raw: Any = connection.connection.driver_connection  # psycopg or sqlite3: their own bulk paths
    written = 0
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(query.postgresql.format(key=int(key))) as copy:
            for data in copy:
                written += out.write(data)
        return written
    after = query.start
    while True:
        text, last, count = raw.execute(query.sqlite, (key, after, DELIVERED_CHUNK)).fetchone()
        if not count:
            return written
        written += out.write(bytes(text)) + out.write(b"\n")
        if count < DELIVERED_CHUNK:
            return written
        after = last


_PLAIN_INSERT = "INSERT INTO run_members ({names}) VALUES ({run_id}, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
_SENT_INSERT = "INSERT INTO run_members ({names}) VALUES ({run_id}, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"


def insert_members(session: Session, rows: Sequence[PlanRow]) -> None:
    """Bulk insert into run_members: COPY on PostgreSQL, executemany on SQLite."""
    connection = session.connection()
    raw = connection.connection.driver_connection
    names = ", ".join(COLUMNS)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY run_members ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]  # psycopg connection
            for row in rows:
                copy.write_row(row)
    elif rows:
        # Binding a parameter costs, even a NULL: a row with no code nor message (most rows) is
        # bound as six values, or seven with its outcome, with the run's id as a literal (970,000
        # rows: 2.3 s instead of 4.3 s in a bare script).
        plain, sent, others = [], [], []
        for row in rows:
            if row.code is not None or row.message is not None:
                others.append(row)
            elif row.outcome is None:
                plain.append(row[1:7])
            else:
                sent.append(row[1:8])
        sqlite: Any = raw
        run_id = int(rows[0].run_id)
        if plain:
            sqlite.executemany(_PLAIN_INSERT.format(names=names, run_id=run_id), plain)
        if sent:
            sqlite.executemany(_SENT_INSERT.format(names=names, run_id=run_id), sent)
        if others:
            marks = ", ".join("?" for _ in COLUMNS)
            sqlite.executemany(f"INSERT INTO run_members ({names}) VALUES ({marks})", others)  # noqa: S608  # our columns


# PostgreSQL's own rule for stale statistics (the defaults of autovacuum_analyze_threshold and
# autovacuum_analyze_scale_factor): more than 50 rows + 10 % of the table written since they were taken.
STALE_ROWS = 50
STALE_SHARE = 0.1


def analyze(session: Session, stored: int) -> bool:
    """Fresh statistics of ``run_members`` after a run stored ``stored`` rows in it, if they are
    now stale (PostgreSQL only): the send phase's reads are then planned well (a page of them
    352 → 12.6 ms on a table filled from empty). Whether they are stale is one catalog figure;
    ANALYZE itself samples the whole table (3 s in a year-old store), and runs that store little
    (an unchanged re-run stores nothing) would otherwise pay it every time, queued one behind the
    other (it takes a lock that conflicts with itself). Returns whether it analysed."""
    if session.connection().dialect.name != "postgresql":
        return False
    # reltuples: the rows the statistics last counted (-1: never taken, or emptied since). The
    # writes of many small runs together are autovacuum's to notice (docs/operations.md), not a run's.
    known = session.scalar(sa.text("SELECT reltuples FROM pg_class WHERE oid = 'run_members'::regclass"))
    if known >= 0 and stored <= STALE_ROWS + STALE_SHARE * known:
        return False
    session.execute(sa.text("ANALYZE run_members"))
    return True


def raw_rows(session: Session, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of a query written with ``?`` placeholders, through the DBAPI cursor."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        query = query.replace("?", "%s")
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]  # a DBAPI connection
    try:
        cursor.execute(query, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()
