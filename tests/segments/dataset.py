"""The profiles every engine test uses (same rows on DuckDB, PostgreSQL and Spark), and ``NOW``.

Rows are chosen for the edges: NULLs in every column, an empty e-mail, quotes, a backslash,
``%`` and ``_`` (LIKE wildcards), an SQL fragment, non-ASCII letters, and dates on the boundaries
of "in the last 90 days".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _d(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _m(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


# id, email, country, city, orders, total_spend, consent_email, signup_date, last_purchase_at
ROWS = [
    (1, "a@x.pl", "PL", "Warszawa", 5, "120.50", True, "2020-01-15", "2025-05-30T10:00:00"),
    (2, "B@Gmail.com", "LV", "Rīga", 0, "0.00", False, "2024-12-01", None),
    (3, None, "PL", None, 2, "99.99", None, "2025-05-31", "2025-03-01T00:00:00"),
    (4, "o'brien@x.com", "US", "New York", 12, "1500.00", True, "2019-07-04", "2025-06-01T11:00:00"),
    (5, "'; DROP TABLE profiles; --", "RO", "București", 1, "15.00", False, None, "2024-01-01T08:30:00"),
    (6, "", "FI", "Jyväskylä", 3, "250.25", True, "2023-03-03", "2025-04-01T00:00:00"),
    (7, "50%_off@x.fi", None, "Oulu", None, None, None, None, None),
    (8, "zoë@example.com", "DE", "Köln", 7, "700.00", True, "2022-02-22", "2025-05-02T09:00:00"),
    (9, "x\\y@z.com", "PL", "Łódź", 1, "100.00", False, "2025-01-01", "2025-06-01T11:59:00"),
    (10, "UPPER@EXAMPLE.COM", "LV", "Liepāja", 4, "100.01", True, "2021-06-01", "2025-03-03T12:00:00"),
    (11, 'say "hi"@x.de', "DE", "Berlin", 0, "0.00", True, "2025-06-01", None),
    (12, "ann@gmail.com", "PL", "Kraków", 20, "2500.75", True, "2018-11-11", "2025-02-28T23:59:59"),
]
ALL_IDS = [row[0] for row in ROWS]


def arrow_table() -> pa.Table:
    columns = list(zip(*ROWS, strict=True))
    return pa.table(
        {
            "profile_id": pa.array(columns[0], pa.int64()),
            "email": pa.array(columns[1], pa.string()),
            "country": pa.array(columns[2], pa.string()),
            "city": pa.array(columns[3], pa.string()),
            "orders": pa.array(columns[4], pa.int64()),
            "total_spend": pa.array([_m(v) for v in columns[5]], pa.decimal128(12, 2)),
            "consent_email": pa.array(columns[6], pa.bool_()),
            "signup_date": pa.array([_d(v) for v in columns[7]], pa.date32()),
            "last_purchase_at": pa.array([_ts(v) for v in columns[8]], pa.timestamp("us", tz="UTC")),
        }
    )
