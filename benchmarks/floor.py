"""The floor: the least any Campaign Monitor export of these profiles can cost on this machine.

A bare loop, run as its own process: read the members from the DuckDB file as Arrow batches of
1,000, build the same ``import.json`` bodies as the export (e-mail, Name, the City custom field,
ConsentToTrack) with orjson and post them with httpx, 4 in flight, to the same sandbox. No
diffing, no bookkeeping, no retries. E-mails are lower-cased, trimmed and checked with the same
fast pattern as the snapshot (passed in), so it sends about the rows the export sends (duplicates
are not removed: about 1 % more).

    python -m benchmarks.floor --profiles FILE --api URL --list ID --api-key KEY --email-pattern RE
"""

from __future__ import annotations

import argparse
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import duckdb
import httpx
import orjson

QUERY = """
SELECT lower(trim(email)) AS email, nullif(concat_ws(' ', first_name, last_name), '') AS name, city
FROM profiles
WHERE regexp_full_match(lower(trim(email)), $1)
"""


def body(emails: list[str], names: list[str | None], cities: list[str | None]) -> bytes:
    rows: list[dict[str, Any]] = []
    for email, name, city in zip(emails, names, cities, strict=True):
        row: dict[str, Any] = {"EmailAddress": email, "ConsentToTrack": "Unchanged", "Name": name or ""}
        if city is not None:
            row["CustomFields"] = [{"Key": "City", "Value": city}]
        rows.append(row)
    return orjson.dumps(
        {
            "Subscribers": rows,
            "Resubscribe": False,
            "QueueSubscriptionBasedAutoResponders": False,
            "RestartSubscriptionBasedAutoresponders": False,
        }
    )


def post(http: httpx.Client, url: str, content: bytes) -> None:
    answer = http.post(url, content=content, headers={"Content-Type": "application/json"})
    if answer.status_code not in (200, 201, 400):  # 400 Code 210: some rows refused, the rest imported
        raise RuntimeError(f"import answered {answer.status_code}: {answer.text[:200]}")


def send_all(args: argparse.Namespace) -> tuple[int, int]:
    """(rows, calls)."""
    con = duckdb.connect(args.profiles, read_only=True)
    reader = con.execute(QUERY, [args.email_pattern]).fetch_record_batch(args.batch)
    url = f"{args.api}/subscribers/{args.list}/import.json"
    limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)
    rows = calls = 0
    with (
        httpx.Client(auth=(args.api_key, "x"), limits=limits, timeout=120) as http,
        ThreadPoolExecutor(args.in_flight) as pool,
    ):
        in_flight: set[Future[None]] = set()
        for batch in reader:
            columns = batch.to_pydict()
            content = body(columns["email"], columns["name"], columns["city"])
            if len(in_flight) >= args.in_flight:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
            in_flight.add(pool.submit(post, http, url, content))
            rows += batch.num_rows
            calls += 1
        for future in in_flight:
            future.result()
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
    parser.add_argument("--in-flight", type=int, default=4)
    rows, calls = send_all(parser.parse_args())
    print(orjson.dumps({"rows": rows, "calls": calls}).decode())


if __name__ == "__main__":
    main()
