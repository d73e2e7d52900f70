"""``POST /segments/sql/check``: the SQL editor's check as the query is typed — the check a save
runs (sqlglot's parse and the read-only rules), with the refusal's line and column in the page's
language; CSRF, role and the admins-only policy as on the page's other forms; nothing run on the
profile source."""

from __future__ import annotations

from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role
from segmentsync.db import transaction
from segmentsync.runtime import Runtime
from segmentsync.segments import kinds
from web.pages import Pages

PASSWORD = "correct horse battery staple"
CHECK = "/segments/sql/check"
GOOD = "WITH spent AS (SELECT profile_id FROM orders)\nSELECT profile_id FROM spent"
BAD = "SELECT p.profile_id\nFROM profiles AS p\nJOIN read_csv('/etc/passwd') AS x ON true"


def person(runtime: Runtime, role: Role) -> None:
    with transaction(runtime.sessions) as session:
        auth_service.create_user(
            session=session, email=f"{role.value}@example.com", role=role, actor=None, password=PASSWORD
        )


def signed_in(runtime: Runtime, role: Role) -> Pages:
    person(runtime, role)
    pages = Pages(runtime)
    assert pages.sign_in(f"{role.value}@example.com", PASSWORD).status_code == 303
    pages.get("/segments")  # a page of the session: its form token
    return pages


def test_a_contributor_has_each_query_checked(runtime: Runtime) -> None:
    pages = signed_in(runtime, Role.CONTRIBUTOR)
    answer = pages.post(CHECK, {"sql": GOOD})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {"ok": True, "message": "The query passes the check: one SELECT that only reads."}
    # Neither "orders" nor "spent" exists in the (empty) profile source: the check only parses.
    assert pages.post(CHECK, {"sql": "SELECT profile_id FROM no_such_table"}).json()["ok"] is True

    answer = pages.post(CHECK, {"sql": BAD})
    assert answer.status_code == 422
    found = answer.json()
    assert (found["ok"], found["code"], found["line"], found["column"]) == (False, "unsafe_sql", 3, 6)
    assert found["message"] == (
        "Line 3, column 6: the table function read_csv() is not allowed: select from tables and views."
    )
    unparsable = pages.post(CHECK, {"sql": "SELECT profile_id\nFROM profiles\nWHERE (country = 'PL'"}).json()
    assert (unparsable["code"], unparsable["line"]) == ("invalid_sql", 3)
    assert unparsable["message"].startswith("Line 3, column ")
    second = pages.post(CHECK, {"sql": "SELECT 1;\n  DROP TABLE profiles"}).json()
    assert (second["line"], second["column"]) == (2, 3)
    empty = pages.post(CHECK, {"sql": "  "})
    assert empty.status_code == 422
    assert empty.json() == {"ok": False, "code": "invalid_sql", "message": "The SQL is empty: write one SELECT.",
                            "line": None, "column": None}  # fmt: skip

    # In the page's language (the browser's, as this person has chosen none).
    pages.client.headers["Accept-Language"] = "pl"
    polish = pages.post(CHECK, {"sql": BAD}).json()
    assert polish["message"].startswith("Wiersz 3, kolumna 6: funkcja tabelaryczna read_csv()")
    assert pages.post(CHECK, {"sql": GOOD}).json()["message"].startswith("Zapytanie przechodzi sprawdzenie")
    pages.client.headers["Accept-Language"] = "en"

    # Without the form's token (or with a forged one) nothing is checked.
    missing = pages.post(CHECK, {"sql": GOOD}, csrf=False)
    assert missing.status_code == 403
    assert missing.json()["code"] == "csrf"
    assert pages.post(CHECK, {"sql": GOOD, "csrf_token": "forged"}, csrf=False).status_code == 403

    # An admin restricts SQL segments to admins: contributors' queries are no longer checked.
    with transaction(runtime.sessions) as session:
        kinds.options(session).sql_admins_only = True
    narrowed = pages.post(CHECK, {"sql": GOOD})
    assert narrowed.status_code == 403
    assert narrowed.json()["code"] == "sql_segments_admins_only"
    assert "Only admins may write SQL segments" in narrowed.json()["message"]


def test_viewers_admins_and_strangers(runtime: Runtime) -> None:
    viewer = signed_in(runtime, Role.VIEWER)
    refused = viewer.post(CHECK, {"sql": GOOD})
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"

    with transaction(runtime.sessions) as session:
        kinds.options(session).sql_admins_only = True
    assert signed_in(runtime, Role.ADMIN).post(CHECK, {"sql": GOOD}).json()["ok"] is True

    stranger = Pages(runtime)
    stranger.get("/sign-in")  # a session with a form token, nobody signed in
    answer = stranger.post(CHECK, {"sql": GOOD})
    assert answer.status_code == 401
    assert answer.json()["ok"] is False
