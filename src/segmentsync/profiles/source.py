"""The profile source: where profiles live (DuckDB embedded by default, any Ibis backend by URL).

``ProfileSource.from_settings(settings)`` reads ``profiles_url`` (default
``duckdb://<data_dir>/profiles.duckdb``), ``profiles_table`` and ``profiles_key``. The URL is any
Ibis backend URL: tested on DuckDB, PostgreSQL (``postgresql://user@host:5432/db``) and Spark
(``pyspark:///warehouse/dir?spark.master=local[2]``); Snowflake, BigQuery, Trino and ClickHouse work
the same way through their Ibis backends. All segment work runs inside that engine.

What the run engine and the segment service call (keep these names):

* ``source.key`` — the unique key column; ``source.columns()`` — ``{name: ColumnType}``;
  ``source.table()`` — the Ibis table (schema read fresh on every call);
* ``source.members(rules, columns)`` — ONE filtered table for the union of several segments
  (OR of their filters: one scan, each profile once), with the key and the requested columns;
* ``source.stream(expr, batch_rows=...)`` — Arrow record batches of at most ``batch_rows`` rows;
* ``source.count(expr)`` — the number of rows of a table expression; ``source.close()``.

Expressions must be executed through ``stream``/``count`` (not ``expr.execute()``): for DuckDB
files and PostgreSQL every query runs on its own short-lived connection (DuckDB: read-only), so
that a ``profiles load`` in another process can take the write lock between queries and
concurrent queries (a web preview while a run streams) never share a connection.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.common.exceptions as ibis_errors
import ibis.expr.types as ir
import pyarrow as pa

from segmentsync.errors import ConfigError, Invalid, NotFound, Retriable
from segmentsync.profiles import store
from segmentsync.profiles.columns import ColumnType, column_type
from segmentsync.segments.compile import compile_filter
from segmentsync.settings import Settings

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from segmentsync.segments.rules import Group

__all__ = ["Attachable", "ColumnType", "ProfileSource"]

# Engines cheap to connect to: one connection per query (see the module docstring).
PER_QUERY_ENGINES = frozenset({"duckdb", "postgres"})
DEFAULT_BATCH_ROWS = 10_000


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = urllib.parse.urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":•••@", 1)
    return urllib.parse.urlunparse(parsed._replace(netloc=netloc))


def engine_name(url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgres``; ``duckdb:///x`` → ``duckdb``."""
    scheme = urllib.parse.urlparse(url).scheme.split("+", 1)[0]
    return "postgres" if scheme in ("postgresql", "postgres") else scheme


@dataclass(frozen=True)
class Attachable:
    """A query over a DuckDB profile file (see :meth:`ProfileSource.attachable`); its table names
    are the file's own, unqualified."""

    path: Path
    sql: str
    lock_wait: float


class ProfileSource:
    def __init__(
        self,
        url: str,
        *,
        table: str = "profiles",
        key: str = "profile_id",
        lock_wait: float = store.LOCK_WAIT_SECONDS,
    ) -> None:
        self.url = url
        self.engine = engine_name(url)
        self.table_name = table
        self.key = key
        self.lock_wait = lock_wait
        self._file = store.duckdb_file(url)
        self._shared: BaseBackend | None = None
        self._shared_lock = threading.Lock()
        self._table: tuple[tuple[int, ...], ir.Table] | None = None  # a DuckDB file's, by its stamp

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfileSource:
        return cls(settings.resolved_profiles_url, table=settings.profiles_table, key=settings.profiles_key)

    def __repr__(self) -> str:
        return f"ProfileSource({redact(self.url)!r}, table={self.table_name!r}, key={self.key!r})"

    # -- connections -------------------------------------------------------------------------

    def warm(self) -> None:
        """Import this source's Ibis backend now (0.2-0.3 s the first time in a process; nothing
        is connected): a worker that has just started then does not spend it in its first run."""
        getattr(ibis, "duckdb" if self._file is not None else self.engine)

    @contextmanager
    def _backend(self) -> Iterator[BaseBackend]:
        if self._file is not None:
            con = store.connect(self._file, read_only=True, lock_wait=self.lock_wait)
            try:
                yield ibis.duckdb.from_connection(con)
            finally:
                con.close()
        elif self.engine in PER_QUERY_ENGINES:
            backend = self._connect()
            try:
                yield backend
            finally:
                backend.disconnect()
        else:
            yield self._shared_backend()

    def _shared_backend(self) -> BaseBackend:
        with self._shared_lock:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared

    def _connect(self) -> BaseBackend:
        try:
            if self.engine == "pyspark":
                return _connect_pyspark(self.url)
            url = self.url if self.engine != "postgres" else "postgres://" + self.url.split("://", 1)[1]
            return ibis.connect(url)
        except (ConfigError, ModuleNotFoundError):
            raise
        except Exception as exc:  # any driver's connect failure: report it without the password
            raise Retriable(
                f"cannot connect to the profile source {redact(self.url)}: {exc.__class__.__name__}: {exc}",
                code="profile_source_unreachable",
            ) from exc

    def close(self) -> None:
        """Release the shared connection, if any (per-query connections are closed already).

        A Spark session is process-wide and is left running for the process to stop at exit.
        """
        with self._shared_lock:
            shared, self._shared = self._shared, None
        if shared is not None and self.engine != "pyspark":
            shared.disconnect()

    # -- introspection -----------------------------------------------------------------------

    def table(self) -> ir.Table:
        """The profile table as an Ibis expression (its schema read now; a DuckDB file's is kept
        until the file changes: opening the file costs 40-60 ms, and a count or a preview would
        open it twice)."""
        stamp = self._stamp()
        kept = self._table
        if stamp is not None and kept is not None and kept[0] == stamp:
            return kept[1]
        with self._backend() as backend:
            table = self._open_table(backend)
        if stamp is not None and stamp == self._stamp():
            self._table = (stamp, table)
        return table

    def _stamp(self) -> tuple[int, ...] | None:
        """The DuckDB file's (and its write-ahead log's) modification time, size and inode: a
        load changes one of them. None for other engines or a file that is not there."""
        if self._file is None:
            return None
        stamp: list[int] = []
        for path in (self._file, self._file.with_name(self._file.name + ".wal")):
            try:
                found = path.stat()
            except FileNotFoundError:
                stamp += [0, -1, 0]
                continue
            except OSError:
                return None
            stamp += [found.st_mtime_ns, found.st_size, found.st_ino]
        return tuple(stamp) if stamp[1] >= 0 else None

    def _open_table(self, backend: BaseBackend) -> ir.Table:
        database, _, name = self.table_name.rpartition(".")
        try:
            table = backend.table(name, database=database or None)
        except ibis_errors.TableNotFound as exc:
            raise NotFound(
                f"the profile table {self.table_name!r} does not exist in {redact(self.url)}"
                f"{_listing(backend)}; load profiles first or set SEGMENTSYNC_PROFILES_TABLE",
                code="no_profile_table",
            ) from exc
        if self.key not in table.columns:
            raise ConfigError(
                f"the key column {self.key!r} is not in the profile table {self.table_name!r} "
                f"(its columns: {', '.join(table.columns)}); set SEGMENTSYNC_PROFILES_KEY",
                code="no_key_column",
            )
        return table

    def columns(self) -> dict[str, ColumnType]:
        """Every column of the profile table with its segment-level type, in table order."""
        return {name: column_type(dtype) for name, dtype in self.table().schema().items()}

    def describe(self) -> list[tuple[str, str, ColumnType]]:
        """(name, the engine's type, segment-level type) per column, for ``profiles show``."""
        return [(name, str(dtype), column_type(dtype)) for name, dtype in self.table().schema().items()]

    # -- segments ------------------------------------------------------------------------------

    def segment(self, rule: Group, *, now: datetime | None = None) -> ir.Table:
        """The profiles one rule selects (all columns)."""
        table = self.table()
        return table.filter(compile_filter(rule, table, now=now))

    def members(
        self, rules: Sequence[Group], columns: Sequence[str], *, now: datetime | None = None
    ) -> ir.Table:
        """The union of several segments as one table: key + ``columns``, each profile once."""
        if not rules:
            raise Invalid("members of no segment were asked for: give at least one segment rule")
        table = self.table()
        unknown = [name for name in columns if name not in table.columns]
        if unknown:
            raise Invalid(
                f"unknown profile column(s): {', '.join(unknown)} (the profile table has: "
                f"{', '.join(table.columns)})",
                code="unknown_column",
            )
        wanted = list(dict.fromkeys([self.key, *columns]))
        condition = reduce(or_, (compile_filter(rule, table, now=now) for rule in rules))
        return table.filter(condition).select(*wanted)

    def counts(self, rules: Sequence[Group], *, now: datetime | None = None) -> list[int]:
        """The member count of each rule, all in one scan of the profile table."""
        if not rules:
            return []

        table = self.table()

        def flag(rule: Group) -> ir.IntegerColumn:
            value = compile_filter(rule, table, now=now).ifelse(1, 0)
            if isinstance(value, ir.Scalar):  # a rule with no conditions: everyone (or no one)
                value = table[self.key].isnull().ifelse(value, value)
            return value

        sums = {f"c{i}": flag(rule).sum().fill_null(0) for i, rule in enumerate(rules)}
        with self._backend() as backend:
            row = _arrow(backend, table.aggregate(**sums)).to_pylist()[0]
        return [int(row[f"c{i}"]) for i in range(len(rules))]

    # -- execution ---------------------------------------------------------------------------

    def stream(self, expr: ir.Table, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows of ``expr`` as Arrow record batches of at most ``batch_rows`` rows.

        Never materialises the result as Python objects. (Ibis's PySpark backend collects the
        result on the driver as Arrow before slicing it; DuckDB and PostgreSQL stream.)
        """
        if batch_rows < 1:
            raise Invalid("batch_rows must be at least 1", field="batch_rows")
        with self._backend() as backend:
            reader = backend.to_pyarrow_batches(expr, chunk_size=batch_rows)
            for batch in reader:
                for offset in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(offset, batch_rows)

    def attachable(self, expr: ir.Table) -> Attachable | None:
        """For a DuckDB file: the file and ``expr`` as DuckDB SQL, for a DuckDB of our own that
        attaches the file and runs the query itself (a run's workspace: no second engine, no Arrow
        through Python). None for any other engine: use :meth:`stream`."""
        if self._file is None:
            return None
        return Attachable(self._file, str(ibis.to_sql(expr, dialect="duckdb")), self.lock_wait)

    def count(self, expr: ir.Table) -> int:
        """The number of rows of a table expression."""
        with self._backend() as backend:
            return int(_arrow(backend, expr.count().name("n").as_table()).column(0)[0].as_py())

    def preview(self, expr: ir.Table, *, limit: int) -> pa.Table:
        """The first ``limit`` rows of ``expr`` (ordered by the key, so the answer is stable)."""
        with self._backend() as backend:
            return _arrow(backend, expr.order_by(self.key).limit(limit))

    def row_count(self) -> int:
        return self.count(self.table())


def _arrow(backend: BaseBackend, expr: ir.Table) -> pa.Table:
    """The whole result of ``expr`` as an Arrow table.

    On DuckDB, the compiled SQL straight on the connection, cast to the expression's schema as
    Ibis does: Ibis's own ``to_pyarrow`` and ``execute`` import pandas for their result converters
    (0.26 s and 46 MB of resident memory here), which a segment count or preview does not need.
    """
    if backend.name != "duckdb":
        result: pa.Table = backend.to_pyarrow(expr)
        return result
    sql = backend.compile(expr)
    table: pa.Table = backend.con.sql(sql).to_arrow_table()
    return table.cast(expr.schema().to_pyarrow())


def _listing(backend: BaseBackend) -> str:
    try:
        tables = [name for name in backend.list_tables() if not name.startswith(store.STAGING_PREFIX)]
    except Exception:  # listing is only a hint in an error message
        return ""
    return f" (tables there: {', '.join(tables[:20])})" if tables else " (it has no tables)"


def _connect_pyspark(url: str) -> BaseBackend:
    """``pyspark:///warehouse/dir?spark.master=local[2]&spark.x=y`` → an Ibis PySpark backend.

    Ibis's own ``ibis.connect("pyspark://…")`` sets static options such as the warehouse directory
    after the session exists, which Spark 4 refuses; so the session is built here, options first.
    """
    try:
        # lazy: pyspark is an optional extra (spark), imported only for a Spark source
        from pyspark.sql import SparkSession
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the profile source is Spark but pyspark is not installed: install segmentsync[spark]",
            code="pyspark_missing",
        ) from exc
    parsed = urllib.parse.urlparse(url)
    options: dict[str, Any] = dict(urllib.parse.parse_qsl(parsed.query))
    warehouse = parsed.netloc + parsed.path
    if warehouse:
        options.setdefault("spark.sql.warehouse.dir", str(Path(warehouse).absolute()))
    options.setdefault("spark.ui.showConsoleProgress", "false")
    builder = SparkSession.builder
    for name, value in options.items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    return ibis.pyspark.connect(session)
