"""Operating segmentsync: health checks, Prometheus metrics, log context and (optional) traces.

* :mod:`.context` — the run a log line belongs to (contextvars, copied into the run's threads).
* :mod:`.metrics` — the metric families, the run and platform hooks.
* :mod:`.gauges` — the queue, workers and last successes, read from the store at each scrape.
* :mod:`.health` — ``/healthz`` and ``/readyz``, and the worker's own small HTTP server.
* :mod:`.runs` — what happens around one run: its start and end lines, metrics and trace.
* :mod:`.tracing` — OpenTelemetry, when the ``otel`` extra is installed (a no-op otherwise).
"""
