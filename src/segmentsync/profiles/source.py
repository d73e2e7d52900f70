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

A segment is a rule (:class:`~segmentsync.segments.rules.Group`, compiled to a filter) or a
:class:`KeyQuery` (a SQL segment's checked query, or a dbt model's relation): the profiles whose
key the query returns, ``key IN (SELECT key FROM (query))``, pushed down to the engine like a rule.
A query runs on a locked-down connection — DuckDB: read-only, no file or network access, no
Python replacement scans; PostgreSQL: ``default_transaction_read_only``; Spark offers no read-only
session — and counting, previewing and reading its columns are stopped after ``sql_timeout``
seconds (DuckDB: interrupted; PostgreSQL: ``statement_timeout``; Spark: its job group cancelled).

Expressions must be executed through ``stream``/``count`` (not ``expr.execute()``): for DuckDB
files and PostgreSQL every query runs on its own short-lived connection (DuckDB: read-only), so
that a ``profiles load`` in another process can take the write lock between queries and
concurrent queries (a web preview while a run streams) never share a connection.
"""

from __future__ import annotations

import threading
import urllib.parse
import uuid
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
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot as sg

from segmentsync.errors import N_, ConfigError, Invalid, NotFound, Retriable
from segmentsync.profiles import store
from segmentsync.profiles.columns import ColumnType, column_type
from segmentsync.segments.compile import compile_filter
from segmentsync.settings import Settings

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from segmentsync.segments.rules import Group

__all__ = ["Attachable", "ColumnType", "ExtraColumns", "KeyQuery", "ProfileSource"]

# Engines cheap to connect to: one connection per query (see the module docstring).
PER_QUERY_ENGINES = frozenset({"duckdb", "postgres"})
DEFAULT_BATCH_ROWS = 10_000
_SQLGLOT_DIALECTS = {"pyspark": "spark"}  # the engine's name → sqlglot's, where they differ
JOIN_KEY = "segmentsync_segment_key"  # the key of a segment's query, in a join of its extra columns


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
class KeyQuery:
    """A segment given as a query returning profile keys: a SQL segment's query (checked by
    :func:`segmentsync.segments.sql.check`, in the engine's dialect) or ``SELECT key FROM`` a dbt
    model's relation. ``label`` names it in messages."""

    sql: str
    label: str = "the segment's query"


@dataclass(frozen=True)
class ExtraColumns:
    """Columns a segment's query returns besides the key, which an export maps: joined to the
    members by the key (a left join: a member the query does not return gets nulls). ``names``:
    (the query's column, its name among the members, e.g. ``segment.lifetime_value``); ``schema``:
    the query's columns and their types (:meth:`ProfileSource.query_schema`)."""

    query: KeyQuery
    names: tuple[tuple[str, str], ...]
    schema: ibis.Schema


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
        sql_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.sql_timeout = sql_timeout
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
        return cls(
            settings.resolved_profiles_url,
            table=settings.profiles_table,
            key=settings.profiles_key,
            sql_timeout=settings.sql_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"ProfileSource({redact(self.url)!r}, table={self.table_name!r}, key={self.key!r})"

    # -- connections -------------------------------------------------------------------------

    def warm(self) -> None:
        """Import this source's Ibis backend now (0.2-0.3 s the first time in a process; nothing
        is connected): a worker that has just started then does not spend it in its first run."""
        getattr(ibis, "duckdb" if self._file is not None else self.engine)

    @contextmanager
    def _backend(self, *, guarded: bool = False, timed: bool = False) -> Iterator[BaseBackend]:
        """A connection for one query. ``guarded``: the query holds a segment's SQL, so the
        connection is locked down (see the module docstring) and the engine's errors are the
        query's (:class:`Invalid`); ``timed``: also stopped after ``sql_timeout`` seconds."""
        if self._file is not None:
            con = store.connect(self._file, read_only=True, lock_wait=self.lock_wait)
            try:
                backend = ibis.duckdb.from_connection(con)
                if guarded:
                    for setting in ("enable_external_access", "python_enable_replacements"):
                        con.execute(f"SET {setting} = false")
                    con.execute("SET lock_configuration = true")  # after Ibis's own settings
                with self._guard(guarded, timed, con.interrupt):
                    yield backend
            finally:
                con.close()
        elif self.engine in PER_QUERY_ENGINES:
            backend = self._connect()
            try:
                if guarded and self.engine == "postgres":
                    backend.con.execute("SET default_transaction_read_only = on")
                    if timed:
                        ms = max(1, int(self.sql_timeout * 1000))
                        backend.con.execute(f"SET statement_timeout = {ms}")
                with self._guard(guarded, timed, None):
                    yield backend
            finally:
                backend.disconnect()
        else:
            backend = self._shared_backend()
            stop, done = _spark_job_group(backend) if guarded and timed else (None, None)
            try:
                with self._guard(guarded, timed, stop):
                    yield backend
            finally:
                if done is not None:
                    done()

    @contextmanager
    def _guard(self, guarded: bool, timed: bool, stop: Any) -> Iterator[None]:
        """Turn the engine's error of a segment's query into :class:`Invalid`, and stop the query
        (``stop()``) once ``sql_timeout`` seconds have passed."""
        if not guarded:
            yield
            return
        fired, done = threading.Event(), threading.Event()

        def watch() -> None:
            if done.wait(self.sql_timeout):
                return
            fired.set()
            # Again and again until the query gives up: Spark cancels only the jobs already
            # started, and a query may still be planning when the time is up.
            while stop is not None and not done.is_set():
                stop()
                done.wait(0.25)

        watcher = threading.Thread(target=watch, name="sql-timeout", daemon=True) if timed else None
        if watcher is not None:
            watcher.start()
        try:
            yield
        except (Invalid, NotFound, ConfigError, Retriable, GeneratorExit):
            raise
        except Exception as exc:
            text = f"{exc.__class__.__name__}: {exc}"
            if fired.is_set() or "statement timeout" in text:
                raise Invalid(
                    "the segment's query ran longer than %(sql_timeout)s s and was stopped (SEGMENTSYNC_SQL_TIMEOUT_SECONDS); make it cheaper, e.g. join on keys, filter early",
                    params={"sql_timeout": format(self.sql_timeout, "g")},
                    code="sql_timeout",
                    field="sql",
                ) from None
            raise Invalid(
                "the segment's query failed in the engine (%(engine)s): %(value)s",
                params={"engine": self.engine, "value": _first_lines(str(exc))},
                code="sql_failed",
                field="sql",
                details={"engine_message": str(exc)[:2000]},
            ) from None
        finally:
            done.set()

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
                "cannot connect to the profile source %(value)s: %(name)s: %(exc)s",
                params={"value": redact(self.url), "name": exc.__class__.__name__, "exc": exc},
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
                "the profile table %(table_name)s does not exist in %(url)s%(tables)s; load profiles first or set SEGMENTSYNC_PROFILES_TABLE",
                params={
                    "table_name": repr(self.table_name),
                    "url": redact(self.url),
                    "tables": _listing(backend),
                },
                code="no_profile_table",
            ) from exc
        if self.key not in table.columns:
            raise ConfigError(
                "the key column %(key)s is not in the profile table %(table_name)s (its columns: %(names)s); set SEGMENTSYNC_PROFILES_KEY",
                params={
                    "key": repr(self.key),
                    "table_name": repr(self.table_name),
                    "names": ", ".join(table.columns),
                },
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

    def segment(self, selection: Group | KeyQuery, *, now: datetime | None = None) -> ir.Table:
        """The profiles one segment selects (all columns)."""
        table = self.table()
        return table.filter(self._condition(selection, table, now))

    def _condition(
        self, selection: Group | KeyQuery, table: ir.Table, now: datetime | None, backend: Any = None
    ) -> ir.BooleanValue:
        if isinstance(selection, KeyQuery):
            schema = ibis.schema({self.key: table.schema()[self.key]})
            # Only the key: the query may return more columns (an export maps them), and
            # ``IN (SELECT * …)`` takes one.
            only_key = f"SELECT {self._quoted(self.key)} FROM ({selection.sql}) AS segment_keys"  # noqa: S608
            source = table.op().source if backend is None else backend
            keys = ops.SQLQueryResult(only_key, schema, source).to_expr()
            return table[self.key].isin(keys[self.key])
        return compile_filter(selection, table, now=now)

    def _quoted(self, name: str) -> str:
        return str(
            sg.to_identifier(name, quoted=True).sql(dialect=_SQLGLOT_DIALECTS.get(self.engine, self.engine))
        )

    def members(
        self,
        rules: Sequence[Group | KeyQuery],
        columns: Sequence[str],
        *,
        now: datetime | None = None,
        extras: Sequence[ExtraColumns] = (),
    ) -> ir.Table:
        """The union of several segments as one table: key + ``columns``, each profile once, then
        the ``extras`` of segments' queries joined by the key (a query that returns a key twice
        makes that profile's row twice: :meth:`repeated_key` finds it)."""
        if not rules:
            raise Invalid("members of no segment were asked for: give at least one segment rule")
        table = self.table()
        unknown = [name for name in columns if name not in table.columns]
        if unknown:
            raise Invalid(
                "unknown profile column(s): %(names)s (the profile table has: %(names2)s)",
                params={"names": ", ".join(unknown), "names2": ", ".join(table.columns)},
                code="unknown_column",
            )
        wanted = list(dict.fromkeys([self.key, *columns]))
        if extras:
            return self._members_with_extras(table, rules, wanted, now, extras)
        condition = reduce(or_, (self._condition(rule, table, now) for rule in rules))
        return table.filter(condition).select(*wanted)

    def _members_with_extras(
        self,
        table: ir.Table,
        rules: Sequence[Group | KeyQuery],
        wanted: list[str],
        now: datetime | None,
        extras: Sequence[ExtraColumns],
    ) -> ir.Table:
        """The profile table left-joined by the key to each query whose columns are mapped, then
        filtered: a query joined says who it selects by its key being there, so it runs once (a
        second ``key IN (query)`` would run it twice: 4.8 s instead of 2.4 s at a million)."""
        joined, backend = table, table.op().source
        found: dict[str, str] = {}  # a query's SQL → its key's name in the join
        names: list[str] = []
        for index, extra in enumerate(extras):
            key = f"{JOIN_KEY}_{index}"
            schema = ibis.schema({**dict(extra.schema.items()), self.key: table.schema()[self.key]})
            query = ops.SQLQueryResult(extra.query.sql, schema, backend).to_expr()
            right = query.select(
                **{key: query[self.key]}, **{alias: query[name] for name, alias in extra.names}
            )
            joined = joined.left_join(right, joined[self.key] == right[key])
            found[extra.query.sql] = key
            names += [alias for _, alias in extra.names]
        conditions = [
            joined[found[rule.sql]].notnull()
            if isinstance(rule, KeyQuery) and rule.sql in found
            else self._condition(rule, joined, now, backend)
            for rule in rules
        ]
        return joined.filter(reduce(or_, conditions)).select(*wanted, *names)

    def repeated_key(self, expr: ir.Table) -> tuple[Any, int] | None:
        """A key that ``expr`` holds more than once, and how many times (None: each once)."""
        counted = expr.group_by(self.key).aggregate(n=expr.count())
        found = counted.filter(counted.n > 1).order_by(self.key).limit(1)
        query = _has_query(expr)
        with self._backend(guarded=query, timed=query) as backend:
            rows = _arrow(backend, found).to_pylist()
        return (rows[0][self.key], int(rows[0]["n"])) if rows else None

    def counts(self, rules: Sequence[Group | KeyQuery], *, now: datetime | None = None) -> list[int]:
        """The member count of each segment: the rules all in one scan of the profile table, each
        query on its own (Spark takes no ``IN (subquery)`` inside an aggregate)."""
        if not rules:
            return []

        table = self.table()

        def flag(rule: Group) -> ir.IntegerColumn:
            value = compile_filter(rule, table, now=now).ifelse(1, 0)
            if isinstance(value, ir.Scalar):  # a rule with no conditions: everyone (or no one)
                value = table[self.key].isnull().ifelse(value, value)
            return value

        found: dict[int, int] = {}
        plain = [(i, rule) for i, rule in enumerate(rules) if not isinstance(rule, KeyQuery)]
        if plain:
            sums = {f"c{i}": flag(rule).sum().fill_null(0) for i, rule in plain}
            with self._backend() as backend:
                row = _arrow(backend, table.aggregate(**sums)).to_pylist()[0]
            found = {i: int(row[f"c{i}"]) for i, _ in plain}
        for i, rule in enumerate(rules):
            if isinstance(rule, KeyQuery):
                found[i] = self.count(table.filter(self._condition(rule, table, now)))
        return [found[i] for i in range(len(rules))]

    def query_columns(self, query: KeyQuery) -> list[str]:
        """The names of the columns a segment's query returns (nothing is read; timed)."""
        sql = f"SELECT * FROM ({query.sql}) AS segment_query LIMIT 0"  # noqa: S608  # checked query
        with self._backend(guarded=True, timed=True) as backend:
            if backend.name == "duckdb":
                return [column[0] for column in backend.con.execute(sql).description]
            if backend.name == "postgres":
                with backend.con.cursor() as cursor:
                    cursor.execute(sql)
                    return [column.name for column in cursor.description]
            if backend.name == "pyspark":
                return list(backend._session.sql(sql).columns)
            return list(backend._get_schema_using_query(query.sql).names)

    def query_schema(self, query: KeyQuery) -> ibis.Schema:
        """The columns a segment's query returns, with their types (nothing is read; timed)."""
        sql = f"SELECT * FROM ({query.sql}) AS segment_query LIMIT 0"  # noqa: S608  # checked query
        with self._backend(guarded=True, timed=True) as backend:
            if backend.name == "postgres":  # Ibis's way makes a temporary view: not when read-only
                mapper = backend.compiler.type_mapper
                with backend.con.cursor() as cursor:
                    cursor.execute(sql)
                    return ibis.schema(
                        {c.name: mapper.from_string(c.type_display) for c in cursor.description}
                    )
            found: ibis.Schema = backend._get_schema_using_query(sql)  # DuckDB: DESCRIBE; Spark: its plan
            return found

    # -- execution ---------------------------------------------------------------------------

    def stream(self, expr: ir.Table, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows of ``expr`` as Arrow record batches of at most ``batch_rows`` rows.

        Never materialises the result as Python objects. (Ibis's PySpark backend collects the
        result on the driver as Arrow before slicing it; DuckDB and PostgreSQL stream.)
        """
        if batch_rows < 1:
            raise Invalid("batch_rows must be at least 1", field="batch_rows")
        with self._backend(guarded=_has_query(expr)) as backend:
            reader = backend.to_pyarrow_batches(expr, chunk_size=batch_rows)
            for batch in reader:
                for offset in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(offset, batch_rows)

    def attachable(self, expr: ir.Table) -> Attachable | None:
        """For a DuckDB file: the file and ``expr`` as DuckDB SQL, for a DuckDB of our own that
        attaches the file and runs the query itself (a run's workspace: no second engine, no Arrow
        through Python). None for any other engine: use :meth:`stream`."""
        if self._file is None or _has_query(expr):  # a segment's SQL: on the locked-down connection
            return None
        return Attachable(self._file, str(ibis.to_sql(expr, dialect="duckdb")), self.lock_wait)

    def count(self, expr: ir.Table) -> int:
        """The number of rows of a table expression."""
        query = _has_query(expr)
        with self._backend(guarded=query, timed=query) as backend:
            return int(_arrow(backend, expr.count().name("n").as_table()).column(0)[0].as_py())

    def preview(self, expr: ir.Table, *, limit: int) -> pa.Table:
        """The first ``limit`` rows of ``expr`` (ordered by the key, so the answer is stable)."""
        query = _has_query(expr)
        with self._backend(guarded=query, timed=query) as backend:
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


def _has_query(expr: ir.Table) -> bool:
    """Whether the expression holds a segment's SQL (a :class:`KeyQuery`)."""
    return bool(expr.op().find(ops.SQLQueryResult))


def _first_lines(text: str, limit: int = 600) -> str:
    """An engine's message without its prefix noise, short enough for a form."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _spark_job_group(backend: BaseBackend) -> tuple[Any, Any]:
    """(stop, done) for a Spark query: its jobs in a group of their own, cancelled by ``stop()``."""
    context = backend._session.sparkContext
    group = f"segmentsync-{uuid.uuid4().hex}"
    context.setJobGroup(group, "a segment's query", interruptOnCancel=True)

    def stop() -> None:
        context.cancelJobGroup(group)

    def done() -> None:
        context.setLocalProperty("spark.jobGroup.id", None)

    return stop, done


def _listing(backend: BaseBackend) -> str:
    try:
        tables = [name for name in backend.list_tables() if not name.startswith(store.STAGING_PREFIX)]
    except Exception:  # listing is only a hint in an error message
        return ""
    return (
        N_(" (tables there: %(names)s)") % {"names": ", ".join(tables[:20])}
        if tables
        else N_(" (it has no tables)")
    )


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
