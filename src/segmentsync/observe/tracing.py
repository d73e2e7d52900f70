"""OpenTelemetry traces, with the ``otel`` extra installed (without it, every function here is a
no-op and nothing is imported).

A run is one trace: a root span ``run`` (attributes: run id, export, connection, platform,
trigger, attempt, status), a child span per phase, and under those a span per platform request
(httpx instrumentation; the run's threads carry the context, see ``observe.context.carry``).
With the web app, each API request is a trace (FastAPI instrumentation), with its SQL statements
(SQLAlchemy instrumentation) inside.

:func:`configure` sets up the exporter from the standard ``OTEL_*`` variables — only when
``OTEL_TRACES_EXPORTER`` or an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set and no tracer
provider is installed yet — and instruments httpx, SQLAlchemy and the app.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    AVAILABLE = True
except ImportError:  # the otel extra is not installed: nothing here does anything
    AVAILABLE = False

if TYPE_CHECKING:
    from fastapi import FastAPI

    from segmentsync.runtime import Runtime

log = logging.getLogger(__name__)
TRACER = "segmentsync"
_instrumented: set[str] = set()


def wanted() -> bool:
    """Do the ``OTEL_*`` variables ask for traces?"""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter:
        return exporter != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(runtime: Runtime | None = None, app: FastAPI | None = None) -> bool:
    """Traces for this process, if the extra is installed and ``OTEL_*`` ask for them."""
    if not AVAILABLE or not wanted():
        return False
    # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
    from opentelemetry.sdk.trace import TracerProvider

    # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # not set up yet in this process
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "segmentsync")})
        provider = TracerProvider(resource=resource.merge(OTELResourceDetector().detect()))
        exporter: SpanExporter
        if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
            exporter = ConsoleSpanExporter()
        else:
            # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout: from OTEL_EXPORTER_OTLP_*
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        log.info("tracing: spans are exported (%s)", exporter.__class__.__name__)
    instrument(runtime, app)
    return True


def instrument(runtime: Runtime | None = None, app: FastAPI | None = None) -> None:
    """Platform requests (httpx), SQL (SQLAlchemy) and API requests (FastAPI) as spans."""
    if not AVAILABLE:
        return
    if "httpx" not in _instrumented:
        # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
        _instrumented.add("httpx")
    if runtime is not None and f"engine-{id(runtime.engine)}" not in _instrumented:
        # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # It declares SQLAlchemy < 2.1 and would do nothing with 2.1; its engine events work with
        # 2.1 (tests/observe/test_tracing.py), so its version check is skipped. One engine per process.
        SQLAlchemyInstrumentor().instrument(engine=runtime.engine, skip_dep_check=True)
        _instrumented.add(f"engine-{id(runtime.engine)}")
    if app is not None:
        # lazy: the optional extra (otel), loaded only when OTEL_* asks for traces
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics,static")


@contextmanager
def run_span(run_id: int, attributes: dict[str, Any]) -> Iterator[Any]:
    """The root span of one run (a new trace, whatever was current), current in this block."""
    if not AVAILABLE:
        yield None
        return
    tracer = trace.get_tracer(TRACER)
    root = otel_context.Context()  # a run is its own trace, not part of a CLI's or a request's
    with tracer.start_as_current_span(
        "run", context=root, kind=trace.SpanKind.INTERNAL, attributes=_attrs(attributes)
    ) as span:
        yield span


class PhaseSpan:
    """The span of the run's current phase, made current in the run's thread until the next phase."""

    def __init__(self) -> None:
        self._span: Any = None
        self._token: Any = None

    def enter(self, phase: str, parent: Any) -> None:
        self.leave()
        if not AVAILABLE or parent is None:
            return
        context = trace.set_span_in_context(parent)
        self._span = trace.get_tracer(TRACER).start_span(f"phase {phase}", context=context)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def leave(self) -> None:
        if self._token is not None:
            try:
                otel_context.detach(self._token)
            except Exception:  # another thread's context: the span still ends
                log.debug("tracing: phase span left from another context")
            self._token = None
        if self._span is not None:
            self._span.end()
            self._span = None


def set_attributes(span: Any, attributes: dict[str, Any]) -> None:
    if span is not None:
        span.set_attributes(_attrs(attributes))


def mark_failed(span: Any, message: str) -> None:
    if span is not None:
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))


def _attrs(attributes: dict[str, Any]) -> dict[str, Any]:
    return {f"segmentsync.{key}": value for key, value in attributes.items() if value is not None}
