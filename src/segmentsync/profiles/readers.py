"""Reading profile files (CSV, Parquet, JSON lines) with DuckDB, and saying clearly what is wrong.

DuckDB's CSV sniffer guesses the dialect and the column types from a sample. A malformed row
inside that sample makes it guess badly (one column, or a "preamble" it silently skips), so the
dialect is fixed here from the header line and a file that fails is read once more as plain text
with the header's columns, which names the exact line of a structural error.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from segmentsync.errors import Invalid


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


SUFFIXES = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".txt": FileFormat.CSV,
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".json": FileFormat.JSONL,
}
# DuckDB reads these natively (others need an extension downloaded from the internet).
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}
DELIMITERS = (",", ";", "\t", "|")
CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")


@dataclass(frozen=True)
class Reader:
    """A ``SELECT * FROM read_…(…)`` with its parameters (the file path is a parameter)."""

    file: Path
    format: FileFormat
    sql: str
    params: list[Any]
    header: list[str] | None = None  # CSV only
    delimiter: str | None = None
    encoding: str = "utf-8"


def detect_format(file: Path, given: str | None) -> FileFormat:
    if given:
        try:
            return FileFormat(given.lower())
        except ValueError:
            raise Invalid(
                f"unknown format {given!r}: use one of {', '.join(f.value for f in FileFormat)}",
                field="format",
            ) from None
    suffixes = [s.lower() for s in file.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    raise Invalid(
        f"cannot tell the format of {file.name} from its name: use .csv, .parquet or .jsonl, or "
        f"pass --format csv|parquet|jsonl",
        field="format",
    )


def make_reader(
    file: Path,
    fmt: FileFormat,
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    scan_all: bool = False,
) -> Reader:
    if file.suffix.lower() == ".gz":
        _check_gzip(file)
    if fmt is FileFormat.PARQUET:
        return Reader(file, fmt, "SELECT * FROM read_parquet($1)", [str(file)])
    if fmt is FileFormat.JSONL:
        sql = "SELECT * FROM read_json($1, format := 'newline_delimited', sample_size := $2)"
        return Reader(file, fmt, sql, [str(file), -1 if scan_all else 20480])
    duck_encoding = ENCODINGS.get(encoding.lower())
    if duck_encoding is None:
        raise Invalid(
            f"encoding {encoding!r} is not supported: use utf-8, utf-16 or latin-1 (or convert the file "
            f"to UTF-8)",
            field="encoding",
        )
    first = _first_line(file, duck_encoding)
    delim = delimiter or _guess_delimiter(first)
    header = _header(file, first, delim)
    sql = (
        "SELECT * FROM read_csv($1, header := true, skip := 0, delim := $2, quote := '\"', "
        "escape := '\"', strict_mode := true, encoding := $3, sample_size := $4)"
    )
    params = [str(file), delim, duck_encoding, -1 if scan_all else 20480]
    return Reader(file, fmt, sql, params, header, delim, duck_encoding)


def _check_gzip(file: Path) -> None:
    """DuckDB reads a gzip file that was cut short (an interrupted copy or download) without a
    word, as if the profiles it lost never existed; Python's gzip checks the end marker and CRC."""
    try:
        with gzip.open(file, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise Invalid(
            f"{file.name}: the compressed file is incomplete or damaged ({exc}); nothing was loaded",
            code="bad_file",
        ) from None


def _first_line(file: Path, encoding: str) -> str:
    opener = gzip.open if file.suffix.lower() == ".gz" else open
    try:
        with opener(file, "rb") as handle:
            # bytes, not text: decoding a whole buffer could fail on a later line than the header
            raw: bytes = handle.read(65536) if encoding == "utf-16" else handle.readline()
    except (OSError, EOFError) as exc:
        raise Invalid(f"{file.name}: cannot be read: {exc}", code="bad_file") from None
    if encoding == "utf-16":  # a UTF-16 newline is two bytes: cut the decoded text instead
        text = raw.decode("utf-16", errors="replace")
    else:
        text = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    line = text.splitlines()[0] if text.strip() else ""
    if "\ufffd" in line:
        raise Invalid(_encoding_message(file.name, 1, encoding), code="bad_encoding")
    return line


def _guess_delimiter(line: str) -> str:
    counts = Counter(ch for ch in line if ch in DELIMITERS)
    return counts.most_common(1)[0][0] if counts else ","


def _header(file: Path, line: str, delimiter: str) -> list[str]:
    if not line.strip():
        raise Invalid(
            f"{file.name}: the first line (the header with the column names) is empty", code="bad_file"
        )
    names = next(csv.reader(io.StringIO(line), delimiter=delimiter))
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise Invalid(
                f"{file.name}, line 1: column {position} of the header has no name", code="bad_file"
            )
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise Invalid(
            f"{file.name}, line 1: the header names {', '.join(map(repr, repeated))} more than once",
            code="bad_file",
        )
    return names


def explain(con: duckdb.DuckDBPyConnection, reader: Reader, exc: duckdb.Error) -> Invalid:
    """A clear Invalid for a file DuckDB could not read: file name, line and column where known."""
    text = str(exc)
    if reader.format is FileFormat.CSV and not CSV_LINE.search(text):
        # The sniffer failed: read again as plain text to find the line that breaks the file.
        precise = _structural_error(con, reader)
        if precise is not None:
            text = precise
    return Invalid(_describe(reader, text), code="bad_file", details={"engine_message": _first(text)})


def _structural_error(con: duckdb.DuckDBPyConnection, reader: Reader) -> str | None:
    columns = dict.fromkeys(reader.header or [], "VARCHAR")
    sql = (
        "SELECT count(*) FROM read_csv($1, header := true, skip := 0, delim := $2, quote := '\"', "
        "escape := '\"', strict_mode := true, encoding := $3, auto_detect := false, columns := $4)"
    )
    try:
        con.execute(sql, [str(reader.file), reader.delimiter, reader.encoding, columns]).fetchall()
    except duckdb.Error as exc:
        return str(exc)
    return None


def _describe(reader: Reader, text: str) -> str:
    name = reader.file.name
    line_match = CSV_LINE.search(text)
    if line_match is None:
        return f"{name}: {_first(text).replace(str(reader.file), name)}"
    line = int(line_match.group(1))
    lines = text.splitlines()
    original = next(
        (ln.removeprefix("Original Line: ") for ln in lines if ln.startswith("Original Line:")), ""
    )
    reason = _reason(lines)
    if "Invalid unicode" in text:
        return _encoding_message(name, line, reader.encoding)
    shown = original if len(original) <= 100 else original[:99] + "…"
    message = f"{name}, line {line}: {reason}"
    if "Could not convert" in reason:
        message += (
            " (the column's type was guessed from the first rows; fix the value, or use --scan-all "
            "to guess from the whole file)"
        )
    return f"{message}. The line reads: {shown!r}" if shown else message


def _reason(lines: list[str]) -> str:
    for ln in lines[2:]:
        if ln.strip() and not ln.startswith(("Possible", "*", "  ")):
            return ln.strip().rstrip(".")
    return "the line cannot be read"


def _first(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else text
    for prefix in ("Invalid Input Error: ", "Conversion Error: ", "IO Error: ", "Binder Error: "):
        first = first.removeprefix(prefix)
    return first.strip()


def _encoding_message(name: str, line: int, encoding: str) -> str:
    return (
        f"{name}, line {line}: the file is not {encoding.upper()} encoded (a byte sequence is invalid); "
        f"convert it to UTF-8, or pass --encoding latin-1 or --encoding utf-16 if it is one of those"
    )
