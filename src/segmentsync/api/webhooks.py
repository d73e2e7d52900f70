"""Admin > Webhooks: endpoints, their deliveries, redelivery, a test event, secret rotation (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.api.pagination import Page, PageDep, paginate
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.notifications import service
from segmentsync.notifications.models import DeliveryStatus
from segmentsync.notifications.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Admin = Annotated[User, Depends(require(Action.WEBHOOKS_MANAGE))]


@router.get("", summary="List webhook endpoints")
def list_webhooks(session: SessionDep, admin: Admin, page: PageDep) -> Page[WebhookOut]:
    rows, total = paginate(session, service.listing(), page)
    return Page(
        items=[WebhookOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Add a webhook endpoint (its secret is shown once)"
)
def create_webhook(
    body: WebhookCreate, session: SessionDep, runtime: RuntimeDep, admin: Admin, request: Request
) -> WebhookCreated:
    endpoint, secret = service.create(session=session, settings=runtime.settings, vault=runtime.vault, actor=admin,
                                      url=body.url, event_types=body.events, description=body.description,
                                      ip=client_ip(request))  # fmt: skip
    return WebhookCreated(**WebhookOut.model_validate(endpoint).model_dump(), secret=secret)


@router.get("/{webhook_id}", summary="Show a webhook endpoint")
def get_webhook(webhook_id: int, session: SessionDep, admin: Admin) -> WebhookOut:
    return WebhookOut.model_validate(service.get(session, webhook_id))


@router.patch(
    "/{webhook_id}", summary="Change a webhook endpoint's URL, events, description or enabled state"
)
def update_webhook(
    webhook_id: int,
    body: WebhookUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    admin: Admin,
    request: Request,
) -> WebhookOut:
    endpoint = service.update(session=session, settings=runtime.settings, actor=admin,
                              endpoint=service.get(session, webhook_id), url=body.url, event_types=body.events,
                              description=body.description, enabled=body.enabled, ip=client_ip(request))  # fmt: skip
    return WebhookOut.model_validate(endpoint)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a webhook endpoint")
def delete_webhook(webhook_id: int, session: SessionDep, admin: Admin, request: Request) -> Response:
    service.remove(
        session=session, actor=admin, endpoint=service.get(session, webhook_id), ip=client_ip(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret", summary="A new signing secret (the previous one signs for 24 h more)"
)
def rotate_secret(
    webhook_id: int, session: SessionDep, runtime: RuntimeDep, admin: Admin, request: Request
) -> WebhookSecret:
    secret = service.rotate(session=session, vault=runtime.vault, actor=admin, endpoint=service.get(session, webhook_id),
                            now=runtime.clock(), ip=client_ip(request))  # fmt: skip
    return WebhookSecret(secret=secret)


@router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, summary="Send a webhook.test event")
def send_test(webhook_id: int, session: SessionDep, runtime: RuntimeDep, admin: Admin) -> DeliveryOut:
    delivery = service.send_test(session=session, actor=admin, endpoint=service.get(session, webhook_id),
                                 now=runtime.clock())  # fmt: skip
    return DeliveryOut.model_validate(delivery)


@router.get("/{webhook_id}/deliveries", summary="The endpoint's deliveries, newest first")
def list_deliveries(
    webhook_id: int, session: SessionDep, admin: Admin, page: PageDep, status: DeliveryStatus | None = None
) -> Page[DeliveryOut]:
    service.get(session, webhook_id)
    rows, total = paginate(session, service.deliveries(webhook_id, status), page)
    return Page(
        items=[DeliveryOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a delivered or failed message again (same webhook-id)",
)
def redeliver(
    webhook_id: int, delivery_id: int, session: SessionDep, runtime: RuntimeDep, admin: Admin
) -> DeliveryOut:
    delivery = service.redeliver(session=session, actor=admin, endpoint=service.get(session, webhook_id),
                                 delivery_id=delivery_id, now=runtime.clock())  # fmt: skip
    return DeliveryOut.model_validate(delivery)
