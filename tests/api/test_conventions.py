"""Conventions every /api/v1 endpoint keeps, checked on the whole app (later routers included):
one error shape, pagination on every list, secrets write-only, OpenAPI complete; plus /metrics."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
import stamina
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import response_schema_conformance, status_code_conformance

from segmentsync.api.app import API_PREFIX, create_app
from segmentsync.auth import service
from segmentsync.auth.models import Role
from segmentsync.db import transaction
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings

# Response fields that carry a secret on purpose, exactly once, when it is created.
SHOWN_ONCE = {
    ("TokenCreated", "token"),
    ("UserCreated", "generated_password"),
    ("WebhookCreated", "secret"),  # a webhook endpoint's signing secret, when made
    ("WebhookSecret", "secret"),  # and when rotated
}
SECRET_WORDS = ("password", "secret", "api_key", "apikey", "access_token", "refresh_token", "code_verifier")


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def admin_client(app: FastAPI, runtime: Runtime) -> TestClient:
    with transaction(runtime.sessions) as session:
        user = service.create_user(session=session, email="admin@example.com", role=Role.ADMIN, actor=None)
        _, token = service.create_api_token(
            session=session, user=user, name="t", actor=None, now=runtime.clock()
        )
    return TestClient(app, headers={"Authorization": f"Bearer {token}"}, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The OpenAPI document, served by an app on a throwaway SQLite store (the store does not change it)."""
    data_dir = tmp_path_factory.mktemp("openapi")
    runtime = Runtime.open(Settings(data_dir=data_dir, secret_key=Fernet.generate_key().decode()))
    answer = TestClient(create_app(runtime)).get(f"{API_PREFIX}/openapi.json")
    runtime.close()
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path.startswith(API_PREFIX)
    ]


def schema_of(spec: dict[str, Any], ref_or_schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = ref_or_schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    return name, spec["components"]["schemas"][name] if name else ref_or_schema


def test_errors_have_one_shape(admin_client: TestClient) -> None:
    unknown = admin_client.get(f"{API_PREFIX}/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"status": 404, "code": "not_found", "message": "no such endpoint"}}
    wrong_method = admin_client.put(f"{API_PREFIX}/audit")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    invalid = admin_client.get(f"{API_PREFIX}/users", params={"limit": 100_000})
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "limit")
    assert error["message"] == "limit must be at most 500."  # a sentence naming the parameter
    assert error["details"]["errors"][0]["loc"] == ["query", "limit"]  # and where, for programs
    anonymous = TestClient(admin_client.app).get(f"{API_PREFIX}/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert set(anonymous.json()["error"]) == {"status", "code", "message"}


def test_unexpected_failures_are_a_json_500_without_details(app: FastAPI, admin_client: TestClient) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    answer = admin_client.get("/boom")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal"
    assert "internal detail" not in answer.text


def test_every_operation_is_described_and_documents_the_error_shape(spec: dict[str, Any]) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    for method, path, operation in operations(spec):
        where = f"{method} {path}"
        assert operation.get("summary"), f"{where} has no summary"
        assert operation.get("tags"), f"{where} has no tag"
        assert "x-required-actions" in operation, f"{where} does not say who may call it"
        if path != f"{API_PREFIX}/openapi.json":
            error = operation["responses"].get("422") or operation["responses"].get("401")
            assert error is not None, f"{where} documents no error"
            assert schema_of(spec, error["content"]["application/json"]["schema"])[0] == "ErrorBody"


def test_every_list_is_paginated(spec: dict[str, Any]) -> None:
    lists = 0
    for method, path, operation in operations(spec):
        ok = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if method != "GET" or ok is None:
            continue
        name, schema = schema_of(spec, ok["schema"])
        assert schema.get("type") != "array", f"GET {path} returns a bare list; return Page[...]"
        if {"items", "total"} <= set(schema.get("properties", {})):
            lists += 1
            params = {param["name"] for param in operation.get("parameters", [])}
            assert {"limit", "offset"} <= params, f"GET {path} returns {name} without limit/offset"
    assert lists >= 4


def walk_properties(
    spec: dict[str, Any], name: str, schema: dict[str, Any], seen: set[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(schema name, property, property schema) for a schema and the schemas it refers to."""
    if name in seen:
        return []
    seen.add(name)
    found = []
    for prop, prop_schema in schema.get("properties", {}).items():
        found.append((name, prop, prop_schema))
        for ref in _refs(prop_schema):
            ref_name, ref_schema = schema_of(spec, {"$ref": ref})
            found += walk_properties(spec, ref_name, ref_schema, seen)
    return found


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        return ([schema["$ref"]] if "$ref" in schema else []) + [r for v in schema.values() for r in _refs(v)]
    if isinstance(schema, list):
        return [r for item in schema for r in _refs(item)]
    return []


def test_secrets_are_write_only(spec: dict[str, Any]) -> None:
    inputs, outputs = set(), set()
    for _, _, operation in operations(spec):
        body = operation.get("requestBody", {}).get("content", {})
        for content in body.values():
            inputs.update(_refs(content["schema"]))
        for answer in operation["responses"].values():
            for content in answer.get("content", {}).values():
                outputs.update(_refs(content.get("schema", {})))
    for ref in sorted(inputs):
        name, schema = schema_of(spec, {"$ref": ref})
        for owner, prop, prop_schema in walk_properties(spec, name, schema, set()):
            if any(word in prop.lower() for word in SECRET_WORDS):
                secret = prop_schema.get("writeOnly") or any(
                    s.get("writeOnly") for s in prop_schema.get("anyOf", [])
                )
                assert secret, f"{owner}.{prop} takes a secret: make it SecretStr (write-only)"
    for ref in sorted(outputs):
        name, schema = schema_of(spec, {"$ref": ref})
        for owner, prop, prop_schema in walk_properties(spec, name, schema, set()):
            if any(word in prop.lower() for word in SECRET_WORDS) and (owner, prop) not in SHOWN_ONCE:
                # Flags (has_password) and lists of names (secrets_stored) are fine; text is not.
                assert not holds_text(prop_schema), f"{owner}.{prop} returns a secret; secrets are write-only"


def holds_text(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" or any(holds_text(option) for option in schema.get("anyOf", []))


def test_metrics_need_a_signed_in_user_and_count_requests_by_route(
    app: FastAPI, admin_client: TestClient, runtime: Runtime
) -> None:
    assert TestClient(app).get("/metrics").status_code == 401
    with transaction(runtime.sessions) as session:
        viewer = service.create_user(session=session, email="v@example.com", role=Role.VIEWER, actor=None)
        _, token = service.create_api_token(
            session=session, user=viewer, name="prometheus", actor=None, now=runtime.clock()
        )
    admin_client.get(f"{API_PREFIX}/users/424242")
    answer = TestClient(app).get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    line = (
        f'segmentsync_http_requests_total{{method="GET",route="{API_PREFIX}/users/{{user_id}}",status="404"}}'
    )
    assert line in answer.text
    assert "424242" not in answer.text  # templates, never raw paths


def test_huge_ids_are_invalid_input_not_server_errors(admin_client: TestClient) -> None:
    answer = admin_client.get(f"{API_PREFIX}/users/{10**30}")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid"


def test_generated_requests_get_documented_answers(settings: Settings, store_url: str) -> None:
    """Schemathesis sends generated requests (as an admin) to every /api/v1 operation: no 500,
    and every answer matches the OpenAPI document (status code and schema)."""
    if not store_url.startswith("sqlite"):
        pytest.skip("once is enough: the store does not change what the API documents")
    # Nothing may reach the real platforms: a closed local port refuses at once.
    for name in (
        "campaign_monitor_api_url",
        "campaign_monitor_oauth_url",
        "constant_contact_api_url",
        "constant_contact_oauth_url",
    ):
        setattr(settings, name, "http://127.0.0.1:9")
    settings.database_url = store_url
    runtime = Runtime.open(settings, migrate=False)
    with transaction(runtime.sessions) as session:
        admin = service.create_user(session=session, email="fuzz@example.com", role=Role.ADMIN, actor=None)
        service.create_user(session=session, email="spare-admin@example.com", role=Role.ADMIN, actor=None)
        _, token = service.create_api_token(
            session=session, user=admin, name="fuzz", actor=None, now=runtime.clock()
        )
    schema = schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", create_app(runtime))
    stamina.set_testing(True)  # platform retries without their real back-off sleeps
    failures = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            try:
                fuzz(operation, token)
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    finally:
        stamina.set_testing(False)
        runtime.close()
    assert failures == []


def no_internal_error(ctx: Any, response: Any, case: Any) -> bool:
    """502/503 are documented platform failures; only 500 means a bug."""
    assert response.status_code != 500, response.text
    return True


def fuzz(operation: Any, token: str) -> None:
    @hypothesis.settings(
        max_examples=10,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        case.call_and_validate(
            checks=[no_internal_error, response_schema_conformance, status_code_conformance]
        )

    run()
