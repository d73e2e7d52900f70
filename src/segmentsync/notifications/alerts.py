"""Alert rules per export: one notice when a rule starts to hold, one when it stops (recovery).

Every export has four rules, on by default (a rule without a row in ``alert_rules`` is its
default): **failed** — its last run failed permanently; **rejected** — a run's rejected rows were
over ``threshold`` % of the rows it sent (default 10); **stale** — no successful run for
``threshold`` hours while the export is scheduled — its own cron, or every system refresh while
the system schedule is on (default 24); **slow** — a run took, or is
taking, longer than ``threshold`` minutes (default 60).

A rule's state flips in one conditional UPDATE (``holding`` from false to true, or back), so two
processes that see the same run never notify twice. A flip writes the in-app notice, the
``alert.triggered`` / ``alert.resolved`` webhook event and, when SMTP is configured, an e-mail to
the active admins and the export's own addresses — all in the transaction that saw it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import Role, User
from segmentsync.errors import Invalid
from segmentsync.exports import notify
from segmentsync.exports.models import Export, Run, RunStatus, ScheduleMode
from segmentsync.exports.records import require_edit_on
from segmentsync.notifications import events
from segmentsync.notifications.models import AlertKind, AlertRecipient, AlertRule, Channel, Delivery
from segmentsync.scheduling.models import SystemSchedule
from segmentsync.settings import Settings

DEFAULTS: dict[AlertKind, float | None] = {
    AlertKind.FAILED: None,
    AlertKind.REJECTED: 10.0,
    AlertKind.STALE: 24.0,
    AlertKind.SLOW: 60.0,
}
UNITS = {AlertKind.FAILED: None, AlertKind.REJECTED: "%", AlertKind.STALE: "hours", AlertKind.SLOW: "minutes"}
LIMITS = {
    AlertKind.REJECTED: (0.0, 100.0),
    AlertKind.STALE: (1.0, 24.0 * 90),
    AlertKind.SLOW: (1.0, 24.0 * 60),
}
LABELS = {
    AlertKind.FAILED: "Run failed permanently",
    AlertKind.REJECTED: "Rejected rows over a share of the rows sent",
    AlertKind.STALE: "No successful run for a while (scheduled exports)",
    AlertKind.SLOW: "Run slower than a limit",
}
ENDED_OK = (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_REJECTIONS)
MAX_RECIPIENTS = 20


@dataclass(frozen=True)
class RuleState:
    kind: AlertKind
    enabled: bool
    threshold: float | None
    holding: bool
    changed_at: datetime | None
    message: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "label": LABELS[self.kind],
            "enabled": self.enabled,
            "threshold": self.threshold,
            "unit": UNITS[self.kind],
            "holding": self.holding,
            "changed_at": self.changed_at,
            "message": self.message,
        }


def rules_of(session: Session, export_id: int) -> list[RuleState]:
    """The export's four rules as they stand (defaults where no row was written)."""
    rows = {r.kind: r for r in session.scalars(sa.select(AlertRule).where(AlertRule.export_id == export_id))}
    states = []
    for kind, default in DEFAULTS.items():
        row = rows.get(kind)
        if row is None:
            states.append(RuleState(kind, True, default, False, None, None))
        else:
            message = (row.detail or {}).get("message")
            states.append(RuleState(kind, row.enabled, row.threshold, row.holding, row.changed_at, message))
    return states


def recipients_of(session: Session, export_id: int) -> list[str]:
    return list(
        session.scalars(
            sa.select(AlertRecipient.email)
            .where(AlertRecipient.export_id == export_id)
            .order_by(AlertRecipient.email)
        )
    )


def _row(session: Session, export_id: int, kind: AlertKind) -> AlertRule:
    row = session.scalar(sa.select(AlertRule).where(AlertRule.export_id == export_id, AlertRule.kind == kind))
    if row is not None:
        return row
    row = AlertRule(export_id=export_id, kind=kind, enabled=True, threshold=DEFAULTS[kind], holding=False)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # another process wrote it meanwhile
        found = session.scalar(
            sa.select(AlertRule).where(AlertRule.export_id == export_id, AlertRule.kind == kind)
        )
        assert found is not None
        return found
    return row


def set_rules(
    *,
    session: Session,
    export: Export,
    actor: User,
    rules: list[dict[str, Any]],
    emails: list[str] | None = None,
    ip: str | None = None,
) -> list[RuleState]:
    """Change the export's rules (``{"kind", "enabled", "threshold"}`` each) and alert addresses."""
    require_edit_on(session, export, actor)
    before = {"rules": [r.as_dict() | {"changed_at": None} for r in rules_of(session, export.id)]}
    for item in rules:
        try:
            kind = AlertKind(str(item.get("kind")))
        except ValueError:
            raise Invalid(
                "unknown alert rule %(value)s; one of: %(names)s",
                params={"value": repr(item.get("kind")), "names": ", ".join(k.value for k in AlertKind)},
                field="rules",
            ) from None
        row = _row(session, export.id, kind)
        if "enabled" in item and item["enabled"] is not None:
            row.enabled = bool(item["enabled"])
            if not row.enabled:
                row.holding = False  # a rule switched off says nothing more, not even "resolved"
        if item.get("threshold") is not None and kind in LIMITS:
            low, high = LIMITS[kind]
            value = float(item["threshold"])
            if not low <= value <= high:
                raise Invalid(
                    "the %(kind)s threshold must be between %(low)s and %(high)s %(unit)s",
                    params={
                        "kind": kind.value,
                        "low": format(low, "g"),
                        "high": format(high, "g"),
                        "unit": UNITS[kind],
                    },
                    field=f"threshold_{kind.value}",
                )
            row.threshold = value
    if emails is not None:
        clean = _emails(emails)
        session.execute(sa.delete(AlertRecipient).where(AlertRecipient.export_id == export.id))
        session.add_all(AlertRecipient(export_id=export.id, email=email) for email in clean)
    session.flush()
    after = rules_of(session, export.id)
    audit.record(
        session, actor=actor, action="export.alerts", object_type="export", object_id=export.id,
        object_label=export.name, before=before,
        after={"rules": [r.as_dict() | {"changed_at": None} for r in after], "emails": recipients_of(session, export.id)},
        ip=ip,
    )  # fmt: skip
    return after


def _emails(emails: list[str]) -> list[str]:
    clean: list[str] = []
    for raw in emails:
        text = raw.strip()
        if not text:
            continue
        try:
            normal = validate_email(text, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise Invalid(
                "%(text)s is not an e-mail address: %(exc)s",
                params={"text": repr(text), "exc": exc},
                field="emails",
            ) from None
        if normal not in clean:
            clean.append(normal)
    if len(clean) > MAX_RECIPIENTS:
        raise Invalid(
            "at most %(max)s alert addresses per export",
            params={"max": MAX_RECIPIENTS},
            field="emails",
        )
    return clean


# ---------------------------------------------------------------- evaluating


def _sent(run: Run) -> int:
    return int(run.new + run.updated + run.removed + run.rejected + run.skipped)


def _minutes(run: Run, now: datetime) -> float | None:
    if run.started_at is None:
        return None
    return ((run.finished_at or now) - run.started_at).total_seconds() / 60


def after_run(session: Session, settings: Settings, run: Run, now: datetime) -> None:
    """Evaluate the rules a run's end decides (failed, rejected, slow; a success ends "stale")."""
    if run.dry_run or run.export_id is None:
        return
    export = session.get(Export, run.export_id)
    if export is None:
        return
    states = {state.kind: state for state in rules_of(session, export.id)}
    name = export.name

    def flip(kind: AlertKind, holding: bool, message: str) -> None:
        state = states[kind]
        if state.enabled and state.holding != holding:
            _flip(session, settings, export, kind, holding=holding, message=message, run=run, now=now)

    if run.status is RunStatus.FAILED:
        flip(
            AlertKind.FAILED,
            True,
            f"Run #{run.id} of “{name}” failed permanently: {run.error or run.error_code}",
        )
    elif run.status in ENDED_OK:
        flip(AlertKind.FAILED, False, f"Run #{run.id} of “{name}” succeeded again.")
        flip(AlertKind.STALE, False, f"Run #{run.id} of “{name}” succeeded: the export is up to date again.")
        limit = states[AlertKind.REJECTED].threshold or 0.0
        sent = _sent(run)
        share = 100.0 * run.rejected / sent if sent else 0.0
        if share > limit:
            flip(AlertKind.REJECTED, True, f"Run #{run.id} of “{name}” had {run.rejected:,} of {sent:,} rows "
                                            f"sent rejected ({share:.1f} %, over {limit:g} %).")  # fmt: skip
        else:
            flip(AlertKind.REJECTED, False, f"Run #{run.id} of “{name}” had {share:.1f} % of its rows rejected "
                                             f"(at most {limit:g} %).")  # fmt: skip
    if run.status in (*ENDED_OK, RunStatus.FAILED):
        took = _minutes(run, now)
        limit = states[AlertKind.SLOW].threshold or 0.0
        if took is not None and took > limit:
            flip(AlertKind.SLOW, True, f"Run #{run.id} of “{name}” took {took:.0f} minutes (over {limit:g}).")
        elif took is not None:
            flip(
                AlertKind.SLOW,
                False,
                f"Run #{run.id} of “{name}” took {took:.0f} minutes (at most {limit:g}).",
            )


def check(session: Session, settings: Settings, now: datetime) -> int:
    """The rules time alone makes hold: stale scheduled exports and runs running too long."""
    flipped = 0
    modes = [ScheduleMode.CRON]
    if session.scalar(sa.select(SystemSchedule.enabled).where(SystemSchedule.id == 1)):
        modes.append(ScheduleMode.SYSTEM)  # with every system refresh: scheduled only while that is on
    exports = session.scalars(sa.select(Export).where(Export.schedule_mode.in_(modes)))
    for export in exports:
        states = {state.kind: state for state in rules_of(session, export.id)}
        stale = states[AlertKind.STALE]
        if stale.enabled and not stale.holding:
            last_ok = session.scalar(
                sa.select(sa.func.max(Run.finished_at)).where(
                    Run.export_id == export.id, Run.status.in_(ENDED_OK), Run.dry_run.is_(False)
                )
            )
            since = last_ok or export.created_at
            hours = (now - since).total_seconds() / 3600
            if hours > (stale.threshold or 0):
                what = (
                    "no successful run"
                    if last_ok is None
                    else "no successful run since " + since.strftime("%Y-%m-%d %H:%M UTC")
                )
                message = f"“{export.name}” has had {what} for {hours:.0f} hours (over {stale.threshold:g})."
                flipped += _flip(
                    session,
                    settings,
                    export,
                    AlertKind.STALE,
                    holding=True,
                    message=message,
                    run=None,
                    now=now,
                )
    slow_running = session.execute(
        sa.select(Run, Export)
        .join(Export, Export.id == Run.export_id)
        .where(Run.status == RunStatus.RUNNING, Run.started_at.is_not(None), Run.dry_run.is_(False))
    ).all()
    for run, export in slow_running:
        slow = {s.kind: s for s in rules_of(session, export.id)}[AlertKind.SLOW]
        took = _minutes(run, now)
        if slow.enabled and not slow.holding and took is not None and took > (slow.threshold or 0):
            message = f"Run #{run.id} of “{export.name}” has been running for {took:.0f} minutes (over {slow.threshold:g})."
            flipped += _flip(
                session, settings, export, AlertKind.SLOW, holding=True, message=message, run=run, now=now
            )
    return flipped


def _flip(
    session: Session,
    settings: Settings,
    export: Export,
    kind: AlertKind,
    *,
    holding: bool,
    message: str,
    run: Run | None,
    now: datetime,
) -> int:
    row = _row(session, export.id, kind)
    result = session.execute(
        sa.update(AlertRule)
        .where(AlertRule.id == row.id, AlertRule.holding.is_(not holding), AlertRule.enabled.is_(True))
        .values(
            holding=holding, changed_at=now, detail={"message": message, "run_id": run.id if run else None}
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return 0  # another process flipped it first, or it was switched off
    session.expire(row)
    state = "triggered" if holding else "resolved"
    notify.notice(
        session, kind=f"alert_{state}", message=message, run_id=run.id if run else None, export_id=export.id
    )
    threshold = next(s.threshold for s in rules_of(session, export.id) if s.kind is kind)
    data = {
        "alert": {
            "rule": kind.value,
            "state": state,
            "threshold": threshold,
            "unit": UNITS[kind],
            "message": message,
        },
        "export": {"id": export.id, "name": export.name},
        "run": {"id": run.id, "status": run.status.value} if run else None,
        "links": {"ui": f"/exports/{export.id}", "api": f"/api/v1/exports/{export.id}"}
        | ({"run_ui": f"/runs/{run.id}", "run_api": f"/api/v1/runs/{run.id}"} if run else {}),
    }
    event_type = events.ALERT_TRIGGERED if holding else events.ALERT_RESOLVED
    events.emit(session, event_type, data, at=now)
    subject = f"[segmentsync] {'Alert' if holding else 'Resolved'}: {LABELS[kind].lower()} — {export.name}"
    lines = [message, "", f"Export: {settings.public_base_url}/exports/{export.id}"]
    if run is not None:
        lines.append(f"Run: {settings.public_base_url}/runs/{run.id}")
    lines += ["", f"Alert rules of this export: {settings.public_base_url}/exports/{export.id}#alerts"]
    email(session, settings, event_type, subject, "\n".join(lines), extra=recipients_of(session, export.id))
    return 1


def admin_emails(session: Session) -> list[str]:
    return list(
        session.scalars(
            sa.select(User.email)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
            .order_by(User.email)
        )
    )


def email(
    session: Session,
    settings: Settings,
    event_type: str,
    subject: str,
    text: str,
    *,
    extra: Sequence[str] = (),
) -> Delivery | None:
    """Queue one e-mail to the active admins (and ``extra``), if SMTP is configured."""
    if settings.smtp_url is None:
        return None
    to = list(dict.fromkeys([*admin_emails(session), *extra]))
    if not to:
        return None
    body = orjson.dumps({"subject": subject, "text": text}).decode()
    return events.queue(
        session,
        Delivery(
            message_id=events.new_message_id(),
            channel=Channel.EMAIL,
            recipients=to,
            event_type=event_type,
            body=body,
        ),
    )
