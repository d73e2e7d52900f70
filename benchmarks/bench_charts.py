"""The charts' queries on a year of runs: an export's runs chart and Status's runs per day.

Builds a store with a year of daily runs of 200 exports (73,000 runs, ``benchmarks/year.py``, with
few rows per run: the charts read only ``runs``) in a temporary folder (SQLite) or a scratch
PostgreSQL database, then times ``web.charts.export_runs`` (an export with a year of runs) and
``web.charts.runs_per_day`` (the last 30 days of every export), ``--repeat`` times each, and the
pages that show them (``/exports/{id}``, ``/system/status``) through FastAPI's test client.

Run: ``.venv/bin/python -m benchmarks.bench_charts [--store sqlite|postgresql] [--repeat 50]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from benchmarks import year
from benchmarks.report import publish
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.db import create_engine, transaction
from segmentsync.exports.models import Run
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings
from segmentsync.web import charts
from segmentsync.web.i18n import Translator

POSTGRES = os.environ.get("SEGMENTSYNC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
SCALE = year.Scale(users_per_role=1, members=20, changed=2, big=200, audit=200, notifications=5, rows_kept=1)


def _timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), max(took)


def _url(store: str, folder: Path) -> str:
    if store == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text('DROP DATABASE IF EXISTS "segmentsync_bench_charts" WITH (FORCE)'))
        connection.execute(sa.text('CREATE DATABASE "segmentsync_bench_charts"'))
    admin.dispose()
    return f"{POSTGRES}/segmentsync_bench_charts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Sandbox.start() as sandbox:
        settings = Settings(
            data_dir=Path(folder), secret_key=Fernet.generate_key().decode(), database_url=_url(args.store, Path(folder)),
            campaign_monitor_api_url=sandbox.campaign_monitor_api, campaign_monitor_oauth_url=sandbox.campaign_monitor_oauth,
            constant_contact_api_url=sandbox.constant_contact_api, constant_contact_oauth_url=sandbox.constant_contact_oauth,
        )  # fmt: skip
        runtime = Runtime.open(settings)
        started = time.perf_counter()
        built = year.build(runtime, sandbox, SCALE)
        build_seconds = time.perf_counter() - started
        tr = Translator("pl")
        export_id = built.exports[0]
        with transaction(runtime.sessions) as session:
            runs = session.scalar(sa.select(sa.func.count()).select_from(Run)) or 0
            own = session.scalar(sa.select(sa.func.count()).where(Run.export_id == export_id)) or 0
            # The year's runs end at build time; chart them as of the last one.
            now = session.scalar(sa.select(sa.func.max(Run.created_at)))
            assert now is not None
            per_export = _timed(lambda: charts.export_runs(session, export_id, now=now, tr=tr), args.repeat)
            per_day = _timed(lambda: charts.runs_per_day(session, now=now, tr=tr), args.repeat)
            spec = charts.runs_per_day(session, now=now, tr=tr)
            charted = sum(sum(d["data"]) for d in spec["datasets"]) if spec else 0
        client = TestClient(create_app(runtime))
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").text)
        assert found is not None
        signed_in = client.post("/sign-in", data={"email": built.users[Role.ADMIN][0], "password": year.PASSWORD,
                                                  "next": "/exports", "csrf_token": found.group(1)})  # fmt: skip
        assert signed_in.status_code == 200, signed_in.status_code
        export_page = _timed(lambda: client.get(f"/exports/{export_id}").raise_for_status(), args.repeat)
        status_page = _timed(lambda: client.get("/system/status").raise_for_status(), args.repeat)
        runtime.close()
    rows = [
        ["export runs chart (query)", f"{own:,} runs of the export; last 60 of 90 days", *per_export],
        ["runs per day chart (query)", f"{runs:,} runs in all; {charted:,} in 30 days", *per_day],
        ["/exports/{id} page", "with both export charts", *export_page],
        ["/system/status page", "with the runs per day chart", *status_page],
    ]
    publish(
        f"charts-{args.store}",
        f"Charts on a year of runs ({args.store})",
        ["what", "data", "p50 ms", "max ms"],
        [[r[0], r[1], f"{r[2]:.1f}", f"{r[3]:.1f}"] for r in rows],
        notes=f"`benchmarks/bench_charts.py --store {args.store}`: {args.repeat} times each, in-process "
        f"(FastAPI's test client for the pages); store built in {build_seconds:.0f} s. The machine "
        "(2 cores) was shared with other work while measured.",
    )


if __name__ == "__main__":
    main()
