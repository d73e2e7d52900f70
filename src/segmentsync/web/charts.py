"""The data behind the pages' charts, as small JSON specs that ``static/charts.js`` draws.

Each spec is bounded whatever the history's size: an export's chart reads its last
:data:`RUNS_CHARTED` finished runs of the last :data:`DAYS_CHARTED` days (by the indexed
``runs.export_id``), the Status chart counts runs per day and status over :data:`STATUS_DAYS` days
(by the indexed ``runs.created_at``, grouped in the database), and a run's outcome chart uses the
run's own counts. Labels are translated here, so the charts read in the page's language; numbers
and dates are formatted by the browser in that language (``Intl``).

A spec: ``{"kind": "bar" | "line" | "doughnut", "labels": [...], "dates": bool (labels are ISO
times), "x": the labels' heading, "datasets": [{"label", "data", "color", "type"?, "axis"?}], "y": title, "y2": title?}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.exports.models import Run, RunStatus
from segmentsync.web.i18n import Translator
from segmentsync.web.labels import Labeler

RUNS_CHARTED = 60
DAYS_CHARTED = 90
STATUS_DAYS = 30
DELIVERED = (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_REJECTIONS)  # a failed run's size is unknown
OUTCOMES = ("new", "updated", "unchanged", "removed", "invalid", "rejected", "skipped")
# Colour names charts.js maps to the stylesheet's palette (status badges use the same meanings).
STATUS_COLORS = {
    RunStatus.SUCCEEDED: "ok", RunStatus.SUCCEEDED_WITH_REJECTIONS: "warn", RunStatus.FAILED: "err",
    RunStatus.FAILED_RETRY: "orange", RunStatus.CANCELLED: "grey", RunStatus.SKIPPED: "sand",
    RunStatus.AWAITING_CONFIRMATION: "purple", RunStatus.QUEUED: "accent", RunStatus.RUNNING: "sky",
}  # fmt: skip
OUTCOME_COLORS = {"new": "ok", "updated": "teal", "unchanged": "grey", "removed": "purple",
                  "invalid": "orange", "rejected": "err", "skipped": "sand"}  # fmt: skip


def export_runs(session: Session, export_id: int, *, now: datetime, tr: Translator) -> dict[str, Any] | None:
    """Rows sent, rejected and removed per run, with its duration; and the list's size as delivered
    (the members on the list from our segments after the run: new, updated and unchanged; none for a
    run that did not finish successfully, drawn as a gap).

    None when the export has no finished run to show (dry runs change no list and are left out).
    """
    runs = list(
        session.execute(
            sa.select(
                Run.status,
                Run.started_at,
                Run.finished_at,
                Run.new,
                Run.updated,
                Run.unchanged,
                Run.removed,
                Run.rejected,
            )
            .where(
                Run.export_id == export_id,
                Run.dry_run.is_(False),
                Run.finished_at.is_not(None),
                Run.started_at.is_not(None),
                Run.created_at >= now - timedelta(days=DAYS_CHARTED),
            )
            .order_by(Run.id.desc())
            .limit(RUNS_CHARTED)
        )
    )
    if not runs:
        return None
    runs.reverse()  # oldest first: time runs left to right
    assert all(run.started_at and run.finished_at for run in runs)
    return {
        "kind": "bar",
        "dates": True,
        "x": tr.gettext("Started"),
        "labels": [run.started_at.isoformat() for run in runs],
        "y": tr.gettext("Rows"),
        "y2": tr.gettext("Duration (s)"),
        "datasets": [
            {
                "label": tr.gettext("Rows sent"),
                "data": [run.new + run.updated for run in runs],
                "color": "ok",
            },
            {"label": tr.gettext("Rejected"), "data": [run.rejected for run in runs], "color": "err"},
            {"label": tr.gettext("Removed"), "data": [run.removed for run in runs], "color": "purple"},
            {
                "label": tr.gettext("Duration (s)"),
                "type": "line",
                "axis": "y2",
                "color": "ink",
                "data": [round((run.finished_at - run.started_at).total_seconds(), 1) for run in runs],
            },
        ],
        "size": {
            "kind": "line",
            "dates": True,
            "x": tr.gettext("Started"),
            "labels": [run.started_at.isoformat() for run in runs],
            "y": tr.gettext("Members"),
            "datasets": [
                {
                    "label": tr.gettext("List size as delivered"),
                    "color": "accent",
                    "data": [
                        run.new + run.updated + run.unchanged if run.status in DELIVERED else None
                        for run in runs
                    ],
                },
            ],
        },
    }


def run_outcomes(run: Run, tr: Translator) -> dict[str, Any] | None:
    """The share of each row outcome of one finished run (None while it runs or when it had no rows)."""
    if run.finished_at is None:
        return None
    label = Labeler(tr)
    shown = [(name, getattr(run, name)) for name in OUTCOMES if getattr(run, name)]
    if not shown:
        return None
    return {
        "kind": "doughnut",
        "x": tr.gettext("Outcome"),
        "labels": [label("outcome", name) for name, _ in shown],
        "datasets": [
            {
                "label": tr.gettext("Rows"),
                "data": [count for _, count in shown],
                "color": [OUTCOME_COLORS[name] for name, _ in shown],
            },
        ],
    }


def _day(session: Session) -> sa.ColumnElement[str]:
    """The UTC day of a run's ``created_at`` as ``YYYY-MM-DD``, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", Run.created_at), "YYYY-MM-DD")
    return sa.func.substr(Run.created_at, 1, 10)  # SQLite keeps UTC times as ISO text


def runs_per_day(session: Session, *, now: datetime, tr: Translator) -> dict[str, Any] | None:
    """Runs started per UTC day over the last :data:`STATUS_DAYS` days, stacked by status."""
    first = (now - timedelta(days=STATUS_DAYS - 1)).date()
    since = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    day = _day(session)
    counts = session.execute(
        sa.select(day, Run.status, sa.func.count()).where(Run.created_at >= since).group_by(day, Run.status)
    ).all()
    if not counts:
        return None
    days = [(first + timedelta(days=offset)).isoformat() for offset in range(STATUS_DAYS)]
    by_status: dict[RunStatus, dict[str, int]] = {}
    for text, status, count in counts:
        by_status.setdefault(RunStatus(status), {})[str(text)] = count
    label = Labeler(tr)
    return {
        "kind": "bar",
        "stacked": True,
        "dates": "day",
        "x": tr.gettext("When"),
        "labels": days,
        "y": tr.gettext("Runs"),
        "datasets": [
            {
                "label": label("run_status", status),
                "color": STATUS_COLORS.get(status, "grey"),
                "data": [by_status[status].get(day_text, 0) for day_text in days],
            }
            for status in RunStatus
            if status in by_status
        ],
    }
