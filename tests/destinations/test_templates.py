"""The SQL-rendered rows (the run engine's fast path) equal the rows ``prepare`` builds in Python.

For random values of every kind a profile column can hold, and fields of every type, both
platforms' import rows and fitting notes must come out the same both ways.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import note as explain
from hypothesis import strategies as st

from segmentsync.destinations import campaign_monitor_rows as cm
from segmentsync.destinations import constant_contact_rows as cc
from segmentsync.destinations.base import FieldInfo, FieldType, Member
from segmentsync.destinations.templates import RowTemplate, Value

OPTIONS = ("Gold", "Silver", "Bronze")
CM_FIELDS = {
    "[City]": FieldInfo("[City]", "City", FieldType.TEXT),
    "[Age]": FieldInfo("[Age]", "Age", FieldType.NUMBER),
    "[Joined]": FieldInfo("[Joined]", "Joined", FieldType.DATE),
    "[Tier]": FieldInfo("[Tier]", "Tier", FieldType.SELECT_ONE, OPTIONS),
    "[Tags]": FieldInfo("[Tags]", "Tags", FieldType.SELECT_MANY, OPTIONS),
}
CC_FIELDS = {
    "cf:city": FieldInfo("cf:city", "City", FieldType.TEXT),
    "cf:age": FieldInfo("cf:age", "Age", FieldType.NUMBER),
    "cf:joined": FieldInfo("cf:joined", "Joined", FieldType.DATE),
    "cf:tier": FieldInfo("cf:tier", "Tier", FieldType.SELECT_ONE, OPTIONS),
}
ARROW = {
    "text": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "list": pa.list_(pa.string()),
}
TEXTS = st.one_of(
    st.sampled_from(["gold", " Silver ", "BRONZE", "tin", "42", " 7.5 ", "1e3", "NaN", "2024-02-29", "2024/2/3",
                     "2024-02-30", "1899-12-31", "2024-01-01T10:00:00", ""]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=300),
)  # fmt: skip
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "text": TEXTS,
    "integer": st.integers(-(10**12), 10**12),
    "float": st.one_of(
        st.sampled_from([0.1, 1.5, 2.0, 1e16, 1e-7, float("nan"), float("inf")]), st.floats(-1e6, 1e6)
    ),
    "boolean": st.booleans(),
    "date": st.dates(date(1850, 1, 1), date(2100, 12, 31)),
    "list": st.lists(st.sampled_from(["gold", "Silver", "lead", " bronze"]), max_size=3),
}


@st.composite
def columns(draw: st.DrawFn, targets: list[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A kind per target column, and three members' values (None allowed)."""
    kinds = {target: draw(st.sampled_from(sorted(KINDS))) for target in targets}
    rows = [{target: draw(st.none() | KINDS[kind]) for target, kind in kinds.items()} for _ in range(3)]
    return kinds, rows


def render(
    template: RowTemplate, kinds: dict[str, str], rows: list[dict[str, Any]], emails: list[str]
) -> list[tuple[Any, ...]]:
    aliases = {target: f"v{i}" for i, target in enumerate(kinds)}
    data: dict[str, pa.Array] = {"email": pa.array(emails, pa.string())}
    for target, kind in kinds.items():
        data[aliases[target]] = pa.array([row[target] for row in rows], ARROW[kind])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("members", pa.table(data))
    query = f"SELECT {template.row.text}, {template.note.text}, {template.reject.text} FROM members"  # the template's own SQL
    return con.execute(
        query, [*template.row.params, *template.note.params, *template.reject.params]
    ).fetchall()


def values_of(kinds: dict[str, str]) -> list[tuple[str, Value]]:
    return [(target, Value(f"v{i}", kind)) for i, (target, kind) in enumerate(kinds.items())]  # type: ignore[arg-type]  # the kinds are Value kinds


EMAILS = ["a@example.com", "b+tag@example.org", "c.d@sub.example.co"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns(["Name", *CM_FIELDS]))
def test_campaign_monitor_rows_are_the_same_both_ways(
    drawn: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    kinds, rows = drawn
    explain(f"kinds={kinds} rows={rows}")
    lookup = cm.field_lookup(list(CM_FIELDS.values()))
    rendered = render(cm.template(values_of(kinds), lookup, None), kinds, rows, EMAILS)
    members = [Member(email, fields=row) for email, row in zip(EMAILS, rows, strict=True)]
    prepared = cm.prepare(members, lookup)
    assert prepared.early == {}
    for index, (row_json, note, reject) in enumerate(rendered):
        assert orjson.loads(row_json) == prepared.rows[index]
        assert note == prepared.notes.get(index)
        assert reject is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns(["first_name", "last_name", *CC_FIELDS]))
def test_constant_contact_rows_are_the_same_both_ways(
    drawn: tuple[dict[str, str], list[dict[str, Any]]],
) -> None:
    kinds, rows = drawn
    explain(f"kinds={kinds} rows={rows}")
    lookup = {info.key.casefold(): info for info in CC_FIELDS.values()}
    rendered = render(cc.template(values_of(kinds), lookup), kinds, rows, EMAILS)
    members = [Member(email, fields=row) for email, row in zip(EMAILS, rows, strict=True)]
    prepared = cc.prepare(members, lookup)
    for index, (row_json, note, reject) in enumerate(rendered):
        assert orjson.loads(row_json) == prepared.rows[index]
        assert note == prepared.notes.get(index)
        assert reject is None


def test_constant_contact_refuses_what_the_platform_would() -> None:
    template = cc.template([], {})
    long = "x" * 70 + "@example.com"
    rendered = render(template, {}, [{}, {}, {}], [long, "zoë@example.com", "ok@example.com"])
    assert [reject for _, _, reject in rendered] == [
        "the address is longer than 80 characters",
        cc.NON_ASCII_LOCAL,
        None,
    ]
    assert [cc.email_problem(email) for email in (long, "zoë@example.com", "ok@example.com")] == [
        "the address is longer than 80 characters",
        cc.NON_ASCII_LOCAL,
        None,
    ]
