"""The Grafana dashboard and docs/operations.md name only metrics that exist, and every
segmentsync metric is documented (the dashboard and the docs stay true to the code)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from segmentsync.api.app import create_app
from segmentsync.observe.health import worker_app
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker

# What is checked here does not depend on the store: SQLite only.
pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
DOCS = Path(__file__).parents[2] / "docs"
NAME = re.compile(r"\bsegmentsync_[a-z_]+")
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def exposed(runtime: Runtime) -> set[str]:
    create_app(runtime)  # the HTTP request metrics are registered with the web app
    runtime.settings.metrics_exports = "*"
    Worker(runtime).beat()  # the heartbeat age is there once a worker beat
    text = TestClient(worker_app(runtime)).get("/metrics").text
    return {
        family.name
        for family in text_string_to_metric_families(text)
        if family.name.startswith("segmentsync_")
    }


def test_the_dashboard_queries_only_metrics_that_exist(runtime: Runtime) -> None:
    families = exposed(runtime)
    known = {family + suffix for family in families for suffix in SUFFIXES}
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used, "the dashboard queries segmentsync metrics"
    assert used <= known, used - known
    panels = {panel["title"] for panel in dashboard["panels"]}
    for row in ("Runs", "Rows", "Queue and workers", "Platforms"):
        assert row in panels


def test_every_metric_is_documented_and_the_docs_name_no_other(runtime: Runtime) -> None:
    families = exposed(runtime)
    operations = (DOCS / "operations.md").read_text()
    section = operations[operations.index("## Metrics") : operations.index("## Logs")]
    documented = set(NAME.findall(section))
    known = {family + suffix for family in families for suffix in SUFFIXES}
    assert documented <= known, documented - known
    for family in families:  # counters are documented by their sample name (…_total)
        assert family in documented or f"{family}_total" in documented, family
