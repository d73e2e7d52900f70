"""What a customer would write with the official client: a plain loop over ``createsend``.

Reads the members from the DuckDB file in batches of 1,000 (the same rows and fields as the
floor, ``benchmarks/floor.py``) and imports each batch with ``Subscriber.import_subscribers``,
one call at a time. ``createsend`` always speaks TLS: as in ``tests/sandbox/test_createsend_client.py``
its connection class is swapped for ``http.client.HTTPConnection`` and ``base_uri`` points at the
sandbox; nothing else is changed.

    python -m benchmarks.createsend_loop --profiles FILE --api URL --list ID --api-key KEY --email-pattern RE
"""

from __future__ import annotations

import argparse
import http.client
import time
from typing import Any

import createsend.createsend as createsend_module
import duckdb
import orjson
from createsend import CreateSend, Subscriber

from benchmarks.floor import QUERY


def subscribers(emails: list[str], names: list[str | None], cities: list[str | None]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for email, name, city in zip(emails, names, cities, strict=True):
        row: dict[str, Any] = {"EmailAddress": email, "Name": name or "", "ConsentToTrack": "Unchanged"}
        if city is not None:
            row["CustomFields"] = [{"Key": "City", "Value": city}]
        rows.append(row)
    return rows


def send_all(args: argparse.Namespace) -> tuple[int, int]:
    """(rows, calls)."""
    createsend_module.VerifiedHTTPSConnection = http.client.HTTPConnection  # the sandbox speaks plain HTTP
    CreateSend.base_uri = args.api
    client = Subscriber({"api_key": args.api_key})
    con = duckdb.connect(args.profiles, read_only=True)
    rows = calls = 0
    for batch in con.execute(QUERY, [args.email_pattern]).fetch_record_batch(args.batch):
        columns = batch.to_pydict()
        client.import_subscribers(
            args.list, subscribers(columns["email"], columns["name"], columns["city"]), False
        )
        rows += batch.num_rows
        calls += 1
    con.close()
    return rows, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", required=True, help="the DuckDB file")
    parser.add_argument("--api", required=True, help="Campaign Monitor API base, …/api/v3.3")
    parser.add_argument("--list", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--email-pattern", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    started = time.perf_counter()  # after the imports: the loop's own time, as the run's is
    rows, calls = send_all(parser.parse_args())
    seconds = time.perf_counter() - started
    print(orjson.dumps({"rows": rows, "calls": calls, "seconds": seconds}).decode())


if __name__ == "__main__":
    main()
