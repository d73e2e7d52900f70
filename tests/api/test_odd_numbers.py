"""Numbers JSON has no room for (NaN, Infinity, 1e400) and digits that are not ASCII ("²"): every
input path refuses them with a 4xx naming the field, and an error answer is always JSON."""

from __future__ import annotations

import itertools
import math

import pytest
from fastapi.testclient import TestClient

from people import make_person
from segmentsync.api import errors
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.db import id_from_text
from segmentsync.errors import Invalid
from segmentsync.runtime import Runtime
from segmentsync.segments import rules

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
RULE = '{"rules": {"op": "and", "items": [{"column": "total_spend", "operator": "gt", "value": %s}]}}'


@pytest.fixture
def viewer_client(runtime: Runtime) -> TestClient:
    viewer = make_person(runtime, "victor@example.com", Role.VIEWER)
    return TestClient(create_app(runtime), headers=viewer.auth)


def test_a_non_finite_number_in_a_rule_is_refused_naming_the_field(viewer_client: TestClient) -> None:
    for number, path in itertools.product(NON_FINITE, ("/api/v1/segments/count", "/api/v1/segments/preview")):
        answer = viewer_client.post(path, content=RULE % number, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "rules.items.0.value"
        assert "finite" in error["message"]


def test_a_non_finite_number_anywhere_in_any_body_is_refused(viewer_client: TestClient) -> None:
    answer = viewer_client.patch(
        "/api/v1/me", content='{"name": "x", "language": [1, {"deep": NaN}]}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "language.1.deep"


@pytest.mark.parametrize("number", NON_FINITE)
def test_rules_from_the_command_line_and_the_pages_refuse_them_too(number: str) -> None:
    text = RULE.removeprefix('{"rules": ').removesuffix("}") % number
    with pytest.raises(Invalid) as refused:
        rules.parse(text)
    assert refused.value.field == "rules.items.0.value"
    with pytest.raises(Invalid):
        rules.parse({"op": "and", "items": [{"column": "a", "operator": "in", "value": [1, float(number)]}]})


def test_an_error_that_quotes_a_non_finite_number_is_still_json() -> None:
    body = errors.json_safe({"details": {"condition": {"value": [math.nan, math.inf, -math.inf, 1.5]}}})
    assert body == {"details": {"condition": {"value": ["NaN", "Infinity", "-Infinity", 1.5]}}}


@pytest.mark.parametrize("typed", ["²", "١", "³⁴", "𝟙", " 12x", "-1", "", "99999999999999999999"])
def test_ids_as_typed_are_ascii_digits_within_range(typed: str) -> None:
    assert id_from_text(typed) is None
    assert id_from_text(" 42 ") == 42
