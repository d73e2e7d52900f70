"""Plan a run against what the export last delivered, then store it as the run's members.

The export's delivered state (email and hash of each member it put on the list) is read once
from the metadata store into the run's workspace, where set operations decide each member's
action: never delivered → *new*; delivered with another hash → *update*; the same hash →
*unchanged* (nothing to send); delivered but gone from the snapshot → *remove* (mirror mode).
Only then are the rows to send rendered by the destination's SQL template (the platform's JSON,
fitting notes, refusals). The plan is appended group by group, so a row's ``seq`` is its place
and each batch is a contiguous range of ``seq`` — no sort of a million wide rows:

    to send · to remove · refused · unchanged · invalid

It is then written to ``run_members`` (COPY on PostgreSQL), but for the unchanged members, which
are kept compactly in ``run_unchanged`` (zlib-compressed lines, in chunks). Unchanged, invalid and
refused members get their outcome at once and no payload; only what is sent is stored in full.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.destinations.templates import RowTemplate
from segmentsync.engine.snapshot import SORTING_MEMORY_LIMIT, Workspace, sql_path
from segmentsync.exports.models import MemberAction

COLUMNS = ("run_id", "seq", "email", "profile_key", "hash", "payload", "action", "outcome", "code", "message")
SAMPLE_SIZE = 5
MIRROR_GUARD_SHARE = 0.5
CHUNK_ROWS = 10000


@dataclass
class Plan:
    new: int = 0
    update: int = 0
    unchanged: int = 0
    remove: int = 0
    invalid: int = 0
    refused: int = 0  # rows the platform would refuse (its template says why): rejected, not sent
    delivered_before: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def to_send(self) -> int:
        return self.new + self.update + self.remove

    def with_sent(self, sent: dict[str, int]) -> Plan:
        """This plan and what an earlier attempt of the run already sent (:func:`restart`)."""
        return replace(
            self,
            new=self.new + sent.get("new", 0),
            update=self.update + sent.get("update", 0),
            remove=self.remove + sent.get("remove", 0),
        )

    def guard_trips(self) -> bool:
        """Would this plan take out more than half of what the list holds from us?"""
        return self.remove > 0 and self.remove > self.delivered_before * MIRROR_GUARD_SHARE

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "update": self.update,
            "unchanged": self.unchanged,
            "remove": self.remove,
            "invalid": self.invalid,
            "refused": self.refused,
            "delivered_before": self.delivered_before,
            "samples": self.samples,
        }


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


# The delivered state leaves the metadata store as CSV text (quoted fields, a row a line) straight
# into a file of the run's workspace folder, which DuckDB reads: a million members cost no Python
# object each, and never sit in this process's memory whole (only DuckDB holds them, within its
# memory limit). SQLite: a chunk of lines at a time, in key order (email after the last one).
_DELIVERED_CSV = CsvQuery(
    table="delivered",
    columns=("email", "hash", "profile_key"),
    sqlite=(
        "SELECT CAST(group_concat(line, char(10)) AS BLOB), max(email), count(*) FROM ("
        "SELECT '\"' || replace(email, '\"', '\"\"') || '\",\"' || hash || '\",' || "
        "coalesce('\"' || replace(profile_key, '\"', '\"\"') || '\"', '') AS line, email "
        "FROM delivered WHERE export_id = ? AND email > ? ORDER BY email LIMIT ?)"
    ),
    postgresql=(
        "COPY (SELECT email, hash, profile_key FROM delivered WHERE export_id = {key}) "
        "TO STDOUT (FORMAT csv, FORCE_QUOTE (email, hash))"
    ),
    start="",
)


def load_delivered(ws: Workspace, session: Session, export_id: int) -> None:
    """The export's delivered members (email, hash, profile key) as the workspace's table
    ``delivered`` (counted by :func:`plan`)."""
    _load_csv(ws, session, _DELIVERED_CSV, export_id)


# The e-mails an earlier attempt of the run already sent (see :func:`restart`), the same way.
_DONE_CSV = CsvQuery(
    table="done",
    columns=("email",),
    sqlite=(
        "SELECT CAST(group_concat(line, char(10)) AS BLOB), max(seq), count(*) FROM ("
        "SELECT '\"' || replace(email, '\"', '\"\"') || '\"' AS line, seq "
        "FROM run_members WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?)"
    ),
    postgresql="COPY (SELECT email FROM run_members WHERE run_id = {key}) TO STDOUT (FORMAT csv, FORCE_QUOTE (email))",
    start=0,
)


def load_done(ws: Workspace, session: Session, run_id: int) -> None:
    """The e-mails this run already sent in an earlier attempt, as the workspace's table ``done``:
    :func:`plan` leaves them out (they keep the outcome they had)."""
    _load_csv(ws, session, _DONE_CSV, run_id)


def _load_csv(ws: Workspace, session: Session, query: CsvQuery, key: int) -> None:
    """Fill the workspace's table of ``query`` from the metadata store, through a CSV file."""
    path = ws.folder / f"{query.table}.csv"
    with path.open("wb") as out:
        written = _write_csv(session, query, key, out)
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


def _write_csv(session: Session, query: CsvQuery, key: int, out: BinaryIO) -> int:
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


_NOT_DONE = "NOT EXISTS (SELECT 1 FROM done x WHERE x.email = {email})"  # sent by an earlier attempt

# What a run asks of its destination when (and only when) it has rows to send.
Template = Callable[[], RowTemplate]
Keep = Callable[[int, int, int], None]
TO_SEND = "action IN ('new', 'update')"


def plan(
    ws: Workspace,
    *,
    full_resync: bool,
    mirror: bool,
    template: Template | None,
    done: bool = False,
    keep: Keep | None = None,
) -> Plan:
    """Decide each member's action in the workspace (table ``planned``); returns the counts.

    The workspace holds the snapshot's ``members`` and the export's ``delivered`` state
    (:func:`load_delivered`); both are dropped once the plan is made. ``done``: the workspace
    also holds the e-mails an earlier attempt of this run sent (:func:`load_done`), which this
    plan leaves out — those members keep the outcome they got (an invalid row is planned again).
    ``keep`` is called with (rows to send, rows to remove, delivered members) once those are known
    and while the snapshot's ``members`` are still there (to keep them: ``snapshot.save``).

    The rows to send are then rendered by the destination's ``template`` — asked for only if
    there is something to send, so an unchanged run does not call the platform at all. It is asked
    for on a thread of its own as soon as that is known, while ``keep`` runs: the template may
    read the list's fields from the platform, one request whose latency need not wait.
    """
    delivered_before = ws.count("SELECT count(*) FROM delivered")
    unchanged = "'update'" if full_resync else "'unchanged'"
    ws.con.execute(
        f"""
        CREATE TABLE planned_unordered AS
        SELECT m.* EXCLUDE (problem, message),
          CASE
            WHEN m.problem IS NOT NULL THEN 'invalid'
            WHEN d.email IS NULL THEN 'new'
            WHEN d.hash = m.hash THEN {unchanged}
            ELSE 'update'
          END AS action,
          m.problem AS code, m.message
        FROM members m LEFT JOIN delivered d ON d.email = m.email  -- one equality: a hash join
        {"WHERE m.problem IS NOT NULL OR " + _NOT_DONE.format(email="m.email") if done else ""}
        """  # noqa: S608  # constants chosen above
    )
    if mirror:
        ws.con.execute(
            f"""
            INSERT INTO planned_unordered (email, profile_key, hash, action)
            SELECT d.email, d.profile_key, d.hash, 'remove' FROM delivered d
            WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.problem IS NULL AND m.email = d.email)
            {"AND " + _NOT_DONE.format(email="d.email") if done else ""}
            """  # noqa: S608  # constants
        )
    if done:
        ws.con.execute("DROP TABLE done")
    sending = ws.count(f"SELECT count(*) FROM planned_unordered WHERE {TO_SEND}")  # noqa: S608  # a constant
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="template") as pool:  # waits for it on errors
        rendering: Future[RowTemplate] | None = (
            pool.submit(template) if template is not None and sending else None
        )
        if keep is not None:
            keep(
                sending,
                ws.count("SELECT count(*) FROM planned_unordered WHERE action = 'remove'"),
                delivered_before,
            )
        ws.con.execute("DROP TABLE members")  # planned_unordered holds what is left to do with them
        ws.con.execute("DROP TABLE delivered")
        _order(ws, rendering.result() if rendering is not None else None)
    ws.con.execute("DROP TABLE planned_unordered")
    counts = dict(
        ws.con.execute(
            "SELECT CASE WHEN outcome = 'rejected' THEN 'refused' ELSE action END AS kind, count(*) "
            "FROM planned GROUP BY kind"
        ).fetchall()
    )
    result = Plan(
        new=int(counts.get("new", 0)),
        update=int(counts.get("update", 0)),
        unchanged=int(counts.get("unchanged", 0)),
        remove=int(counts.get("remove", 0)),
        invalid=int(counts.get("invalid", 0)),
        refused=int(counts.get("refused", 0)),
        delivered_before=delivered_before,
    )
    result.samples = _samples(ws)
    return result


_PLANNED = (
    "CREATE TABLE planned (email VARCHAR, profile_key VARCHAR, hash VARCHAR, payload VARCHAR, "
    "action VARCHAR, outcome VARCHAR, code VARCHAR, message VARCHAR)"
)
# The rows to send, rendered by the destination's template (each row once, as it is copied):
# the platform's JSON, and a note where fitting changed a value. In e-mail order (sorted before
# they are rendered, while narrower), so that each batch's checkpoint upserts a narrow range of the
# delivered state's e-mail key: a few pages of SQLite's index and WAL instead of one per member.
_SEND = """
INSERT INTO planned
SELECT email, profile_key, hash, CAST({row} AS VARCHAR) AS payload, action, NULL AS outcome,
  CASE WHEN note IS NOT NULL THEN 'fitted' ELSE code END AS code, coalesce(note, message) AS message
FROM (
  SELECT *, CAST({note} AS VARCHAR) AS note FROM planned_unordered WHERE {to_send} AND ({reject}) IS NULL
  ORDER BY email
)
"""
# Rows to send that the platform would refuse (the template says why): rejected here, not sent.
_REFUSED = """
INSERT INTO planned
SELECT email, profile_key, NULL, NULL, action, 'rejected', 'refused', reject
FROM (SELECT *, CAST({reject} AS VARCHAR) AS reject FROM planned_unordered WHERE {to_send})
WHERE reject IS NOT NULL
"""
# The others get their outcome at once, and keep no hash nor payload.
_REST = """
INSERT INTO planned
SELECT email, profile_key, NULL, NULL, action,
  CASE WHEN action IN ('unchanged', 'invalid') THEN action END, code, message
FROM planned_unordered WHERE action = ?
"""


def _order(ws: Workspace, template: RowTemplate | None) -> None:
    """Append the rows group by group: a row's seq is its place in ``planned`` (rowid + 1).

    Groups in seq order — to send · to remove · refused · unchanged · invalid — so that each
    batch is a contiguous range of seq. Only the rows to send are sorted (by e-mail, see _SEND);
    the rest are appended as scanned, and no row is copied more than once. ``template`` is None
    when there is nothing to send.
    """
    ws.con.execute(_PLANNED)
    if template is not None:
        row, note, reject = template.row, template.note, template.reject
        with ws.memory_at_most(SORTING_MEMORY_LIMIT):  # the sort spills rather than grow the peak
            ws.con.execute(
                _SEND.format(row=row.text, note=note.text, reject=reject.text, to_send=TO_SEND),
                [*row.params, *note.params, *reject.params],
            )
    ws.con.execute(_REST, ["remove"])
    if template is not None:
        ws.con.execute(
            _REFUSED.format(reject=template.reject.text, to_send=TO_SEND), list(template.reject.params)
        )
    for action in ("unchanged", "invalid"):
        ws.con.execute(_REST, [action])


def _samples(ws: Workspace) -> dict[str, list[dict[str, Any]]]:
    """A few members of each kind of change, for the dry-run report."""
    found: dict[str, list[dict[str, Any]]] = {}
    for action in MemberAction:
        rows = ws.con.execute(
            "SELECT email, profile_key, message FROM planned WHERE action = ? ORDER BY rowid LIMIT ?",
            [action.value, SAMPLE_SIZE],
        ).fetchall()
        if rows:
            found[action.value] = [
                {"email": email, "profile_key": key, **({"reason": message} if message else {})}
                for email, key, message in rows
            ]
    return found


UNCHANGED_CHUNK = 100_000


def unchanged(ws: Workspace, first_seq: int = 1) -> tuple[int, int, bytes] | None:
    """The unchanged members as (first seq, count, zlib of "email<TAB>key" lines), or None.

    They are one contiguous run of ``planned`` (see ``_order``); compressed a chunk at a time.
    ``first_seq`` is the seq of ``planned``'s first row.
    """
    first, count = ws.con.execute(
        "SELECT min(rowid), count(*) FROM planned WHERE action = 'unchanged'"
    ).fetchone() or (None, 0)
    if not count:
        return None
    compressor = zlib.compressobj(1)
    parts = []
    for start in range(int(first), int(first) + int(count), UNCHANGED_CHUNK):
        (text,) = ws.con.execute(
            "SELECT string_agg(email || chr(9) || "
            "coalesce(translate(profile_key, chr(9) || chr(10) || chr(13), '   '), ''), chr(10) ORDER BY rowid) "
            "FROM planned WHERE rowid >= ? AND rowid < ?",
            [start, min(start + UNCHANGED_CHUNK, int(first) + int(count))],
        ).fetchone() or ("",)
        parts.append(compressor.compress((("\n" if start != first else "") + text).encode()))
    parts.append(compressor.flush())
    return int(first) + first_seq, int(count), b"".join(parts)


def planned_rows(ws: Workspace, run_id: int, first_seq: int = 1) -> Iterator[list[tuple[Any, ...]]]:
    """The plan as ``run_members`` rows (COLUMNS), in chunks, in seq order from ``first_seq`` —
    but the unchanged members, which are kept compactly (:func:`unchanged`)."""
    # planned was filled in seq order, and the workspace keeps insertion order: no sort needed.
    # Through Arrow, column by column, rather than fetchmany's value by value: 100,000 rows in
    # 0.09 s instead of 0.24 s (a bare script on this machine).
    cursor = ws.con.execute(
        "SELECT ?, rowid + ?, email, profile_key, hash, payload, action, outcome, code, message FROM planned "
        "WHERE action <> 'unchanged'",
        [run_id, first_seq],
    )
    for batch in cursor.to_arrow_reader(CHUNK_ROWS):
        if batch.num_rows:
            yield list(zip(*batch.to_pydict().values(), strict=True))


_PLAIN_INSERT = "INSERT INTO run_members ({names}) VALUES ({run_id}, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
_SENT_INSERT = "INSERT INTO run_members ({names}) VALUES ({run_id}, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"


def insert_members(session: Session, rows: list[tuple[Any, ...]]) -> None:
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
            if row[8] is not None or row[9] is not None:
                others.append(row)
            elif row[7] is None:
                plain.append(row[1:7])
            else:
                sent.append(row[1:8])
        sqlite: Any = raw
        run_id = int(rows[0][0])
        if plain:
            sqlite.executemany(_PLAIN_INSERT.format(names=names, run_id=run_id), plain)
        if sent:
            sqlite.executemany(_SENT_INSERT.format(names=names, run_id=run_id), sent)
        if others:
            marks = ", ".join("?" for _ in COLUMNS)
            sqlite.executemany(f"INSERT INTO run_members ({names}) VALUES ({marks})", others)  # noqa: S608  # our columns


def analyze(session: Session) -> None:
    """Fresh statistics after a big insert: PostgreSQL then plans the send phase's reads well."""
    if session.connection().dialect.name == "postgresql":
        session.execute(sa.text("ANALYZE run_members"))


# What an earlier attempt sent is what the sender recorded: an outcome on a row that has a hash
# (the plan's own outcomes — refused, unchanged, invalid — come without one).
_NOT_SENT = "run_id = :run AND (outcome IS NULL OR hash IS NULL)"


def restart(session: Session, run_id: int) -> tuple[int, dict[str, int]]:
    """Before the run's snapshot is taken (again): keep only the rows an earlier attempt sent.

    A run sends while its plan is still being stored; if it stopped then, its next attempt plans
    again from its kept snapshot (``snapshot.restore``), without the members already sent
    (:func:`load_done`). Returns the first free seq and the kept rows by action (nothing kept on
    a first attempt: ``(1, {})``).
    """
    session.execute(sa.text(f"DELETE FROM run_members WHERE {_NOT_SENT}"), {"run": run_id})  # noqa: S608  # a constant
    session.execute(sa.text("DELETE FROM run_unchanged WHERE run_id = :run"), {"run": run_id})
    kept = session.execute(
        sa.text("SELECT action, count(*), max(seq) FROM run_members WHERE run_id = :run GROUP BY action"),
        {"run": run_id},
    ).all()
    last = max((int(seq) for _, _, seq in kept), default=0)
    return last + 1, {str(action): int(count) for action, count, _ in kept}
