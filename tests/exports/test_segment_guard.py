"""A contributor cannot change what an export on an admins-only connection sends: editing or
removing a segment such an export uses is refused, naming those exports; an admin may."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .world import World, country_rule

SEGMENTS = "/api/v1/segments"
EVERYONE = {"op": "and", "items": [{"column": "email", "operator": "is_not_empty"}]}


def test_a_segment_sent_by_an_admins_only_export_is_out_of_a_contributors_reach(
    world: World, client: TestClient
) -> None:
    world.create(world.form(name="Admins PL", connection_id=world.cm_private.connection_id,
                            list_id=world.cm_private.list_id))  # fmt: skip
    world.create(world.form(name="Shared LV", segment_ids=[world.segments["LV"]]))
    pl, lv = world.segments["PL"], world.segments["LV"]
    carla = world.contributor.auth
    for change in ({"rules": EVERYONE}, {"name": "Renamed"}, {"description": "sends everyone"}):
        refused = client.patch(f"{SEGMENTS}/{pl}", json=change, headers=carla)
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "segment_used_by_restricted_exports"
        assert error["details"]["exports"] == ["Admins PL"]
        assert "Admins PL" in error["message"]
    removed = client.delete(f"{SEGMENTS}/{pl}", headers=carla)
    assert (removed.status_code, removed.json()["error"]["details"]["exports"]) == (403, ["Admins PL"])
    assert client.get(f"{SEGMENTS}/{pl}", headers=carla).json()["rules"]["items"][0]["value"] == ["PL"]
    # The same rule again is no change; a segment only shared exports send stays the contributor's.
    assert (
        client.patch(f"{SEGMENTS}/{pl}", json={"rules": country_rule("PL")}, headers=carla).status_code == 200
    )
    assert client.patch(f"{SEGMENTS}/{lv}", json={"rules": EVERYONE}, headers=carla).status_code == 200
    # An admin may change it.
    assert (
        client.patch(f"{SEGMENTS}/{pl}", json={"rules": EVERYONE}, headers=world.admin.auth).status_code
        == 200
    )
