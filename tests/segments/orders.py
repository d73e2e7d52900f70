"""Orders next to the test profiles (for SQL and dbt segments that join the two), on any engine."""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
import pyarrow as pa

from segmentsync.profiles.source import ProfileSource
from segmentsync.segments.rules import parse

# profile 1: 50 + 80; 4: 10; 12: 300; 2: 100 (not more than 100); 99: no such profile
ORDERS = pa.table(
    {
        "order_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "profile_id": pa.array([1, 1, 4, 12, 2, 99], pa.int64()),
        "amount": pa.array([50.0, 80.0, 10.0, 300.0, 100.0, 1.0], pa.float64()),
    }
)
BIG_SPENDERS = {1, 12}
SEGMENT_SQL = """
-- profiles whose orders add up to more than 100
SELECT p.profile_id
FROM profiles AS p
JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
HAVING sum(o.amount) > 100
"""
VIEW_SQL = """
CREATE OR REPLACE VIEW profiles_spent AS
SELECT p.*, s.spent
FROM profiles AS p
JOIN (SELECT profile_id, sum(amount) AS spent FROM orders GROUP BY profile_id) AS s
  ON s.profile_id = p.profile_id
"""
RULE = parse({"items": [{"column": "spent", "operator": "gt", "value": 100}]})


def add_orders(source: ProfileSource) -> None:
    """The orders table and the view over profiles and orders, in the source's engine."""
    if source.engine == "duckdb":
        path = source.url.removeprefix("duckdb://")
        con = duckdb.connect(path)
        try:
            con.register("orders_data", ORDERS)
            con.execute("CREATE OR REPLACE TABLE orders AS SELECT * FROM orders_data")
            con.execute(VIEW_SQL)
        finally:
            con.close()
    elif source.engine == "postgres":
        con = ibis.connect("postgres://" + source.url.split("://", 1)[1])
        # A second module adding orders in the same session: the view depends on the table
        # (DuckDB's CREATE OR REPLACE TABLE does not mind; PostgreSQL refuses to drop it).
        con.raw_sql("DROP VIEW IF EXISTS profiles_spent").close()
        con.create_table("orders", ORDERS, overwrite=True)
        con.raw_sql(VIEW_SQL).close()
        con.disconnect()
    else:
        from pyspark.sql import SparkSession

        session = SparkSession.builder.getOrCreate()
        session.createDataFrame(ORDERS).write.mode("overwrite").saveAsTable("orders")
        session.sql(VIEW_SQL)


def create_view(path: Path, name: str, sql: str = SEGMENT_SQL) -> None:
    """A view in a DuckDB profile file (a dbt model's relation, as ``dbt run`` would make it)."""
    con = duckdb.connect(str(path))
    try:
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    finally:
        con.close()


def drop_view(path: Path, name: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(f"DROP VIEW IF EXISTS {name}")
    finally:
        con.close()
