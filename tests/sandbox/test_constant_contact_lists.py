"""Constant Contact emulator: /v3/contact_lists (CRUD, unique names, counts, cursor paging)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cc_api import CC, error_keys

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox)
    yield helper
    helper.close()


def test_create_and_read_a_list(cc: CC) -> None:
    response = cc.api("POST", "/contact_lists", json={"name": "VIP", "description": "Best", "favorite": True})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"list_id", "name", "description", "favorite", "created_at", "updated_at"}
    assert created["name"] == "VIP"
    assert created["favorite"] is True
    assert len(created["list_id"]) == 36
    assert created["created_at"].endswith("Z")
    read = cc.api("GET", f"/contact_lists/{created['list_id']}").json()
    assert read == created
    counted = cc.api(
        "GET", f"/contact_lists/{created['list_id']}", params={"include_membership_count": "all"}
    )
    assert counted.json()["membership_count"] == 0


def test_list_names_are_unique(cc: CC) -> None:
    cc.new_list("Newsletter")
    response = cc.api("POST", "/contact_lists", json={"name": "newsletter"})
    assert response.status_code == 409
    assert error_keys(response) == ["contacts.api.conflict"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 256},
        {"name": 5},
        {"name": "ok", "favorite": "yes"},
        {"name": "ok", "description": "d" * 256},
    ],
    ids=["no name", "empty", "too long", "not text", "favorite", "description"],
)
def test_invalid_list_bodies_are_400_arrays(cc: CC, body: dict[str, Any]) -> None:
    response = cc.api("POST", "/contact_lists", json=body)
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_json_bodies_need_the_json_content_type(cc: CC) -> None:
    response = cc.api(
        "POST", "/contact_lists", content=b'{"name":"x"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert error_keys(response) == ["contacts.api.unsupported_media_type"]
    broken = cc.api("POST", "/contact_lists", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400


def test_update_a_list(cc: CC) -> None:
    list_id = cc.new_list("Old")
    cc.new_list("Taken")
    response = cc.api("PUT", f"/contact_lists/{list_id}", json={"name": "New", "description": "Renamed"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("New", "Renamed")
    assert cc.api("PUT", f"/contact_lists/{list_id}", json={"name": "Taken"}).status_code == 409
    assert cc.api("PUT", f"/contact_lists/{list_id}", json={"name": "New"}).status_code == 200  # its own name


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_list_is_404(cc: CC, method: str) -> None:
    response = cc.api(method, "/contact_lists/6b5a4c8e-0000-11ef-8000-fa163e000000", json={"name": "x"})
    assert response.status_code == 404
    assert error_keys(response) == ["contacts.api.not_found"]


def test_delete_is_an_activity_and_frees_the_name(cc: CC) -> None:
    list_id = cc.new_list("Gone")
    cc.import_rows([list_id], [{"email": "a@example.com"}])
    response = cc.api("DELETE", f"/contact_lists/{list_id}")
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "initialized"
    assert response.headers["location"] == f"/v3/activities/{body['activity_id']}"
    assert cc.activity(body["activity_id"])["state"] == "completed"
    assert cc.api("GET", f"/contact_lists/{list_id}").status_code == 404
    assert cc.contact("a@example.com")["list_memberships"] == []
    deleted = cc.api("GET", "/contact_lists", params={"status": "deleted"}).json()["lists"]
    assert [lst["list_id"] for lst in deleted] == [list_id]
    assert "deleted_at" in deleted[0]
    cc.new_list("Gone")  # a deleted list's name can be used again


def test_get_lists_pages_with_a_relative_next_link(cc: CC) -> None:
    ids = [cc.new_list(f"List {n}") for n in range(5)]
    seen: list[str] = []
    response = cc.api("GET", "/contact_lists", params={"limit": 2, "include_count": "true"})
    pages = 0
    while True:
        body = response.json()
        assert body["lists_count"] == 5
        seen += [lst["list_id"] for lst in body["lists"]]
        pages += 1
        if "_links" not in body:
            break
        href = body["_links"]["next"]["href"]
        assert href.startswith("/v3/contact_lists?cursor=")
        response = cc.api("GET", href)
    assert seen == ids
    assert pages == 3


def test_membership_counts_all_and_active(cc: CC) -> None:
    list_id = cc.new_list()
    cc.import_rows([list_id], [{"email": f"p{n}@example.com"} for n in range(3)])
    cc.control("contacts/unsubscribe", {"email": "p0@example.com"})
    for which, expected in (("all", 3), ("active", 2)):
        lists = cc.api("GET", "/contact_lists", params={"include_membership_count": which}).json()["lists"]
        assert lists[0]["membership_count"] == expected
    assert "membership_count" not in cc.api("GET", "/contact_lists").json()["lists"][0]


def test_filter_lists_by_exact_name(cc: CC) -> None:
    cc.new_list("Alpha")
    beta = cc.new_list("Beta")
    lists = cc.api("GET", "/contact_lists", params={"name": "Beta"}).json()["lists"]
    assert [lst["list_id"] for lst in lists] == [beta]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "x"},
        {"include_membership_count": "some"},
        {"status": "gone"},
        {"cursor": "!!"},
    ],
)
def test_bad_list_queries_are_400(cc: CC, params: dict[str, Any]) -> None:
    response = cc.api("GET", "/contact_lists", params=params)
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]
