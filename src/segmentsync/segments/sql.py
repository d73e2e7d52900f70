"""The safety check of a SQL segment's query: one read-only SELECT, or a clear refusal naming where.

A SQL segment is a query written by a person, run inside the profile source's engine. Before it is
saved (and again before each run) it is parsed with sqlglot in the engine's dialect and refused,
with the line and column of the offending part, unless it is exactly one ``SELECT`` (CTEs and
UNION/INTERSECT/EXCEPT allowed) with:

* no DDL, DML, ``COPY``, ``ATTACH``, ``PRAGMA``, ``INSTALL``/``LOAD``, ``SET``, transactions, or any
  statement sqlglot cannot parse (it falls back to an opaque "command" for those);
* no data-modifying CTE (PostgreSQL's ``WITH d AS (DELETE … RETURNING …)``), no ``SELECT … INTO``
  (creates a table), no ``FOR UPDATE``/``FOR SHARE`` (takes locks);
* no function that reads files or URLs, reaches other databases, sleeps, changes settings or
  sequences, or signals other sessions (``read_csv``, ``read_parquet``, ``glob``, ``pg_read_file``,
  ``dblink``, ``lo_import``, ``set_config``, ``nextval``, ``pg_sleep``, Spark's ``reflect`` …), and no
  table function in ``FROM`` other than ``unnest``/``generate_series``/``range``;
* no table named like a file or URL (DuckDB reads ``FROM 'x.csv'`` and ``FROM "x.parquet"``).

What runs is not the text typed but sqlglot's regeneration of the checked tree, without comments:
a comment that one engine would read differently from sqlglot cannot smuggle anything in. The
engine then runs it on a read-only connection where it has one, under a statement timeout
(:mod:`segmentsync.profiles.source`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import ErrorLevel, exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from segmentsync.errors import Invalid

MAX_SQL_CHARS = 100_000

# The profile source's engine (ProfileSource.engine) → sqlglot's dialect.
DIALECTS = {
    "duckdb": "duckdb",
    "postgres": "postgres",
    "pyspark": "spark",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "trino": "trino",
    "clickhouse": "clickhouse",
}

QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except)
# Statements (and parts) that change something or reach outside the engine's tables.
FORBIDDEN_NODES: dict[type[exp.Expression], str] = {
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.TruncateTable: "TRUNCATE",
    exp.Copy: "COPY",
    exp.Attach: "ATTACH",
    exp.Detach: "DETACH",
    exp.Pragma: "PRAGMA",
    exp.Install: "INSTALL",
    exp.Set: "SET",
    exp.Use: "USE",
    exp.Transaction: "a transaction statement",
    exp.Commit: "COMMIT",
    exp.Rollback: "ROLLBACK",
    exp.Command: "a statement",
    exp.Into: "INTO (SELECT … INTO creates a table)",
    exp.Lock: "FOR UPDATE/FOR SHARE (it takes locks)",
    exp.Cache: "CACHE",
    exp.Uncache: "UNCACHE",
    exp.Refresh: "REFRESH",
    exp.LoadData: "LOAD DATA",
    exp.Describe: "DESCRIBE",
    exp.Show: "SHOW",
    exp.Grant: "GRANT",
    exp.Revoke: "REVOKE",
    exp.Analyze: "ANALYZE",
}

# Functions, by lower-case name, that read files or URLs, reach other databases, sleep, change
# settings or state, or tell secrets about the server.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        # DuckDB: files, URLs, other databases, the environment
        "glob", "sniff_csv", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
        "parquet_kv_metadata", "query", "query_table", "getenv", "duckdb_secrets", "duckdb_settings",
        "duckdb_extensions", "which_secret", "load_extension", "checkpoint", "force_checkpoint",
        "duckdb_databases", "iceberg_metadata", "iceberg_snapshots", "delta_scan", "iceberg_scan",
        "csv_scan", "parquet_scan", "json_scan", "sqlite_attach", "current_setting",
        # PostgreSQL: files, other servers, settings, sequences, other sessions, sleeping
        "dblink", "dblink_exec", "dblink_connect", "dblink_send_query", "set_config", "nextval",
        "setval", "currval", "lastval", "lo_import", "lo_export", "lo_from_bytea", "lo_put",
        "lo_create", "lo_unlink", "lo_get", "txid_current", "query_to_xml", "query_to_json",
        "table_to_xml", "cursor_to_xml", "database_to_xml", "schema_to_xml", "inet_server_addr",
        "version",
        # Spark: JVM calls and files
        "reflect", "java_method", "try_reflect", "input_file_name", "read_files", "url_decode_file",
        # other engines: files and URLs
        "url", "s3", "file", "hdfs", "remote", "remotesecure", "mysql", "postgresql", "odbc",
        "jdbc", "url_table", "external_query",
    }
)  # fmt: skip
FORBIDDEN_PREFIXES = ("read_", "pg_", "lo_", "dblink", "sqlite_", "postgres_", "mysql_", "system$")
FORBIDDEN_SUFFIXES = ("_scan",)
TABLE_FUNCTIONS = frozenset(
    {"unnest", "generate_series", "exploding_generate_series", "range", "explode", "posexplode", "inline"}
)
FILE_LIKE = re.compile(
    r"[/\\:]|\.(csv|tsv|txt|parquet|pq|json|jsonl|ndjson|gz|zst|xlsx?|db|duckdb|sqlite3?|arrow|avro|orc)$",
    re.I,
)


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed the check: the text to run (sqlglot's, without comments) and its output
    column names where the query names them (``*`` leaves them to the engine)."""

    sql: str
    dialect: str


def dialect_of(engine: str) -> str:
    return DIALECTS.get(engine, engine)


def check(text: str, engine: str) -> CheckedQuery:
    """The query to run, or :class:`Invalid` saying what is refused and where (line and column)."""
    if not text or not text.strip():
        raise Invalid("the SQL is empty: write one SELECT", code="invalid_sql", field="sql")
    if len(text) > MAX_SQL_CHARS:
        raise Invalid(
            "the SQL is %(count)s characters long; at most %(max)s are accepted",
            params={"count": format(len(text), ","), "max": format(MAX_SQL_CHARS, ",")},
            code="invalid_sql",
            field="sql",
        )
    if "\x00" in text:
        raise Invalid(
            "%(value)s: the SQL holds a NUL character",
            params={"value": _where(text, text.index(chr(0)))},
            code="invalid_sql",
            field="sql",
        )
    dialect = dialect_of(engine)
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line, col = first.get("line"), first.get("col")
        if isinstance(col, int) and first.get("highlight"):  # sqlglot names the token's last column
            col = max(1, col - len(str(first["highlight"])) + 1)
        place = f"line {line}, column {col}" if line else "the SQL"
        reason = str(first.get("description") or exc).splitlines()[0]
        raise Invalid(
            "%(place)s: the SQL cannot be parsed (%(dialect)s): %(reason)s",
            params={"place": place, "dialect": dialect, "reason": reason},
            code="invalid_sql",
            field="sql",
            details={"line": line, "column": col},
        ) from None
    except RecursionError:
        raise Invalid("the SQL is nested too deeply to be checked", code="invalid_sql", field="sql") from None
    except TokenError as exc:
        context = re.search(r"Error tokenizing '(.*)'", str(exc), re.S)
        offset = text.find(context.group(1)) if context else -1
        line, col = _line_col(text, offset) if offset >= 0 else (None, None)
        place = f"line {line}, column {col}" if line else "the SQL"
        raise Invalid(
            "%(place)s: the SQL cannot be read from about here (a comment or quote that is not closed?)",
            params={"place": place},
            code="invalid_sql",
            field="sql",
            details={"line": line, "column": col},
        ) from None
    except SqlglotError as exc:  # any other of sqlglot's refusals
        raise Invalid(
            "the SQL cannot be read (%(dialect)s): %(exc)s",
            params={"dialect": dialect, "exc": exc},
            code="invalid_sql",
            field="sql",
        ) from None
    if not statements:
        raise Invalid("the SQL holds no statement: write one SELECT", code="invalid_sql", field="sql")
    if len(statements) > 1:
        raise _refused(
            text, statements[1], "only one statement is allowed; a second one starts here", first=True
        )
    tree = statements[0]
    if not isinstance(tree, QUERY_TYPES):
        raise _refused(text, tree, f"only a SELECT is allowed, not {_statement_name(tree)}", first=True)
    for node in tree.walk():
        _check_node(text, node)
    try:
        regenerated = tree.sql(dialect=dialect, comments=False, unsupported_level=ErrorLevel.RAISE)
    except (SqlglotError, RecursionError) as exc:
        raise Invalid(
            "the SQL cannot be checked (%(dialect)s): %(value)s",
            params={
                "dialect": dialect,
                "value": str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__,
            },
            code="invalid_sql",
            field="sql",
        ) from None
    return CheckedQuery(sql=regenerated, dialect=dialect)


def _check_node(text: str, node: exp.Expression) -> None:
    for kind, words in FORBIDDEN_NODES.items():
        if isinstance(node, kind):
            raise _refused(
                text, node, f"{words} is not allowed in a segment's query (only reading)", keyword=True
            )
    if isinstance(node, exp.Func):
        name = _function_name(node)
        if _forbidden_function(name):
            raise _refused(
                text, node, f"the function {name}() is not allowed (it reaches files, URLs, settings or "
                "other sessions, or has side effects)",
            )  # fmt: skip
    if isinstance(node, exp.Table):
        source = node.this
        if isinstance(source, exp.Func):
            name = _function_name(source)
            if name not in TABLE_FUNCTIONS:
                raise _refused(
                    text, source, f"the table function {name}() is not allowed: select from tables and views"
                )
        elif isinstance(source, exp.Literal) or (
            isinstance(source, exp.Identifier) and FILE_LIKE.search(source.name)
        ):
            raise _refused(
                text, node, f"{node.name!r} looks like a file or URL: select from tables and views only"
            )
        for part in node.parts:
            if isinstance(part, exp.Identifier) and FILE_LIKE.search(part.name):
                raise _refused(
                    text, node, f"{part.name!r} looks like a file or URL: select from tables and views only"
                )


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    names: list[str] = type(node).sql_names()  # type: ignore[no-untyped-call]  # sqlglot's, untyped
    return names[0].lower() if names else str(node.key).lower()


def _forbidden_function(name: str) -> bool:
    return (
        name in FORBIDDEN_FUNCTIONS
        or name.startswith(FORBIDDEN_PREFIXES)
        or name.endswith(FORBIDDEN_SUFFIXES)
    )


def _statement_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    for kind, words in FORBIDDEN_NODES.items():
        if isinstance(node, kind):
            return words
    return node.key.upper()


def _refused(
    text: str, node: exp.Expression, reason: str, *, first: bool = False, keyword: bool = False
) -> Invalid:
    start = _start(node)
    if keyword and start is not None:  # a clause: its keyword, before its first named part
        word = _statement_name(node).split()[0]
        found = [m.start() for m in re.finditer(rf"\b{re.escape(word)}\b", text[:start], re.I)]
        start = found[-1] if found else start
    if first:  # a whole statement: where it begins (after the previous statement's ";")
        end = start if start is not None else len(text)
        begin = text.rfind(";", 0, end) + 1
        start = begin + len(text[begin:end]) - len(text[begin:end].lstrip())
    elif start is None:
        start = _keyword_start(text, node)
    place = _where(text, start) if start is not None else "the SQL"
    line, col = _line_col(text, start) if start is not None else (None, None)
    return Invalid(
        "%(place)s: %(reason)s",
        params={"place": place, "reason": reason},
        code="unsafe_sql",
        field="sql",
        details={"line": line, "column": col},
    )


def _start(node: exp.Expression) -> int | None:
    """The character offset where ``node`` starts, from the positions sqlglot keeps on tokens."""
    starts = [n.meta["start"] for n in node.walk() if isinstance(n.meta, dict) and "start" in n.meta]
    return min(starts) if starts else None


def _keyword_start(text: str, node: exp.Expression) -> int | None:
    """For a part with no positioned token (``FOR UPDATE``): where its first keyword is."""
    keyword = _statement_name(node).split()[0]
    found = re.search(rf"\b{re.escape(keyword)}\b", text, re.I) if keyword.isalpha() else None
    return found.start() if found else None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _where(text: str, offset: int) -> str:
    line, col = _line_col(text, offset)
    return f"line {line}, column {col}"
