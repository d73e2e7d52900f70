"""Admin > Webhooks and the export page's alert rules, as a person uses them (forms, CSRF, roles)."""

from __future__ import annotations

import re
from html import unescape

from exports.world import World  # tests/ is on sys.path (rootdir)
from people import make_person
from receivers import receiver
from segmentsync.auth.models import Role
from web.pages import Pages, field_error  # tests/ is on sys.path (rootdir)

from .helpers import send_all, verified

PASSWORD = "correct horse battery staple"


def signed_in(world: World, email: str, role: Role) -> Pages:
    make_person(world.runtime, email, role, password=PASSWORD)
    pages = Pages(world.runtime)
    assert pages.sign_in(email, PASSWORD).status_code == 303
    return pages


def test_admin_webhooks_and_the_export_pages_alert_rules(world: World) -> None:
    """An admin adds an endpoint, sees its secret once, sends a test event; a viewer reads an export's
    alert rules, an admin changes them."""
    admin = signed_in(world, "wanda@example.com", Role.ADMIN)
    viewer = signed_in(world, "vic@example.com", Role.VIEWER)
    assert 'href="/webhooks"' in admin.get("/exports").text
    with receiver() as hooks:
        admin.get("/webhooks")
        refused = admin.post("/webhooks", [("url", "ftp://example.com"), ("events", "*")])
        assert refused.status_code == 422
        assert "Only http:// and https://" in field_error(refused.text, "url")
        made = admin.post("/webhooks", [("url", hooks.url), ("events", "run.failed"), ("events", "alert.triggered"),
                                        ("description", "on-call")])  # fmt: skip
        assert made.status_code == 200
        secret = re.search(r"(whsec_[A-Za-z0-9+/=]+)", made.text)
        assert secret is not None
        endpoint_id = re.search(r'href="/webhooks/(\d+)"', made.text)
        assert endpoint_id is not None
        page = admin.get(f"/webhooks/{endpoint_id.group(1)}")
        assert secret.group(1) not in page.text  # shown once
        assert admin.post(f"/webhooks/{endpoint_id.group(1)}/test", {}).status_code == 303
        send_all(world)
        assert verified(secret.group(1), hooks.requests[0])["type"] == "webhook.test"  # type: ignore[index]
        listed = admin.get(f"/webhooks/{endpoint_id.group(1)}").text
        assert "webhook.test" in listed
        assert "delivered" in listed
    assert viewer.get("/webhooks").status_code == 403
    assert 'href="/webhooks"' not in viewer.get("/exports").text

    export_id = world.create(world.form()).export_id
    shown = viewer.get(f"/exports/{export_id}").text
    assert "Alert rules" in shown
    assert "Save alert rules" not in shown  # a viewer reads them
    admin.get(f"/exports/{export_id}")
    form = [("enabled_failed", "1"), ("enabled_rejected", "1"), ("threshold_rejected", "2,5"),
            ("threshold_stale", "12"), ("threshold_slow", "30"), ("emails", "ops@example.org\nsre@example.org")]  # fmt: skip
    assert admin.post(f"/exports/{export_id}/alerts", form).status_code == 303
    page = unescape(admin.get(f"/exports/{export_id}").text)
    assert 'name="threshold_rejected" value="2.5"' in page
    assert "ops@example.org\nsre@example.org" in page
    assert re.search(r'name="enabled_failed"[^>]*checked', page)
    assert not re.search(r'name="enabled_stale"[^>]*checked', page)  # not sent: switched off
    bad = admin.post(f"/exports/{export_id}/alerts", [*form, ("threshold_slow", "soon")])
    assert bad.status_code == 303
    assert "Enter a number" in admin.get(f"/exports/{export_id}").text
    assert viewer.post(f"/exports/{export_id}/alerts", form).status_code == 403
