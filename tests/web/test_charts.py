"""The Status chart's counts per UTC day and status, computed by each metadata store.

SQLite and PostgreSQL group by day differently (ISO text against ``to_char``): both must put a
run started at 23:30 UTC on its own day, leave out runs older than the window, and keep every
status apart. The export and run charts are drawn in tests/web/test_layout.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segmentsync.db import transaction
from segmentsync.exports.models import Run, RunStatus, Trigger
from segmentsync.runtime import Runtime
from segmentsync.web import charts
from segmentsync.web.i18n import Translator

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _run(session: object, created: datetime, status: RunStatus) -> None:
    session.add(  # type: ignore[attr-defined]
        Run(
            export_id=None,
            export_name="Newsletter",
            trigger=Trigger.SCHEDULE,
            status=status,
            created_at=created,
        )
    )


def test_runs_per_day_counts_each_utc_day_and_status_on_both_stores(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        assert charts.runs_per_day(session, now=NOW, tr=Translator("en")) is None  # no run: no chart
        _run(session, datetime(2026, 3, 9, 23, 30, tzinfo=UTC), RunStatus.SUCCEEDED)
        _run(session, datetime(2026, 3, 9, 0, 5, tzinfo=UTC), RunStatus.SUCCEEDED)
        _run(session, datetime(2026, 3, 9, 8, 0, tzinfo=UTC), RunStatus.FAILED)
        _run(session, datetime(2026, 3, 10, 0, 30, tzinfo=UTC), RunStatus.SUCCEEDED)
        _run(session, NOW - timedelta(days=charts.STATUS_DAYS), RunStatus.FAILED)  # before the window
    with transaction(runtime.sessions) as session:
        spec = charts.runs_per_day(session, now=NOW, tr=Translator("pl"))
    assert spec is not None
    assert len(spec["labels"]) == charts.STATUS_DAYS
    assert spec["labels"][-2:] == ["2026-03-09", "2026-03-10"]
    series = {d["label"]: d["data"] for d in spec["datasets"]}
    assert set(series) == {
        "Zakończony powodzeniem",
        "Niepowodzenie (trwałe)",
    }  # the labels in the page's language
    assert series["Zakończony powodzeniem"][-2:] == [2, 1]
    assert series["Niepowodzenie (trwałe)"][-2:] == [1, 0]
    assert sum(series["Niepowodzenie (trwałe)"]) == 1  # the run 30 days ago is not counted


def test_run_outcomes_shows_the_outcomes_a_finished_run_had() -> None:
    run = Run(export_name="x", status=RunStatus.SUCCEEDED_WITH_REJECTIONS, finished_at=NOW, new=3, updated=0,
              unchanged=5, removed=0, invalid=1, rejected=2, skipped=0)  # fmt: skip
    spec = charts.run_outcomes(run, Translator("en"))
    assert spec is not None
    assert spec["labels"] == ["New", "Unchanged", "Invalid", "Rejected"]
    assert spec["datasets"][0]["data"] == [3, 5, 1, 2]
    run.finished_at = None
    assert charts.run_outcomes(run, Translator("en")) is None  # still running: its counts still move
