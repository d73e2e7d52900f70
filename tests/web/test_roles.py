"""What contributors and viewers see and may do, in a real browser.

A contributor sees only the connections shared with contributors (by name, in the export form;
never their settings), may run exports on them, and cannot open Admin pages. A viewer sees
everything there is to see, read-only.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate
from segmentsync.db import transaction
from segmentsync.exports import service as exports
from segmentsync.exports.schemas import ExportCreate
from segmentsync.segments import service as segments
from segmentsync.segments.rules import Group
from segmentsync.segments.schemas import SegmentCreate

from .conftest import CONTRIBUTOR, VIEWER, Live, screenshot

pytestmark = pytest.mark.browser


def _admin(session: Any) -> User:
    admin = session.query(User).filter_by(role=Role.ADMIN).one()
    session.expunge(admin)
    return admin


def _setup(live: Live) -> None:
    """Two connections (one shared with contributors), a segment, an export on each."""
    runtime = live.runtime
    with transaction(runtime.sessions) as session:
        admin = _admin(session)
        for name, shared in (("Shared newsletter", True), ("Admins' newsletter", False)):
            connections.create(
                session=session, runtime=runtime, actor=admin,
                data=ConnectionCreate(
                    type=ConnectionType.CAMPAIGN_MONITOR, name=name, shared_with_contributors=shared, consent=True,
                    auth=ApiKeyAuth(api_key=live.cm_client["ApiKey"], client_id=live.cm_client["ClientID"]),
                ),
            )  # fmt: skip
        segment = segments.create(
            session=session, source=runtime.profiles, actor=admin,
            segment_in=SegmentCreate(
                name="Everyone", rules=Group.model_validate({"items": [{"column": "orders", "operator": "ge", "value": 0}]})
            ),
        )  # fmt: skip
        segments.refresh(session=session, source=runtime.profiles, segment_id=segment.id, actor=admin)
        ids = {c.name: c.id for c in session.scalars(connections.connection_query(actor=admin))}
        segment_id = segment.id
    list_id = live.cm_list("Everyone")
    for export_name, connection in (
        ("Shared export", "Shared newsletter"),
        ("Admins' export", "Admins' newsletter"),
    ):
        exports.create(
            runtime=runtime, actor=admin,
            data=ExportCreate(name=export_name, connection_id=ids[connection], list_id=list_id, email_column="email",
                              segment_ids=[segment_id]),
        )  # fmt: skip


def test_contributor_uses_shared_connections_only(page_for: Any, live: Live) -> None:
    _setup(live)
    page = page_for(CONTRIBUTOR)
    expect(page.get_by_test_id("current-role")).to_have_text("Contributor")
    nav = page.locator("nav.side")
    expect(nav).not_to_contain_text("Connections")
    expect(nav).not_to_contain_text("Users")
    expect(nav).not_to_contain_text("Audit log")

    table = page.get_by_test_id("exports")
    shared = table.locator("tr[data-export='Shared export']")
    admins = table.locator('tr[data-export="Admins\' export"]')
    expect(shared).to_contain_text("Edit")
    expect(admins).to_contain_text("View")
    expect(admins.get_by_test_id("run")).to_have_count(0)

    page.goto("/exports/new")
    options = page.locator("#f-connection_id option")
    expect(options).to_have_text(["Choose a connection", "Shared newsletter"])
    expect(page.locator("#f-connection_id optgroup")).to_have_attribute("label", "Campaign Monitor")

    for admin_page in ("/connections", "/connections/1", "/users", "/audit", "/connections/new"):
        response = page.goto(admin_page)
        assert response.status == 403, admin_page
        expect(page.get_by_test_id("error-page")).to_contain_text("Not allowed")
    response = page.goto("/api/v1/connections/1")  # the API, with the same session: name and type only
    assert response.status == 200
    assert set(response.json()) == {"id", "name", "type"}

    page.goto("/exports")
    shared.get_by_test_id("run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_test_id("run-status")).to_have_text(re.compile("^Succeeded"), timeout=60_000)
    expect(page.get_by_test_id("run-counts").locator("[data-live-count=new]")).to_have_text("40")


def test_viewer_sees_everything_read_only(page_for: Any, live: Live) -> None:
    _setup(live)
    page = page_for(VIEWER)
    expect(page.get_by_test_id("current-role")).to_have_text("Viewer")
    table = page.get_by_test_id("exports")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).not_to_contain_text("Edit")
    expect(table.get_by_test_id("run")).to_have_count(0)
    expect(page.get_by_test_id("add-export")).to_have_count(0)
    expect(page.get_by_test_id("run-all")).to_have_count(0)
    screenshot(page, "exports-viewer")

    table.get_by_role("link", name="Shared export").click()
    expect(page.get_by_test_id("run")).to_have_count(0)
    expect(page.get_by_test_id("edit")).to_have_count(0)
    expect(page.get_by_test_id("remove")).to_have_count(0)

    page.goto("/segments")
    expect(page.get_by_test_id("segments")).to_contain_text("Everyone")
    expect(page.get_by_test_id("new-segment")).to_have_count(0)
    page.get_by_test_id("segments").get_by_role("link", name="Everyone").click()
    read_only = page.get_by_test_id("segment-read-only")  # read-only in look too: text, not fields
    expect(read_only).to_contain_text("orders is at least 0")
    expect(page.locator("main").locator("input:not([type=hidden]), textarea, select")).to_have_count(0)
    expect(page.get_by_text("Edit as JSON")).to_have_count(0)
    expect(page.get_by_test_id("save-segment")).to_have_count(0)
    page.get_by_test_id("preview").click()
    expect(page.get_by_test_id("preview-result")).to_contain_text("customer01@example.com")

    page.goto("/system/schedule")
    expect(page.get_by_test_id("schedule-read-only")).to_contain_text("UTC")
    expect(page.locator("main").locator("input:not([type=hidden]), textarea, select")).to_have_count(0)
    page.goto("/system/status")
    expect(page.locator("h1")).to_have_text("Status")

    for forbidden in ("/exports/new", "/segments/new", "/connections", "/users", "/audit"):
        assert page.goto(forbidden).status == 403, forbidden
