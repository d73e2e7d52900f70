"""Rule → SQL snapshots for the DuckDB and PostgreSQL dialects (files in ``sql/``).

A change in the generated SQL shows up as a diff of these files. To accept a change on purpose:
``SEGMENTSYNC_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/segments/test_sql_snapshots.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ibis
import pytest

from segmentsync.segments.compile import compile_filter
from segmentsync.segments.rules import parse

from .dataset import NOW

SNAPSHOTS = Path(__file__).parent / "sql"
TABLE = ibis.table(
    {
        "profile_id": "int64",
        "email": "string",
        "country": "string",
        "orders": "int32",
        "total_spend": "decimal(12, 2)",
        "consent_email": "boolean",
        "signup_date": "date",
        "last_purchase_at": "timestamp('UTC')",
        'odd "column"': "string",
    },
    name="profiles",
)


def c(column: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"column": column, "operator": operator, "value": value, **extra}


RULES: dict[str, dict[str, Any]] = {
    "eq": {"items": [c("country", "eq", "PL")]},
    "ne": {"items": [c("country", "ne", "PL")]},
    "in": {"items": [c("country", "in", ["PL", "LV"])]},
    "not_in": {"items": [c("country", "not_in", ["PL", "LV"])]},
    "comparisons": {"items": [c("orders", "ge", 2), c("orders", "lt", 10), c("total_spend", "gt", 100)]},
    "between": {"items": [c("total_spend", "between", [10, 99.5])]},
    "boolean": {"items": [c("consent_email", "eq", True)]},
    "text_match": {
        "op": "or",
        "items": [
            c("email", "contains", "50%_"),
            c("email", "starts_with", "o'"),
            c("email", "ends_with", "@Gmail.com", ignore_case=True),
        ],
    },
    "emptiness": {"items": [c("email", "is_empty"), c("signup_date", "is_not_empty")]},
    "dates": {
        "items": [
            c("signup_date", "lt", "2020-01-01"),
            c("signup_date", "before_days_ago", 30),
            c("last_purchase_at", "in_last_days", 90),
        ]
    },
    "negated_group": {"negate": True, "items": [c("country", "eq", "PL"), c("orders", "gt", 1)]},
    "typical_segment": {
        "items": [
            c("country", "in", ["PL", "LV"]),
            c("last_purchase_at", "in_last_days", 90),
            c("total_spend", "gt", 100),
        ]
    },
    "hostile": {"items": [c("email", "eq", "'; DROP TABLE profiles; --"), c('odd "column"', "eq", "x\\y")]},
    "everyone": {"items": []},
}


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("name", list(RULES))
def test_sql_matches_the_snapshot(name: str, dialect: str) -> None:
    expr = TABLE.filter(compile_filter(parse(RULES[name]), TABLE, now=NOW))
    sql = ibis.to_sql(expr, dialect=dialect).strip() + "\n"
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    if os.environ.get("SEGMENTSYNC_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(sql)
    assert path.exists(), f"no snapshot {path.name}: run with SEGMENTSYNC_UPDATE_SNAPSHOTS=1"
    assert sql == path.read_text()
