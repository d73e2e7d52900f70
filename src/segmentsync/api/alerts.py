"""An export's alert rules and alert addresses: everyone who sees the export reads them; editors change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.exports import records
from segmentsync.notifications import alerts
from segmentsync.notifications.schemas import AlertRuleOut, AlertsIn, AlertsOut
from segmentsync.runtime import Runtime

router = APIRouter(prefix="/exports", tags=["exports"])
Viewer = Annotated[User, Depends(require(Action.EXPORTS_VIEW))]
Editor = Annotated[User, Depends(require(Action.EXPORTS_EDIT))]


def alerts_out(session: Session, runtime: Runtime, export_id: int) -> AlertsOut:
    return AlertsOut(
        rules=[AlertRuleOut(**state.as_dict()) for state in alerts.rules_of(session, export_id)],
        emails=alerts.recipients_of(session, export_id),
        email_configured=runtime.settings.smtp_url is not None,
    )


@router.get("/{export_id}/alerts", summary="The export's alert rules and alert addresses")
def get_alerts(export_id: int, session: SessionDep, runtime: RuntimeDep, actor: Viewer) -> AlertsOut:
    export = records.get(session=session, export_id=export_id, actor=actor)
    return alerts_out(session, runtime, export.id)


@router.put("/{export_id}/alerts", summary="Change the export's alert rules (those sent) and addresses")
def set_alerts(
    export_id: int, body: AlertsIn, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> AlertsOut:
    export = records.get(session=session, export_id=export_id, actor=actor)
    alerts.set_rules(session=session, export=export, actor=actor,
                     rules=[rule.model_dump(exclude_unset=True) for rule in body.rules],
                     emails=body.emails, ip=client_ip(request))  # fmt: skip
    return alerts_out(session, runtime, export.id)
