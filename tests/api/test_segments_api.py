"""The segments and profile-schema REST API: thin routes over the segment service."""

from __future__ import annotations

import duckdb
import pytest
from fastapi.testclient import TestClient

from segmentsync.api.app import create_app
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role
from segmentsync.db import transaction
from segmentsync.runtime import Runtime

PL = {"op": "and", "items": [{"column": "country", "operator": "eq", "value": "PL"}]}


@pytest.fixture
def api(runtime: Runtime) -> TestClient:
    con = duckdb.connect(str(runtime.settings.data_dir / "profiles.duckdb"))
    con.execute(
        "CREATE TABLE profiles AS SELECT i AS profile_id, 'p' || i || '@x.com' AS email, "
        "CASE WHEN i % 2 = 0 THEN 'PL' ELSE 'FI' END AS country, i * 10.0 AS spend FROM range(1, 11) t(i)"
    )
    con.close()
    return TestClient(create_app(runtime))


def token(runtime: Runtime, email: str, role: Role) -> dict[str, str]:
    with transaction(runtime.sessions) as session:
        user = auth_service.create_user(session=session, email=email, role=role, actor=None)
        _, raw = auth_service.create_api_token(
            session=session, user=user, name="t", actor=None, now=runtime.clock()
        )
    return {"Authorization": f"Bearer {raw}"}


def test_segment_lifecycle(api: TestClient, runtime: Runtime) -> None:
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    created = api.post("/api/v1/segments", json={"name": "Poland", "rules": PL}, headers=editor)
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["rule_text"] == "country = 'PL'"
    sid = segment["id"]

    refreshed = api.post(f"/api/v1/segments/{sid}/refresh", headers=editor).json()
    assert refreshed["member_count"] == 5
    assert api.get(f"/api/v1/segments/{sid}", headers=editor).json()["member_count"] == 5
    history = api.get(f"/api/v1/segments/{sid}/refreshes", headers=editor).json()
    assert [entry["member_count"] for entry in history["items"]] == [5]

    preview = api.get(f"/api/v1/segments/{sid}/preview?limit=2&columns=email", headers=editor).json()
    assert preview["rows"] == [{"profile_id": 2, "email": "p2@x.com"}, {"profile_id": 4, "email": "p4@x.com"}]
    assert api.get(f"/api/v1/segments/{sid}/count", headers=editor).json()["member_count"] == 5

    wider = {"op": "or", "items": [*PL["items"], {"column": "spend", "operator": "gt", "value": 80}]}
    changed = api.patch(f"/api/v1/segments/{sid}", json={"rules": wider}, headers=editor)
    assert changed.status_code == 200
    assert changed.json()["member_count"] is None  # a new rule forgets the old count
    assert (
        api.post("/api/v1/segments/count", json={"rules": wider}, headers=editor).json()["member_count"] == 6
    )

    listed = api.get("/api/v1/segments", headers=editor).json()
    assert (listed["total"], listed["items"][0]["name"]) == (1, "Poland")
    assert api.delete(f"/api/v1/segments/{sid}", headers=editor).status_code == 204
    assert api.get(f"/api/v1/segments/{sid}", headers=editor).status_code == 404


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"op": "and", "items": [{"column": "nope", "operator": "eq", "value": 1}]}, "nope"),
        ({"op": "and", "items": [{"column": "spend", "operator": "gt", "value": "lots"}]}, "spend"),
        (
            {
                "op": "and",
                "items": [{"column": 'country"; DROP TABLE profiles; --', "operator": "eq", "value": 1}],
            },
            "DROP",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_problem(
    api: TestClient, runtime: Runtime, rules: dict, message: str
) -> None:
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    answer = api.post("/api/v1/segments", json={"name": "Bad", "rules": rules}, headers=editor)
    assert answer.status_code == 422
    assert message in answer.json()["error"]["message"]


def test_viewers_read_but_do_not_change(api: TestClient, runtime: Runtime) -> None:
    viewer = token(runtime, "v@example.com", Role.VIEWER)
    assert api.get("/api/v1/segments", headers=viewer).status_code == 200
    assert api.post("/api/v1/segments", json={"name": "x", "rules": PL}, headers=viewer).status_code == 403
    schema = api.get("/api/v1/profiles/schema", headers=viewer).json()
    assert schema["key"] == "profile_id"
    assert schema["rows"] == 10
    assert {c["name"]: c["type"] for c in schema["columns"]} == {
        "profile_id": "integer",
        "email": "string",
        "country": "string",
        "spend": "float",
    }


def test_segment_audit_entries_made_through_the_api_have_the_client_address(
    api: TestClient, runtime: Runtime
) -> None:
    import sqlalchemy as sa

    from segmentsync.auth.models import AuditEntry

    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    client = TestClient(api.app, client=("198.51.100.23", 5000), headers=editor)
    sid = client.post("/api/v1/segments", json={"name": "Poland", "rules": PL}).json()["id"]
    client.post(f"/api/v1/segments/{sid}/refresh")
    client.post("/api/v1/segments/refresh", json={})
    client.patch(f"/api/v1/segments/{sid}", json={"description": "the Polish"})
    assert client.delete(f"/api/v1/segments/{sid}").status_code == 204
    with runtime.sessions() as session:
        entries = session.execute(
            sa.select(AuditEntry.action, AuditEntry.ip).where(AuditEntry.object_type == "segment")
        ).all()
    assert sorted({action for action, _ in entries}) == [
        "segment.create", "segment.delete", "segment.refresh", "segment.update",
    ]  # fmt: skip
    assert {ip for _, ip in entries} == {"198.51.100.23"}
