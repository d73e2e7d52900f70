"""Admin > Webhooks (endpoints, their deliveries, redeliver, test event, secret) and the export page's
alert rules form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response

from segmentsync.auth.policy import Action
from segmentsync.errors import Invalid, SegmentSyncError
from segmentsync.exports import records
from segmentsync.notifications import alerts, events, service
from segmentsync.notifications.models import AlertKind
from segmentsync.web.page import Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Admin = Annotated[Page, page_for(Action.WEBHOOKS_MANAGE)]
Editor = Annotated[Page, page_for(Action.EXPORTS_EDIT)]
DELIVERIES_SHOWN = 50


def _list(page: Page, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
          created: tuple[int, str] | None = None, status: int = 200) -> Response:  # fmt: skip
    with page.transaction() as session:
        endpoints = service.listing_for(session=session, actor=page.me)
    return page.render(
        "webhooks.html", status=status, title=page._("Webhooks"), endpoints=endpoints, event_types=events.EVENT_TYPES,
        errors=errors or {}, values=values or {"events": ["*"]}, created=created,
    )  # fmt: skip


@router.get("/webhooks")
def webhooks(page: Admin) -> Response:
    return _list(page)


@router.post("/webhooks")
def create_webhook(page: Admin, form: PostedForm) -> Response:
    chosen = form.getlist("events")
    try:
        with page.transaction() as session:
            endpoint, secret = service.create(session=session, settings=page.runtime.settings, vault=page.runtime.vault,
                                              actor=page.me, url=form.get("url"), event_types=chosen,
                                              description=form.get("description"), ip=page.ip)  # fmt: skip
            made = endpoint.id
    except SegmentSyncError as error:
        errors = {error.field or "url": page.error_text(error)}
        return _list(page, errors=errors, values={**form.values(), "events": chosen}, status=error.status)
    return _list(page, created=(made, secret))


def _detail(page: Page, endpoint_id: int, *, errors: dict[str, str] | None = None, secret: str | None = None,
            status: int = 200) -> Response:  # fmt: skip
    with page.transaction() as session:
        endpoint = service.get_for(session=session, actor=page.me, endpoint_id=endpoint_id)
        sent = list(session.scalars(service.deliveries(endpoint.id).limit(DELIVERIES_SHOWN)))
    return page.render(
        "webhook.html", status=status, title=endpoint.url, endpoint=endpoint, deliveries=sent,
        event_types=events.EVENT_TYPES, errors=errors or {}, secret=secret,
    )  # fmt: skip


@router.get("/webhooks/{endpoint_id}")
def webhook_page(endpoint_id: int, page: Admin) -> Response:
    return _detail(page, endpoint_id)


@router.post("/webhooks/{endpoint_id}")
def update_webhook(endpoint_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            service.update(session=session, settings=page.runtime.settings, actor=page.me,
                           endpoint=service.get(session, endpoint_id), url=form.get("url"),
                           event_types=form.getlist("events"), description=form.get("description"),
                           enabled=form.bool("enabled"), ip=page.ip)  # fmt: skip
    except SegmentSyncError as error:
        return _detail(
            page, endpoint_id, errors={error.field or "url": page.error_text(error)}, status=error.status
        )
    page.flash(page._("Saved."))
    return page.redirect(f"/webhooks/{endpoint_id}")


@router.post("/webhooks/{endpoint_id}/test")
def test_webhook(endpoint_id: int, page: Admin) -> Response:
    with page.transaction() as session:
        service.send_test(session=session, actor=page.me, endpoint=service.get(session, endpoint_id),
                          now=page.runtime.clock())  # fmt: skip
    page.flash(page._("A test event is on its way; its delivery shows below."))
    return page.redirect(f"/webhooks/{endpoint_id}")


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate_webhook(endpoint_id: int, page: Admin) -> Response:
    with page.transaction() as session:
        secret = service.rotate(session=session, vault=page.runtime.vault, actor=page.me,
                                endpoint=service.get(session, endpoint_id), now=page.runtime.clock(), ip=page.ip)  # fmt: skip
    return _detail(page, endpoint_id, secret=secret)


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(endpoint_id: int, delivery_id: int, page: Admin) -> Response:
    try:
        with page.transaction() as session:
            service.redeliver(session=session, actor=page.me, endpoint=service.get(session, endpoint_id),
                              delivery_id=delivery_id, now=page.runtime.clock())  # fmt: skip
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "warn")
    else:
        page.flash(page._("Delivery #%(id)s is sent again.", id=delivery_id))
    return page.redirect(f"/webhooks/{endpoint_id}")


@router.post("/webhooks/{endpoint_id}/remove")
def remove_webhook(endpoint_id: int, page: Admin) -> Response:
    with page.transaction() as session:
        service.remove(session=session, actor=page.me, endpoint=service.get(session, endpoint_id), ip=page.ip)
    page.flash(page._("The webhook endpoint is removed."))
    return page.redirect("/webhooks")


# ---------------------------------------------------------------- an export's alert rules


def alerts_view(session: Any, export_id: int) -> dict[str, Any]:
    """What the export page's alert block shows."""
    return {"rules": alerts.rules_of(session, export_id), "emails": alerts.recipients_of(session, export_id)}


def _number(form: PostedForm, name: str) -> float | None:
    text = form.get(name).replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise Invalid("enter a number", field=name) from None


@router.post("/exports/{export_id}/alerts")
def set_alerts(export_id: int, page: Editor, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            export = records.get(session=session, export_id=export_id, actor=page.me)
            rules = [
                {"kind": kind.value, "enabled": form.bool(f"enabled_{kind.value}"),
                 "threshold": _number(form, f"threshold_{kind.value}") if kind in alerts.LIMITS else None}
                for kind in AlertKind
            ]  # fmt: skip
            emails = [line for line in form.get("emails").replace(",", "\n").splitlines() if line.strip()]
            alerts.set_rules(
                session=session, export=export, actor=page.me, rules=rules, emails=emails, ip=page.ip
            )
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "error")
    else:
        page.flash(page._("Alert rules saved."))
    return page.redirect(f"/exports/{export_id}#alerts")
