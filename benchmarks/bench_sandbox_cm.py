"""Campaign Monitor emulator: server time of one 1,000-subscriber import, and memory for 2M subscribers.

Server time is measured in process: each request goes through the whole ASGI app (fault middleware,
routing, auth, JSON parsing, the import itself, the JSON answer) without a network in between. One
import over real HTTP (``Sandbox`` process, httpx keep-alive) is shown too, for comparison.

    .venv/bin/python -m benchmarks.bench_sandbox_cm [--subscribers 2000000] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from benchmarks.report import publish
from segmentsync.sandbox.campaign_monitor import create_app
from segmentsync.sandbox.faults import ASGIApp
from segmentsync.sandbox.launcher import Sandbox

TARGET_MS = 25.0
FIELDS = (("City", "Text"), ("Age", "Number"), ("Joined", "Date"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class InProcess:
    """Calls the ASGI app directly, as uvicorn would, and returns (status, body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.auth: list[tuple[bytes, bytes]] = []

    async def call(self, method: str, path: str, body: Any = None, query: bytes = b"") -> tuple[int, Any]:
        payload = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else b"")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), *self.auth],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8801),
        }
        messages = [{"type": "http.request", "body": payload, "more_body": False}]
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            else:
                answer["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return answer["status"], orjson.loads(answer["body"]) if answer["body"] else None


def import_body(start: int, *, fields: bool) -> bytes:
    rows = [
        {
            "EmailAddress": f"user{start + i}@example.com",
            "Name": f"User {start + i}",
            "ConsentToTrack": "Yes",
            "CustomFields": [
                {"Key": "[City]", "Value": "Oslo"},
                {"Key": "[Age]", "Value": str(i % 90)},
                {"Key": "[Joined]", "Value": "2024-01-02"},
            ]
            if fields
            else [],
        }
        for i in range(1000)
    ]
    return orjson.dumps({"Subscribers": rows, "Resubscribe": True})


async def setup(api: InProcess) -> tuple[str, str]:
    _, client = await api.call("POST", "/_sandbox/clients", {"Name": "Bench"})
    api.auth = [(b"authorization", b"Basic " + base64.b64encode(f"{client['ApiKey']}:x".encode()))]
    _, list_id = await api.call("POST", f"/api/v3.3/lists/{client['ClientID']}.json", {"Title": "Fields"})
    for name, data_type in FIELDS:
        await api.call(
            "POST", f"/api/v3.3/lists/{list_id}/customfields.json", {"FieldName": name, "DataType": data_type}
        )
    _, big = await api.call("POST", f"/api/v3.3/lists/{client['ClientID']}.json", {"Title": "Big"})
    return list_id, big


async def timed_imports(api: InProcess, list_id: str, bodies: list[bytes]) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) per import call."""
    times = []
    for body in bodies:
        wall, cpu = time.perf_counter(), time.process_time()
        status, answer = await api.call("POST", f"/api/v3.3/subscribers/{list_id}/import.json", body)
        times.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
        assert status == 201, answer
    return times


def summary(times: list[tuple[float, float]]) -> tuple[str, str, str, str]:
    """Median, p95 and max of the wall times, and the median CPU time."""
    ordered = sorted(wall for wall, _ in times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    cpu = statistics.median(cpu for _, cpu in times)
    return f"{statistics.median(ordered):.1f}", f"{p95:.1f}", f"{ordered[-1]:.1f}", f"{cpu:.1f}"


async def fill(api: InProcess, list_id: str, subscribers: int, *, fields: bool) -> tuple[float, float]:
    """Import ``subscribers`` in calls of 1,000: (bytes of RSS per subscriber, seconds)."""
    gc.collect()
    before, started = rss_bytes(), time.perf_counter()
    for start in range(0, subscribers, 1000):
        body = import_body(10**8 + start, fields=fields)
        status, _ = await api.call("POST", f"/api/v3.3/subscribers/{list_id}/import.json", body)
        assert status == 201
    seconds = time.perf_counter() - started
    gc.collect()
    return (rss_bytes() - before) / subscribers, seconds


async def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    await action()
    return (time.perf_counter() - started) * 1000


def over_http(calls: int) -> list[tuple[float, float]]:
    """Wall ms per import through a real sandbox process and httpx (no CPU figure: two processes)."""
    with Sandbox.start() as sandbox, httpx.Client(base_url=sandbox.campaign_monitor_url, timeout=60) as http:
        client = sandbox.create_cm_client("Bench")
        http.auth = httpx.BasicAuth(client["ApiKey"], "x")
        list_id = http.post(f"/api/v3.3/lists/{client['ClientID']}.json", json={"Title": "HTTP"}).json()
        for name, data_type in FIELDS:
            http.post(
                f"/api/v3.3/lists/{list_id}/customfields.json",
                json={"FieldName": name, "DataType": data_type},
            )
        bodies = [import_body(i * 1000, fields=True) for i in range(calls)]
        headers = {"content-type": "application/json"}
        times = []
        for body in bodies:
            started = time.perf_counter()
            response = http.post(
                f"/api/v3.3/subscribers/{list_id}/import.json", content=body, headers=headers
            )
            times.append(((time.perf_counter() - started) * 1000, float("nan")))
            assert response.status_code == 201, response.text
        return times


@dataclass
class Results:
    subscribers: int
    new: list[tuple[float, float]] = field(default_factory=list)
    existing: list[tuple[float, float]] = field(default_factory=list)
    at_scale: list[tuple[float, float]] = field(default_factory=list)
    http: list[tuple[float, float]] = field(default_factory=list)
    ms: dict[str, float] = field(default_factory=dict)  # single timings
    memory: dict[str, float] = field(default_factory=dict)  # bytes per subscriber
    fill_rate: float = 0.0
    rss: int = 0  # bytes, with every subscriber stored


async def measure(subscribers: int, calls: int) -> Results:
    api = InProcess(create_app())
    list_id, big = await setup(api)
    out = Results(subscribers)
    bodies = [import_body(i * 1000, fields=True) for i in range(calls)]
    out.new = await timed_imports(api, list_id, bodies)
    out.existing = await timed_imports(api, list_id, bodies)
    out.memory["fields"], _ = await fill(api, list_id, subscribers // 10, fields=True)
    out.memory["plain"], seconds = await fill(api, big, subscribers, fields=False)
    out.fill_rate = subscribers / seconds
    more = [import_body(10**8 + i * 1000, fields=False) for i in range(calls)]
    out.at_scale = await timed_imports(api, big, more)
    active = f"/api/v3.3/lists/{big}/active.json"
    out.ms["page_1"] = await timed(lambda: api.call("GET", active, query=b"pagesize=1000"))
    out.ms["page_2"] = await timed(lambda: api.call("GET", active, query=b"pagesize=1000&page=2"))
    out.ms["stats"] = await timed(lambda: api.call("GET", f"/api/v3.3/lists/{big}/stats.json"))
    out.ms["gc"] = await timed(gc_pass)
    out.rss = rss_bytes()
    return out


def table(out: Results) -> list[tuple[str, ...]]:
    n = f"{out.subscribers:,}"

    def single(label: str, value: str) -> tuple[str, ...]:
        return (label, value, "", "", "")

    return [
        ("import 1,000 new (3 custom fields), server ms", *summary(out.new)),
        ("import 1,000 existing (3 custom fields), server ms", *summary(out.existing)),
        (f"import 1,000 existing into a {n} list, server ms", *summary(out.at_scale)),
        ("import 1,000 over HTTP (client + server), ms", *summary(out.http)[:3], ""),
        single(f"active.json page 1 of {n} (sorts), ms", f"{out.ms['page_1']:.0f}"),
        single("active.json page 2 (sort cached), ms", f"{out.ms['page_2']:.1f}"),
        single("stats.json, ms", f"{out.ms['stats']:.1f}"),
        single(f"full garbage-collector pass with {n} stored, ms", f"{out.ms['gc']:.0f}"),
        single(f"memory per subscriber ({n}, name, no custom fields)", f"{out.memory['plain']:.0f} B"),
        single("memory per subscriber (name and 3 custom fields)", f"{out.memory['fields']:.0f} B"),
        single("process RSS with everything stored", f"{out.rss / 2**20:.0f} MiB"),
        single("fill rate (in process, no custom fields)", f"{out.fill_rate:,.0f} subscribers/s"),
    ]


async def gc_pass() -> None:
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=2_000_000)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    results = asyncio.run(measure(args.subscribers, args.calls))
    results.http = over_http(args.calls)
    rows = table(results)
    wall, cpu = float(rows[0][1]), float(rows[0][4])
    load = os.getloadavg()[0]
    notes = (
        f"Target: one 1,000-subscriber import in at most {TARGET_MS:.0f} ms of server time: "
        f"{'met' if min(wall, cpu) <= TARGET_MS else 'NOT met'} (median {wall:.1f} ms wall, {cpu:.1f} ms CPU; "
        f"load average {load:.1f} on {os.cpu_count()} cores while measuring). Server time is the whole ASGI app "
        "called in process (routing, auth, JSON in and out, the import); 'median CPU' is the process's CPU time "
        "for the same calls, which other load on the machine changes much less than wall time. Memory is the RSS "
        "growth while importing, divided by the number of subscribers imported."
    )
    headers = ["measure", "median", "p95", "max", "median CPU"]
    publish("sandbox_cm", "Campaign Monitor emulator", headers, rows, notes)


if __name__ == "__main__":
    main()
