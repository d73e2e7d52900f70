"""Constant Contact emulator: a 40,000-row import accepted, processed, and memory for 2M contacts.

Everything goes over real HTTP to a ``Sandbox`` process (httpx keep-alive on loopback), as the
exports and their benchmarks use it. Imports are accepted with a very high activity speed, so that
the POST measures receiving only (parse, checks, queue) and the next GET of the activity applies
the rows (create or update every contact, add it to the list): that GET measures processing.
Memory is the sandbox process's resident size before and after loading the contacts (both
emulators live in that process; the baseline is subtracted).

    .venv/bin/python -m benchmarks.bench_sandbox_cc [--contacts 2000000] [--updates 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx
import orjson

from benchmarks.report import publish
from segmentsync.sandbox.launcher import Sandbox

ROWS = 40_000
FIRST = ["Anna", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena"]
LAST = ["Smith", "García", "Nowak", "Kim", "Okafor", "Rossi", "Berg", "Silva", "Tanaka", "Novak", "Haddad"]
TIERS = ["gold", "silver", "bronze"]


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def import_body(list_id: str, start: int, count: int, tag: str = "") -> bytes:
    rows = [
        {
            "email": f"person{n:08d}@example.com",
            "first_name": FIRST[n % len(FIRST)] + tag,
            "last_name": LAST[n % len(LAST)],
            "cf:tier": TIERS[n % len(TIERS)],
        }
        for n in range(start, start + count)
    ]
    return orjson.dumps({"import_data": rows, "list_ids": [list_id]})


class Client:
    def __init__(self, sandbox: Sandbox) -> None:
        self.http = httpx.Client(base_url=sandbox.constant_contact_url, timeout=600)
        account = self.control("accounts", {"name": "Benchmark"})
        self.headers = {
            "Authorization": f"Bearer {account['access_token']}",
            "Content-Type": "application/json",
        }
        # no rate limit; an activity takes 4 ms, so it is applied by the next request, not in the POST
        self.control(
            "faults", {"requests_per_second": None, "daily_quota": None, "activity_rows_per_second": 1e7}
        )

    def control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def timed(self, method: str, path: str, content: bytes | None = None) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = self.http.request(method, path, content=content, headers=self.headers)
        elapsed = time.perf_counter() - start
        assert response.status_code < 300, response.text
        return elapsed, response

    def import_rows(self, body: bytes) -> tuple[float, float]:
        """(seconds to accept, seconds to process) of one import."""
        accept, response = self.timed("POST", "/v3/activities/contacts_json_import", body)
        activity_id = response.json()["activity_id"]
        time.sleep(0.01)  # past the activity's finish time
        process, status = self.timed("GET", f"/v3/activities/{activity_id}")
        assert status.json()["state"] == "completed", status.text
        return accept, process


def load(client: Client, list_id: str, contacts: int) -> tuple[list[float], list[float]]:
    accepts, processes = [], []
    for start in range(0, contacts, ROWS):
        accept, process = client.import_rows(import_body(list_id, start, min(ROWS, contacts - start)))
        accepts.append(accept)
        processes.append(process)
    return accepts, processes


def measure(contacts: int, updates: int) -> list[tuple[str, str, str]]:
    with Sandbox.start() as sandbox:
        client = Client(sandbox)
        client.timed("POST", "/v3/contact_custom_fields", orjson.dumps({"label": "tier", "type": "string"}))
        list_id = client.timed("POST", "/v3/contact_lists", orjson.dumps({"name": "All"}))[1].json()[
            "list_id"
        ]
        small_id = client.timed("POST", "/v3/contact_lists", orjson.dumps({"name": "Small"}))[1].json()[
            "list_id"
        ]
        before, _ = rss_mb(sandbox.process.pid)
        accepts, creates = load(client, list_id, contacts)
        after, peak = rss_mb(sandbox.process.pid)
        update_times = [
            client.import_rows(import_body(list_id, n * ROWS, ROWS, tag="x"))[1] for n in range(updates)
        ]
        load(client, small_id, 200_000)
        members, response = client.timed("GET", f"/_sandbox/lists/{small_id}/members")
        assert len(response.json()["members"]) == 200_000
        page, _ = client.timed("GET", f"/v3/contacts?lists={small_id}&limit=500&include=custom_fields")
        counted, _ = client.timed(
            "GET", f"/v3/contacts?lists={small_id}&status=active&limit=500&include_count=true"
        )
        small = [client.timed("GET", "/v3/contact_lists?include_membership_count=all")[0] for _ in range(50)]
        client.http.close()
    per_contact = (after - before) * 1024 * 1024 / contacts
    return [
        ("40,000-row import accepted (201), median / max", f"{_ms(statistics.median(accepts))} / {_ms(max(accepts))}", "≤ 1,000 ms"),
        ("40,000-row import processed, new contacts, median", f"{_ms(statistics.median(creates))} ({_rate(creates)})", "≫ 25,000 rows/s"),
        ("40,000-row import processed, existing contacts, median", f"{_ms(statistics.median(update_times))} ({_rate(update_times)})", "≫ 25,000 rows/s"),
        (f"memory for {contacts:,} contacts (RSS growth)", f"{after - before:,.0f} MB ({per_contact:,.0f} B/contact; peak RSS {peak:,.0f} MB)", "fits in memory"),
        ("members read-back, 200,000 members (one JSON answer)", _ms(members), ""),
        (f"GET /v3/contacts?lists=…&limit=500 at {contacts:,} contacts", _ms(page), ""),
        ("… with status=active&include_count=true (scans every contact)", _ms(counted), ""),
        ("GET /v3/contact_lists round trip, median of 50", _ms(statistics.median(small)), ""),
    ]  # fmt: skip


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _rate(times: list[float]) -> str:
    return f"{ROWS / statistics.median(times):,.0f} rows/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--contacts", type=int, default=2_000_000)
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()
    rows = measure(args.contacts, args.updates)
    publish(
        "sandbox_cc",
        "Constant Contact emulator",
        ["measure", "value", "target"],
        rows,
        notes=(
            "Over real HTTP to the sandbox process (loopback, keep-alive); times include sending the "
            "~1.9 MB body. *Processing* is the emulator's own cost of applying an activity's rows, which "
            "the simulated activity speed (`activity_rows_per_second`, default 5,000) hides behind. "
            "Script: `benchmarks/bench_sandbox_cc.py`."
        ),
    )


if __name__ == "__main__":
    main()
