"""The warehouse extras (``segmentsync[snowflake]``, ``[bigquery]``, ``[trino]``, ``[clickhouse]``):
where one is installed, its Ibis backend loads with its driver and a segment's rules compile to
that warehouse's SQL — no server needed. Where an extra is not installed its test is skipped
(the default development install has none: ``scripts/bootstrap dev,spark,warehouses`` has all).
"""

from __future__ import annotations

import importlib

import ibis
import pytest

from segmentsync.segments.compile import compile_filter
from segmentsync.segments.rules import Group

PROFILES = ibis.table(
    {"profile_id": "int64", "email": "string", "country": "string", "total_spend": "decimal(12, 2)",
     "last_purchase_at": "timestamp('UTC')"},
    name="profiles",
)  # fmt: skip
RULE = Group.model_validate(
    {
        "items": [
            {"column": "country", "operator": "in", "value": ["PL", "LV"]},
            {"column": "total_spend", "operator": "gt", "value": 100},
            {"column": "email", "operator": "ends_with", "value": "@Example.com", "ignore_case": True},
        ]
    }
)
# backend → the driver its extra installs
WAREHOUSES = {
    "snowflake": "snowflake.connector",
    "bigquery": "google.cloud.bigquery",
    "trino": "trino",
    "clickhouse": "clickhouse_connect",
}


@pytest.mark.parametrize("backend", sorted(WAREHOUSES))
def test_a_segment_compiles_to_the_warehouse_sql(backend: str) -> None:
    pytest.importorskip(WAREHOUSES[backend], reason=f"segmentsync[{backend}] is not installed")
    module = importlib.import_module(f"ibis.backends.{backend}")  # the backend, with its driver
    assert hasattr(module, "Backend")
    query = PROFILES.filter(compile_filter(RULE, PROFILES)).select("profile_id", "email")
    sql = ibis.to_sql(query, dialect=backend)
    for expected in ("profiles", "'PL'", "'LV'", "100", "@example.com"):
        assert expected in sql.lower() if expected.startswith("@") else expected in sql, (expected, sql)
