"""Scraping ``/metrics`` the way Prometheus does, and reading samples out of the answer."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from segmentsync.observe.health import worker_app
from segmentsync.runtime import Runtime

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(runtime: Runtime) -> Samples:
    """``GET /metrics`` of a worker's metrics server (the same registry as ``serve``'s)."""
    answer = TestClient(worker_app(runtime)).get("/metrics")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def scrape_url(url: str) -> Samples:
    answer = httpx.get(f"{url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value (0 if absent: a counter that never counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def by_label(samples: Samples, name: str, label: str, **labels: str) -> Mapping[str, float]:
    wanted = set(labels.items())
    return {
        dict(have)[label]: v
        for (n, have), v in samples.items()
        if n == name and wanted <= have and label in dict(have)
    }
