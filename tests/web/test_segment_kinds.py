"""The segment page's SQL and dbt tabs: a SQL segment saved from the page, its "Run preview", an
error shown at its line in the highlighted query, the admins-only policy, the dbt models with their
description, columns and tests; SQL and dbt segments in the list."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from segments import conftest as segment_fixtures  # tests/ is on sys.path (rootdir)
from segments.orders import SEGMENT_SQL, add_orders, create_view
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role
from segmentsync.db import transaction
from segmentsync.profiles import store
from segmentsync.runtime import Runtime
from segmentsync.segments import kinds
from web.pages import Pages, field_error

PASSWORD = "correct horse battery staple"
duckdb_source, dbt_manifest = segment_fixtures.duckdb_source, segment_fixtures.dbt_manifest


@pytest.fixture
def pages(runtime: Runtime) -> Pages:
    add_orders(duckdb_source(store.embedded_path(runtime.settings)))
    with transaction(runtime.sessions) as session:
        for role in (Role.ADMIN, Role.CONTRIBUTOR):
            auth_service.create_user(
                session=session, email=f"{role.value}@example.com", role=role, actor=None, password=PASSWORD
            )
    browser = Pages(runtime)
    assert browser.sign_in("contributor@example.com", PASSWORD).status_code == 303
    return browser


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def test_a_sql_segment_is_previewed_saved_and_listed(pages: Pages) -> None:
    page = pages.get("/segments/new")
    assert page.status_code == 200
    assert 'data-testid="sql-tab"' in page.text
    assert 'data-testid="dbt-tab"' in page.text
    assert "<script>" not in page.text  # no inline script: the tabs are radio buttons

    form = {"name": "Big spenders", "description": "", "kind": "sql", "sql": SEGMENT_SQL, "rules": ""}
    preview = pages.post("/segments/new", {**form, "action": "preview"})
    assert preview.status_code == 200, field_error(preview.text, "sql")
    assert "2 members" in text(preview.text)
    assert 'data-testid="sql-view"' in preview.text  # the query, highlighted on the server

    saved = pages.post("/segments/new", {**form, "action": "save"})
    assert saved.status_code == 303
    segment_page = pages.get(saved.headers["location"])
    assert 'id="kind-sql" checked' in segment_page.text
    assert 'data-testid="member-count">2<' in segment_page.text
    listing = pages.get("/segments")
    assert "SQL: -- profiles whose orders add up to more than 100" in text(listing.text)


def test_an_error_is_shown_at_its_line(pages: Pages) -> None:
    bad = "SELECT p.profile_id\nFROM profiles AS p\nJOIN read_csv('/etc/passwd') AS x ON true"
    pages.get("/segments/new")
    answer = pages.post(
        "/segments/new",
        {"name": "Bad", "description": "", "kind": "sql", "sql": bad, "rules": "", "action": "save"},
    )
    assert answer.status_code == 422
    assert field_error(answer.text, "sql").startswith("Line 3, column 6: the table function read_csv()")
    marked = re.search(r'<span class="hll">(.*?)\n', answer.text)  # Pygments: one line, then its newline
    assert marked is not None
    assert text(marked.group(1)) == "3" + bad.splitlines()[2]  # line number 3, then the line
    assert ">Bad<" not in pages.get("/segments").text  # nothing saved


def test_admins_only_sql_is_said_on_the_page(pages: Pages, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        kinds.options(session).sql_admins_only = True
    page = pages.get("/segments/new")  # (and its form token)
    assert 'data-testid="sql-not-allowed"' in page.text
    refused = pages.post(
        "/segments/new",
        {"name": "C", "description": "", "kind": "sql", "sql": SEGMENT_SQL, "rules": "", "action": "save"},
    )
    assert refused.status_code == 403
    assert "Only admins may write SQL segments" in text(refused.text)


def test_the_dbt_tab_shows_the_models(pages: Pages, runtime: Runtime, dbt_manifest: Path) -> None:
    create_view(store.embedded_path(runtime.settings), "big_spenders_v1")
    assert 'data-testid="dbt-no-manifest"' in pages.get("/segments/new").text
    with transaction(runtime.sessions) as session:
        kinds.options(session).dbt_manifest = str(dbt_manifest)
    page = pages.get("/segments/new")
    shown = text(page.text)
    assert "Profiles whose orders add up to more than 100." in shown
    assert '"profiles"."main"."big_spenders_v1"' in shown
    assert "not_null(profile_id), unique(profile_id)" in shown
    assert "scratch (ephemeral: no relation)" in shown

    form = {"name": "Big (dbt)", "description": "", "kind": "dbt", "dbt_model": "big_spenders", "rules": ""}
    assert "2 members" in text(pages.post("/segments/new", {**form, "action": "preview"}).text)
    saved = pages.post("/segments/new", {**form, "action": "save"})
    assert saved.status_code == 303
    assert 'id="kind-dbt" checked' in pages.get(saved.headers["location"]).text


def test_the_export_form_offers_a_sql_segments_extra_columns(pages: Pages, runtime: Runtime) -> None:
    query = "SELECT p.profile_id, sum(o.amount) AS spent FROM profiles AS p JOIN orders AS o ON o.profile_id = p.profile_id GROUP BY p.profile_id"
    form = {"name": "Spent", "description": "", "kind": "sql", "sql": query, "rules": "", "action": "save"}
    assert pages.get("/segments/new").status_code == 200
    assert pages.post("/segments/new", form).status_code == 303
    page = pages.get("/exports/new")
    assert page.status_code == 200
    assert '<optgroup label="Columns of segment Spent">' in page.text
    assert '<option value="segment.spent"' in page.text
