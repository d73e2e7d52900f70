"""Admin > Users through the API: create, roles, deactivation, the last-admin guard, export users."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from segmentsync.auth import service
from segmentsync.auth.models import Role, User
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.db import transaction, utcnow
from segmentsync.runtime import Runtime

from .conftest import MakeUser, Person

USERS = "/api/v1/users"


def test_an_admin_creates_users_with_lower_case_unique_emails(client: TestClient, admin: Person) -> None:
    body = {
        "email": " Ana.Silva@Example.COM ",
        "name": "Ana",
        "role": "contributor",
        "password": "long enough pw",
    }
    created = client.post(USERS, json=body, headers=admin.auth)
    assert created.status_code == 201
    user = created.json()
    assert (user["email"], user["role"], user["is_active"]) == ("ana.silva@example.com", "contributor", True)
    assert user["generated_password"] is None
    again = client.post(USERS, json=body | {"email": "ANA.SILVA@example.com"}, headers=admin.auth)
    assert again.status_code == 409
    assert again.json()["error"] | {"message": ""} == {
        "status": 409,
        "code": "email_taken",
        "field": "email",
        "message": "",
    }
    assert client.get(f"{USERS}/{user['id']}", headers=admin.auth).json()["email"] == "ana.silva@example.com"


def test_without_a_password_one_is_generated_and_shown_once(client: TestClient, admin: Person) -> None:
    created = client.post(USERS, json={"email": "new@example.com"}, headers=admin.auth).json()
    password = created["generated_password"]
    assert created["role"] == "viewer"  # the least privilege by default
    assert len(password) >= 16
    assert password not in client.get(f"{USERS}/{created['id']}", headers=admin.auth).text
    signed_in = TestClient(client.app).post(
        "/api/v1/session", json={"email": "new@example.com", "password": password}
    )
    assert signed_in.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not an email"}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "language": "xx"}, "language"),
        ({"email": "a@example.com", "role": "superuser"}, "role"),
    ],
)
def test_bad_input_names_the_field(
    client: TestClient, admin: Person, body: dict[str, str], field: str
) -> None:
    answer = client.post(USERS, json=body, headers=admin.auth)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field


def test_the_list_is_paginated_and_filtered(client: TestClient, admin: Person, make_user: MakeUser) -> None:
    make_user("b.contributor@example.com", Role.CONTRIBUTOR)
    make_user("c.viewer@example.com", Role.VIEWER)
    gone = make_user("d.viewer@example.com", Role.VIEWER)
    client.patch(f"{USERS}/{gone.id}", json={"is_active": False}, headers=admin.auth)

    def emails(**params: object) -> list[str]:
        page = client.get(USERS, params=params, headers=admin.auth).json()
        return [user["email"] for user in page["items"]]

    assert emails() == [
        "admin@example.com",
        "b.contributor@example.com",
        "c.viewer@example.com",
        "d.viewer@example.com",
    ]
    assert emails(role="viewer") == ["c.viewer@example.com", "d.viewer@example.com"]
    assert emails(active="false") == ["d.viewer@example.com"]
    assert emails(q="CONTRIB") == ["b.contributor@example.com"]
    page = client.get(USERS, params={"limit": 2, "offset": 1}, headers=admin.auth).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [user["email"] for user in page["items"]] == ["b.contributor@example.com", "c.viewer@example.com"]


def test_a_role_change_applies_to_the_next_request(client: TestClient, admin: Person, viewer: Person) -> None:
    assert client.get(USERS, headers=viewer.auth).status_code == 403
    changed = client.patch(f"{USERS}/{viewer.id}", json={"role": "admin"}, headers=admin.auth)
    assert changed.json()["role"] == "admin"
    assert client.get(USERS, headers=viewer.auth).status_code == 200


def test_deactivation_stops_every_way_in_and_keeps_the_user(
    client: TestClient, admin: Person, contributor: Person
) -> None:
    assert client.get("/api/v1/me", headers=contributor.auth).status_code == 200
    answer = client.patch(f"{USERS}/{contributor.id}", json={"is_active": False}, headers=admin.auth)
    assert answer.json()["is_active"] is False
    assert client.get("/api/v1/me", headers=contributor.auth).status_code == 401
    assert client.get(f"{USERS}/{contributor.id}", headers=admin.auth).json()["email"] == contributor.email
    client.patch(f"{USERS}/{contributor.id}", json={"is_active": True}, headers=admin.auth)
    assert client.get("/api/v1/me", headers=contributor.auth).status_code == 200


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(
    client: TestClient, admin: Person, make_user: MakeUser
) -> None:
    for change in ({"role": "contributor"}, {"is_active": False}):
        answer = client.patch(f"{USERS}/{admin.id}", json=change, headers=admin.auth)
        assert answer.status_code == 409
        error = answer.json()["error"]
        assert error["code"] == "last_admin"
        assert "last active admin" in error["message"]
    # A deactivated admin is no help ...
    dormant = make_user("dormant@example.com", Role.ADMIN)
    client.patch(f"{USERS}/{dormant.id}", json={"is_active": False}, headers=admin.auth)
    assert client.patch(f"{USERS}/{admin.id}", json={"role": "viewer"}, headers=admin.auth).status_code == 409
    # ... an active one is.
    client.patch(f"{USERS}/{dormant.id}", json={"is_active": True}, headers=admin.auth)
    assert client.patch(f"{USERS}/{admin.id}", json={"role": "viewer"}, headers=admin.auth).status_code == 200
    assert (
        client.patch(f"{USERS}/{dormant.id}", json={"role": "viewer"}, headers=dormant.auth).status_code
        == 409
    )


def test_name_and_language_can_be_set_and_the_language_cleared(client: TestClient, viewer: Person) -> None:
    me = client.patch("/api/v1/me", json={"name": " Victor ", "language": "fi"}, headers=viewer.auth).json()
    assert (me["name"], me["language"]) == ("Victor", "fi")
    me = client.patch("/api/v1/me", json={"language": None}, headers=viewer.auth).json()
    assert (me["name"], me["language"]) == ("Victor", None)
    assert client.patch("/api/v1/me", json={"language": "klingon"}, headers=viewer.auth).status_code == 422


def test_an_admin_can_set_a_users_password(client: TestClient, admin: Person, viewer: Person) -> None:
    answer = client.put(
        f"{USERS}/{viewer.id}/password", json={"new_password": "brand new pw"}, headers=admin.auth
    )
    assert answer.status_code == 204
    signed_in = TestClient(client.app).post(
        "/api/v1/session", json={"email": viewer.email, "password": "brand new pw"}
    )
    assert signed_in.status_code == 200


def test_unknown_users_are_404(client: TestClient, admin: Person) -> None:
    answer = client.patch(f"{USERS}/999", json={"role": "viewer"}, headers=admin.auth)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def _connection(name: str, export_user_id: int) -> Connection:
    return Connection(
        name=name,
        type=ConnectionType.CAMPAIGN_MONITOR,
        consent_at=utcnow(),
        export_user_id=export_user_id,
        secrets="not-needed-here",
    )


def test_users_show_which_connections_export_on_their_behalf(
    client: TestClient, runtime: Runtime, admin: Person
) -> None:
    with transaction(runtime.sessions) as session:
        session.add_all([_connection("CM test", admin.id), _connection("CM prod", admin.id)])
    user = client.get(f"{USERS}/{admin.id}", headers=admin.auth).json()
    assert user["export_user_of"] == ["CM prod", "CM test"]


def test_export_user_problems_explain_what_to_do(
    runtime: Runtime, admin: Person, make_user: MakeUser
) -> None:
    other = make_user("second-admin@example.com", Role.ADMIN)
    with transaction(runtime.sessions) as session:
        user = session.get(User, other.id)
        assert user is not None
        assert service.export_user_problem(user) is None
        service.set_role(session=session, user=user, role=Role.CONTRIBUTOR, actor=None)
        demoted = service.export_user_problem(user)
        service.deactivate(session=session, user=user, actor=None)
        deactivated = service.export_user_problem(user)
    assert demoted is not None
    assert "second-admin@example.com is no longer an admin" in demoted
    assert deactivated is not None
    assert "is deactivated" in deactivated
    assert "another admin adds themselves" in deactivated
    none = service.export_user_problem(None)
    assert none is not None
    assert "no export user" in none


def test_the_user_search_is_literal(client: TestClient, admin: Person, make_user: MakeUser) -> None:
    make_user("under_score@example.com", Role.VIEWER)
    make_user("plain@example.com", Role.VIEWER)

    def emails(q: str) -> list[str]:
        page = client.get(USERS, params={"q": q}, headers=admin.auth).json()
        return [user["email"] for user in page["items"]]

    assert emails("%") == []  # a wildcard no more: nobody has a percent sign
    assert emails("_") == ["under_score@example.com"]
    assert emails("r_s") == ["under_score@example.com"]
    assert emails("n%e") == []


@pytest.mark.parametrize(
    "look_alike",
    [
        "аdmin@example.com",
        "admin@exаmple.com",
        "pаypal-admin@example.com",
        "admin@example.cоm",
    ],  # Cyrillic а/о
)
def test_look_alike_addresses_of_new_users_are_refused(
    client: TestClient, admin: Person, look_alike: str
) -> None:
    answer = client.post(USERS, json={"email": look_alike, "role": "admin"}, headers=admin.auth)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("look_alike_email", "email")


def test_addresses_in_one_alphabet_per_part_are_welcome(client: TestClient, admin: Person) -> None:
    for address in ("jürgen.müller@example.de", "пётр@пример.рф", "δοκιμή@example.com"):
        answer = client.post(USERS, json={"email": address, "role": "viewer"}, headers=admin.auth)
        assert answer.status_code == 201, answer.text
