"""Loading CSV / Parquet / JSON lines: what works, and clear errors that leave the old table intact."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmentsync.errors import Invalid
from segmentsync.profiles.load import LoadMode, load_file

GOOD = "profile_id,email,orders,signup_date\n1,a@x.pl,3,2024-01-02\n2,b@x.pl,,2024-02-03\n3,Zoë@x.fi,7,\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "profiles.duckdb"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def rows(db: Path, table: str = "profiles") -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
    finally:
        con.close()


def test_csv_loads_with_types(tmp_path: Path, db: Path) -> None:
    phases: list[str] = []
    result = load_file(db, write(tmp_path, "p.csv", GOOD), progress=lambda phase, _: phases.append(phase))
    assert (result.rows, result.total_rows, result.mode) == (3, 3, LoadMode.REPLACE)
    assert result.columns == ["profile_id", "email", "orders", "signup_date"]
    loaded = rows(db)
    assert loaded[0][0] == 1
    assert loaded[0][3].isoformat() == "2024-01-02"
    assert loaded[2][1] == "Zoë@x.fi"
    assert loaded[1][2] is None
    assert phases[0] == "reading"
    assert phases[-2:] == ["checking", "saving"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("p.tsv", GOOD.replace(",", "\t")),
        ("p.csv", GOOD.replace(",", ";")),
        ("p.csv", "\ufeff" + GOOD),  # a byte order mark
    ],
)
def test_csv_dialects(tmp_path: Path, db: Path, name: str, content: str) -> None:
    assert load_file(db, write(tmp_path, name, content)).rows == 3


def test_gzip_parquet_and_json_lines(tmp_path: Path, db: Path) -> None:
    gz = tmp_path / "p.csv.gz"
    gz.write_bytes(gzip.compress(GOOD.encode()))
    assert load_file(db, gz).rows == 3
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"profile_id": ["k1", "k2"], "email": ["a@x", None]}), parquet)
    assert load_file(db, parquet).rows == 2
    jsonl = write(
        tmp_path, "p.jsonl", '{"profile_id": 1, "email": "a@x"}\n{"profile_id": 2, "tags": ["x"]}\n'
    )
    result = load_file(db, jsonl, table="people")
    assert result.columns == ["profile_id", "email", "tags"]
    assert rows(db, "people") == [(1, "a@x", None), (2, None, ["x"])]


def test_latin_1_and_utf_16_with_the_encoding_option(tmp_path: Path, db: Path) -> None:
    latin = write(tmp_path, "l.csv", "profile_id,name\n1,Zoé\n", "latin-1")
    assert load_file(db, latin, encoding="latin-1").rows == 1
    assert rows(db) == [(1, "Zoé")]
    utf16 = write(tmp_path, "u.csv", "profile_id,name\n1,Łódź\n", "utf-16")
    assert load_file(db, utf16, encoding="utf-16").rows == 1
    assert rows(db) == [(1, "Łódź")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "p.csv",
            GOOD + "4,d@x.pl,1,2024-01-01,extra\n",
            "p.csv, line 5: Expected Number of Columns: 4 Found: 5",
        ),
        (
            "p.csv",
            "profile_id,email\n1,a\n2,b,c\n3,d\n",
            "p.csv, line 3: Expected Number of Columns: 2 Found: 3",
        ),
        ("p.csv", 'profile_id,email\n1,"unterminated\n2,b\n', "p.csv, line 2"),
        ("p.csv", "profile_id,email\n1,a\n", None),  # fine: a control case
        ("p.csv", "profile_id,,email\n1,2,3\n", "p.csv, line 1: column 2 of the header has no name"),
        ("p.csv", "profile_id,email,email\n1,2,3\n", "the header names 'email' more than once"),
        ("p.csv", "\n\n", "the first line (the header with the column names) is empty"),
        ("p.jsonl", '{"profile_id": 1}\n{"profile_id": 2\n', 'p.jsonl: Malformed JSON in file "p.jsonl"'),
        ("p.parquet", "not parquet at all", "p.parquet: "),
        ("p.xlsx", "whatever", "cannot tell the format of p.xlsx"),
    ],
)
def test_broken_files_are_named_with_their_line(
    tmp_path: Path, db: Path, name: str, content: str, message: str | None
) -> None:
    file = write(tmp_path, name, content)
    if message is None:
        load_file(db, file)
        return
    with pytest.raises(Invalid) as info:
        load_file(db, file)
    assert message in info.value.message


def test_a_bad_value_after_the_sample_names_line_and_column(tmp_path: Path, db: Path) -> None:
    lines = ["profile_id,orders"] + [f"{i},{i % 7}" for i in range(1, 30_001)]
    lines[25_000] = "25000,lots"
    file = write(tmp_path, "late.csv", "\n".join(lines) + "\n")
    with pytest.raises(Invalid) as info:
        load_file(db, file)
    assert 'late.csv, line 25001: Error when converting column "orders"' in info.value.message
    assert "--scan-all" in info.value.message
    assert load_file(db, file, scan_all=True).rows == 30_000  # "orders" is text then


def test_wrong_encoding_is_named(tmp_path: Path, db: Path) -> None:
    file = write(tmp_path, "l.csv", "profile_id,name\n1,Ann\n2,Zoé\n", "latin-1")
    with pytest.raises(Invalid, match=r"l.csv, line 3: the file is not UTF-8 encoded.*--encoding latin-1"):
        load_file(db, file)
    with pytest.raises(Invalid, match="encoding 'ebcdic' is not supported"):
        load_file(db, file, encoding="ebcdic")


def test_key_problems(tmp_path: Path, db: Path) -> None:
    with pytest.raises(Invalid, match=r"has no key column 'profile_id'; its columns are: id, email"):
        load_file(db, write(tmp_path, "a.csv", "id,email\n1,a\n"))
    with pytest.raises(Invalid, match=r"there is 'Profile_ID': names are case-sensitive"):
        load_file(db, write(tmp_path, "b.csv", "Profile_ID,email\n1,a\n"))
    with pytest.raises(Invalid, match=r"c.csv: 1 row\(s\) have no value in the key column"):
        load_file(db, write(tmp_path, "c.csv", "profile_id,email\n1,a\n,b\n"))
    dupes = "profile_id,email\n1,a\n2,b\n1,c\n3,d\n2,e\n1,f\n"
    with pytest.raises(Invalid) as info:
        load_file(db, write(tmp_path, "d.csv", dupes))
    assert (
        "d.csv: 2 key value(s) of 'profile_id' appear more than once (for example 1 ×3, 2 ×2)"
        in info.value.message
    )
    assert info.value.details["duplicate_keys"] == 2
    assert load_file(db, write(tmp_path, "e.csv", "id,email\n1,a\n"), key="id").rows == 1


def test_a_failed_load_leaves_the_previous_table_intact(tmp_path: Path, db: Path) -> None:
    load_file(db, write(tmp_path, "good.csv", GOOD))
    before = rows(db)
    for broken in ("profile_id,email\n1,a\n1,b\n", "profile_id,email\n1,a,x\n", "id,email\n9,z\n"):
        with pytest.raises(Invalid):
            load_file(db, write(tmp_path, "broken.csv", broken))
    assert rows(db) == before
    con = duckdb.connect(str(db), read_only=True)
    tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
    con.close()
    assert tables == ["profiles"]  # no staging table is left behind


def test_append_adds_new_profiles_only(tmp_path: Path, db: Path) -> None:
    load_file(db, write(tmp_path, "first.csv", GOOD))
    more = write(tmp_path, "more.csv", "profile_id,email\n10,x@x.pl\n11,y@y.pl\n")
    result = load_file(db, more, mode=LoadMode.APPEND)
    assert (result.rows, result.total_rows) == (2, 5)
    assert rows(db)[-1][:3] == (11, "y@y.pl", None)  # missing columns are empty
    with pytest.raises(
        Invalid, match=r"2 key value\(s\) are in the table 'profiles' already \(for example 10, 11\)"
    ):
        load_file(db, more, mode=LoadMode.APPEND)
    with pytest.raises(Invalid, match="has columns the table 'profiles' does not: phone"):
        load_file(db, write(tmp_path, "x.csv", "profile_id,phone\n20,123\n"), mode=LoadMode.APPEND)
    assert len(rows(db)) == 5
    fresh = load_file(db, more, table="other", mode=LoadMode.APPEND)  # no table yet: created
    assert fresh.total_rows == 2


def test_paths_that_are_not_files_are_refused(tmp_path: Path, db: Path) -> None:
    with pytest.raises(Invalid, match="does not exist"):
        load_file(db, tmp_path / "missing.csv")
    with pytest.raises(Invalid, match="is not a regular file"):
        load_file(db, tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(Invalid, match="is not a regular file"):
        load_file(db, fifo)
    with pytest.raises(Invalid, match="is empty"):
        load_file(db, write(tmp_path, "empty.csv", ""))


def test_loads_from_an_upload_folder_stay_inside_it(tmp_path: Path, db: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    outside = write(tmp_path, "secret.csv", GOOD)
    with pytest.raises(Invalid, match="outside the folder files may be loaded from"):
        load_file(db, uploads / ".." / "secret.csv", root=uploads)
    (uploads / "link.csv").symlink_to(outside)
    with pytest.raises(Invalid, match="outside the folder"):
        load_file(db, uploads / "link.csv", root=uploads)
    inside = write(uploads, "ok.csv", GOOD)
    assert load_file(db, inside, root=uploads).rows == 3


@pytest.mark.parametrize("table", ["profiles; DROP TABLE x", 'a"b', "1abc", "", "x" * 64, "spaced name"])
def test_table_names_are_plain_identifiers(tmp_path: Path, db: Path, table: str) -> None:
    with pytest.raises(Invalid, match=r"table name .* is not allowed"):
        load_file(db, write(tmp_path, "p.csv", GOOD), table=table)
