"""POST /api/v1/config/plan and /apply: administrators, the file as the body, problems as 422."""

from __future__ import annotations

from fastapi.testclient import TestClient

from exports.world import World

API = "/api/v1/config"


def test_admins_plan_and_apply_over_http(client: TestClient, world: World) -> None:
    exported = client.get(API, headers=world.admin.auth)
    assert exported.status_code == 200
    current = exported.json()
    assert [c["name"] for c in current["connections"]] == ["CC Main", "CM Admins", "CM Shared"]
    # YAML reads JSON: the exported document is a valid file as it is.
    body = exported.content
    assert client.post(f"{API}/plan", content=body, headers=world.admin.auth).json() == {"changes": []}

    added = (
        b"version: 1\n"
        b"segments:\n  - name: Poland\n    rules: {items: [{column: country, operator: eq, value: PL}]}\n"
    )
    planned = client.post(
        f"{API}/plan", content=added, headers={**world.admin.auth, "content-type": "application/yaml"}
    )
    assert planned.status_code == 200, planned.text
    assert [(c["kind"], c["name"], c["action"]) for c in planned.json()["changes"]] == [
        ("segment", "Poland", "create")
    ]
    assert client.post(f"{API}/plan", content=added, headers=world.contributor.auth).status_code == 403
    assert client.post(f"{API}/apply", content=added, headers=world.contributor.auth).status_code == 403

    broken = client.post(f"{API}/apply", content=added + b"colour: red\n", headers=world.admin.auth)
    assert broken.status_code == 422
    error = broken.json()["error"]
    assert error["details"]["problems"] == [{"line": 5, "path": "colour", "message": "unknown key"}]

    applied = client.post(f"{API}/apply", content=added, headers=world.admin.auth)
    assert applied.status_code == 200
    assert applied.json() == planned.json()
    assert client.post(f"{API}/apply", content=added, headers=world.admin.auth).json() == {"changes": []}
    entries = client.get(
        "/api/v1/audit", params={"action": "segment.create"}, headers=world.admin.auth
    ).json()
    assert [e["object_label"] for e in entries["items"]][:1] == ["Poland"]
