"""Snapshot: normalise, validate and de-duplicate emails; payload and hash of the mapped fields."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentsync.destinations import campaign_monitor_rows as cm
from segmentsync.destinations.base import FieldInfo, FieldType
from segmentsync.engine.snapshot import Mapping, build
from segmentsync.engine.workspace import Workspace, size_bytes
from segmentsync.errors import Invalid
from segmentsync.profiles.source import Attachable

# Rows are rendered as Campaign Monitor's, for a list with a City field.
LOOKUP = cm.field_lookup([FieldInfo("[City]", "City", FieldType.TEXT)])


def render(values: list, consent: object) -> cm.RowTemplate:
    return cm.template(values, LOOKUP, consent)  # type: ignore[arg-type]  # a Value or None


PLAIN = Mapping(key_column="id", email_column="email", attributes=[], consent=None)
WORK = Path(tempfile.gettempdir()) / "segmentsync-test-work"


def render_rows(ws: Workspace, source: str, target: str, template: cm.RowTemplate, where: str) -> None:
    """``target``: ``source`` with the template's payload for the rows matching ``where`` (the
    planner renders the rows to send the same way, as it orders them)."""
    ws.con.execute(
        f"CREATE TABLE {target} AS SELECT *, CASE WHEN {where} THEN CAST({template.row.text} AS VARCHAR) END "
        f"AS payload FROM {source}",
        list(template.row.params),
    )


def rows_of(table: pa.Table, mapping: Mapping = PLAIN) -> list[tuple]:
    """(seq, email, profile_key, hash, payload, problem, message) per member — the same whether the
    members come as Arrow batches or from a DuckDB profile file the workspace attaches."""
    streamed = _rows_of(table, mapping, iter(table.to_batches()))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profiles.duckdb"
        con = duckdb.connect(str(path))
        con.register("given", table)
        con.execute("CREATE TABLE profiles AS SELECT * FROM given")
        con.close()
        attached = _rows_of(table, mapping, Attachable(path, "SELECT * FROM profiles", lock_wait=1))
    assert attached == streamed
    return streamed


def _rows_of(
    table: pa.Table, mapping: Mapping, members: Iterator[pa.RecordBatch] | Attachable
) -> list[tuple]:
    with Workspace(WORK) as ws:
        snap = build(ws, members, mapping)
        render_rows(ws, "members", "rendered", render(snap.values, snap.consent), "hash IS NOT NULL")
        rows = ws.con.execute(
            "SELECT row_number() OVER (ORDER BY problem IS NOT NULL, email, k), "
            "email, profile_key, hash, payload, problem, message FROM rendered ORDER BY 1"
        ).fetchall()
    assert snap.profiles == table.num_rows == len(rows)
    assert snap.valid == sum(1 for row in rows if row[5] is None)
    return rows


def by_key(rows: list[tuple]) -> dict[str, tuple]:
    return {row[2]: row for row in rows}


@pytest.mark.parametrize(
    ("raw", "email", "problem"),
    [
        ("ann@example.com", "ann@example.com", None),
        ("  Ann@Example.COM ", "ann@example.com", None),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk", None),
        (
            "zoë@example.com",
            "zoë@example.com",
            None,
        ),  # internationalised local part: judged by email-validator
        ("ann@bücher.de", "ann@xn--bcher-kva.de", None),  # sent as ASCII: the platforms refuse Unicode
        (None, "", "no_email"),
        ("   ", "   ", "no_email"),
        ("ann@", "ann@", "bad_syntax"),
        ("ann@example", "ann@example", "bad_syntax"),
        ("a b@example.com", "a b@example.com", "bad_syntax"),
        ("ann@example..com", "ann@example..com", "bad_syntax"),
        ("ann@printer.local", "ann@printer.local", "bad_syntax"),
        ("x" * 65 + "@example.com", "x" * 65 + "@example.com", "bad_syntax"),
        ("a@" + "b" * 300 + ".com", ("a@" + "b" * 300 + ".com")[:320], "too_long"),
        ("nul\x00@example.com", "nul@example.com", "bad_syntax"),
    ],
)
def test_email_is_normalised_or_rejected_with_a_reason(
    raw: str | None, email: str, problem: str | None
) -> None:
    (row,) = rows_of(pa.table({"id": [1], "email": [raw]}))
    assert row[1] == email
    assert row[5] == problem
    if problem:
        assert row[6]  # a message a person can read
        assert row[3] is None
        assert row[4] is None
    else:
        assert row[3]
        assert row[4] is not None


def test_duplicates_keep_the_lowest_key_and_name_it() -> None:
    table = pa.table({"id": [30, 10, 20, 40], "email": ["A@x.com", "a@x.com", "a@X.com ", "b@x.com"]})
    rows = by_key(rows_of(table))
    assert rows["10"][5] is None
    for key in ("20", "30"):
        assert rows[key][5] == "duplicate"
        assert rows[key][6] == "duplicate of profile 10 (same email)"
    assert rows["40"][5] is None


def test_numeric_keys_order_as_numbers_not_text() -> None:
    rows = by_key(rows_of(pa.table({"id": [9, 10], "email": ["a@x.com", "A@x.com"]})))
    assert rows["9"][5] is None
    assert rows["10"][5] == "duplicate"


def test_payload_joins_columns_on_one_field_and_maps_consent_column() -> None:
    table = pa.table(
        {
            "id": [1, 2, 3],
            "email": ["a@x.com", "b@x.com", "c@x.com"],
            "first": ["Ann", None, "Cy\x00"],
            "last": ["Lee", "Bo", None],
            "city": ["Riga", "Oulu", None],
            "ok": [True, False, None],
        }
    )
    mapping = Mapping(
        key_column="id",
        email_column="email",
        attributes=[("first", "Name"), ("last", "Name"), ("city", "[City]")],
        consent="column",
        consent_column="ok",
    )
    payloads = {row[2]: orjson.loads(row[4]) for row in rows_of(table, mapping)}
    city = [{"Key": "City", "Value": "Riga"}]
    assert payloads["1"] == {
        "EmailAddress": "a@x.com",
        "ConsentToTrack": "Yes",
        "Name": "Ann Lee",
        "CustomFields": city,
    }
    assert payloads["2"]["Name"] == "Bo"
    assert payloads["2"]["ConsentToTrack"] == "No"
    # no city: the field is cleared; a NUL is taken out of the name
    assert payloads["3"] == {
        "EmailAddress": "c@x.com",
        "ConsentToTrack": "Unchanged",
        "Name": "Cy",
        "CustomFields": [{"Key": "City", "Value": "", "Clear": True}],
    }


def test_constant_consent_and_no_consent() -> None:
    table = pa.table({"id": [1], "email": ["a@x.com"]})
    yes = Mapping(key_column="id", email_column="email", attributes=[], consent="Yes")
    assert orjson.loads(rows_of(table, yes)[0][4]) == {"EmailAddress": "a@x.com", "ConsentToTrack": "Yes"}
    assert orjson.loads(rows_of(table, PLAIN)[0][4]) == {
        "EmailAddress": "a@x.com",
        "ConsentToTrack": "Unchanged",
    }


def test_hash_follows_the_mapped_fields_only() -> None:
    mapping = Mapping(key_column="id", email_column="email", attributes=[("name", "Name")], consent=None)

    def digest(name: str, key: int = 1, email: str = "a@x.com") -> str:
        return rows_of(pa.table({"id": [key], "email": [email], "name": [name]}), mapping)[0][3]

    assert digest("Ann") == digest("Ann", key=2)
    assert digest("Ann") == digest("Ann", email="A@X.com")
    assert digest("Ann") != digest("Anne")


def test_mapping_check_names_the_unknown_column() -> None:
    mapping = Mapping(key_column="id", email_column="mail", attributes=[], consent=None)
    with pytest.raises(Invalid, match="'mail'"):
        mapping.check(["id", "email"])


def test_empty_segment() -> None:
    mapping = Mapping(key_column="id", email_column="email", attributes=[("n", "Name")], consent=None)
    with Workspace(WORK) as ws:
        snap = build(ws, iter([]), mapping)
    assert (snap.profiles, snap.valid, snap.invalid) == (0, 0, 0)


def test_the_workspace_cleans_up_after_itself() -> None:
    with Workspace(WORK) as ws:
        build(ws, iter(pa.table({"id": [1], "email": ["a@x.com"]}).to_batches()), PLAIN)
        assert ws.folder.exists()
    assert not ws.folder.exists()


@pytest.mark.parametrize(
    ("workspace", "lowered", "during"),
    [("160MB", "128MB", 128 * 10**6), ("64MB", "128MB", 64 * 10**6)],  # never raised
)
def test_memory_may_be_lowered_for_a_while_and_comes_back(workspace: str, lowered: str, during: int) -> None:
    def cap(ws: Workspace) -> float:
        row = ws.con.execute("SELECT current_setting('memory_limit')").fetchone()
        return size_bytes(str(row[0] if row else ""))

    with Workspace(WORK, memory_limit=workspace) as ws:
        before = cap(ws)
        with ws.memory_at_most(lowered):
            assert cap(ws) == pytest.approx(during, rel=0.01)
        assert cap(ws) == before == pytest.approx(size_bytes(workspace), rel=0.01)
        with pytest.raises(duckdb.Error), ws.memory_at_most(lowered):
            ws.con.execute("SELECT no_such_column")
        assert cap(ws) == before  # restored after a failure too


def test_memory_sizes_are_read_in_duckdbs_units() -> None:
    assert size_bytes("160MB") == 160 * 10**6
    assert size_bytes("152.5 MiB") == 152.5 * 2**20
    assert size_bytes("2GiB") == 2 * 2**30
    with pytest.raises(ValueError, match="not a memory size"):
        size_bytes("lots")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "B", "c", "a.b", "x+y", "", "bad@"]),
            st.sampled_from(["@example.com", "@EXAMPLE.com", "@ex.org", "", "@nope"]),
        ),
        max_size=40,
    )
)
def test_every_profile_appears_once_and_valid_emails_are_unique(parts: list[tuple[str, str]]) -> None:
    emails = [local + domain for local, domain in parts]
    rows = rows_of(
        pa.table(
            {"id": list(range(len(emails))), "email": emails},
            schema=pa.schema([("id", pa.int64()), ("email", pa.string())]),
        )
    )
    assert sorted(int(row[2]) for row in rows) == list(range(len(emails)))
    valid = [row[1] for row in rows if row[5] is None]
    assert len(valid) == len(set(valid))
    assert all(email == email.strip().lower() for email in valid)
    assert sorted(row[0] for row in rows) == list(range(1, len(rows) + 1))
