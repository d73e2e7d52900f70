"""Traces with the ``otel`` extra: a run is one trace — a root span, a span per phase, a span per
platform request under its phase — and an API request is a trace with its SQL inside. Spans are
caught by the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.api.app import create_app
from segmentsync.exports.models import RunStatus
from segmentsync.observe import tracing

from .runs import make_export, run_export

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
from opentelemetry import trace  # only with the extra installed
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()
# What is checked here does not depend on the store: SQLite only.
pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def spans(world: World) -> Iterator[InMemorySpanExporter]:
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # once per process: the global provider is set once
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    tracing.instrument(world.runtime)  # what configure() does once OTEL_* ask for traces
    yield EXPORTER
    HTTPXClientInstrumentor().uninstrument()
    SQLAlchemyInstrumentor().uninstrument()
    tracing._instrumented.clear()
    EXPORTER.clear()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_run_is_one_trace_with_a_span_per_phase_and_per_platform_request(
    world: World, spans: InMemorySpanExporter
) -> None:
    export_id = make_export(world, "constant_contact")
    run = run_export(world, export_id)
    assert run.status is RunStatus.SUCCEEDED
    finished = spans.get_finished_spans()
    [root] = [span for span in finished if span.name == "run"]
    assert root.parent is None
    assert attrs(root).items() >= {
        "segmentsync.run_id": run.id, "segmentsync.export_id": export_id, "segmentsync.platform": "constant_contact",
        "segmentsync.trigger": "on_demand", "segmentsync.status": "succeeded", "segmentsync.new": 20,
    }.items()  # fmt: skip
    trace_id = root.context.trace_id
    in_run = [span for span in finished if span.context.trace_id == trace_id]
    phases = {span.name: span for span in in_run if span.name.startswith("phase ")}
    assert set(phases) == {"phase snapshot", "phase plan", "phase send", "phase finish"}
    assert all(
        span.parent is not None and span.parent.span_id == root.context.span_id for span in phases.values()
    )
    requests = [
        span for span in in_run if "http.request.method" in attrs(span) or "http.method" in attrs(span)
    ]
    by_id = {span.context.span_id: span for span in in_run}
    parents = {by_id[span.parent.span_id].name for span in requests if span.parent is not None}
    assert parents <= {"phase plan", "phase send"}
    imports = [
        span for span in requests
        if str(attrs(span).get("url.full", attrs(span).get("http.url", ""))).endswith("/activities/contacts_json_import")
    ]  # fmt: skip
    assert imports, [span.name for span in requests]
    assert {by_id[span.parent.span_id].name for span in imports if span.parent} == {"phase send"}
    # the run's SQL is in its trace too, and no span of the run is left in another trace
    assert any(attrs(span).get("db.system") for span in in_run)


def test_an_api_request_is_a_trace_with_its_sql(world: World, spans: InMemorySpanExporter) -> None:
    app = create_app(world.runtime)
    tracing.instrument(world.runtime, app)
    token = world.admin.token
    answer = TestClient(app).get("/api/v1/exports", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    finished = spans.get_finished_spans()
    [server] = [span for span in finished if span.kind is trace.SpanKind.SERVER]
    assert server.name == "GET /api/v1/exports"
    sql = [
        span
        for span in finished
        if span.context.trace_id == server.context.trace_id and attrs(span).get("db.system")
    ]
    assert sql, [
        (span.name, span.context.trace_id == server.context.trace_id, attrs(span)) for span in finished
    ]
