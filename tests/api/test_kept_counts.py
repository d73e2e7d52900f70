"""The totals of the whole runs list and the whole audit log are the store's kept counts
(``segmentsync.counts``): right after single and bulk inserts, deletes and folding, on both stores,
and (PostgreSQL) while writers and folders work at once. Filtered lists are counted as before."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from people import make_person
from segmentsync import counts
from segmentsync.api.app import create_app
from segmentsync.auth.models import AuditEntry, Role
from segmentsync.db import transaction
from segmentsync.exports.models import Export, Run, RunStatus, Trigger
from segmentsync.runtime import Runtime


def entry(n: int) -> dict[str, Any]:
    return {"actor_label": "system", "action": "test.write", "object_type": "test", "object_id": str(n)}


def run(n: int, status: RunStatus = RunStatus.SUCCEEDED) -> Run:
    return Run(export_name=f"export {n}", trigger=Trigger.ON_DEMAND, status=status)


def kept_rows(runtime: Runtime, table: str) -> int:
    with runtime.readers() as session:
        return (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(counts.RowCount)
                .where(counts.RowCount.table_name == table)
            )
            or 0
        )


def test_the_whole_lists_totals_follow_inserts_deletes_and_folding(runtime: Runtime) -> None:
    admin = make_person(runtime, "ada@example.com", Role.ADMIN)
    client = TestClient(create_app(runtime), headers=admin.auth)

    def totals() -> tuple[int, int, int]:
        runs = client.get("/api/v1/runs?limit=1").json()["total"]
        audit = client.get("/api/v1/audit?limit=1").json()["total"]
        failed = client.get("/api/v1/runs?limit=1&status=failed").json()["total"]  # filtered: counted
        return runs, audit, failed

    def truth() -> tuple[int, int, int]:
        with runtime.readers() as session:
            return (
                session.scalar(sa.select(sa.func.count()).select_from(Run)) or 0,
                session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0,
                session.scalar(sa.select(sa.func.count()).where(Run.status == RunStatus.FAILED)) or 0,
            )

    with transaction(runtime.sessions) as session:  # one by one, and in bulk
        session.add_all([run(n) for n in range(3)] + [run(3, RunStatus.FAILED)])
        session.execute(sa.insert(AuditEntry), [entry(n) for n in range(25)])
    with transaction(runtime.sessions) as session:
        session.add(AuditEntry(**entry(99)))
    assert totals() == truth()
    assert totals()[0] == 4

    with transaction(runtime.sessions) as session:
        session.execute(sa.delete(AuditEntry).where(AuditEntry.object_id.in_(["1", "2", "3"])))
        session.execute(sa.delete(Run).where(Run.export_name == "export 0"))
    assert totals() == truth()

    with transaction(runtime.sessions) as session:
        counts.compact_all(session)
    assert (kept_rows(runtime, "runs"), kept_rows(runtime, "audit_log")) == (1, 1)
    assert totals() == truth()

    with transaction(runtime.sessions) as session:  # the figure shown is the kept one
        session.add(counts.RowCount(table_name="runs", delta=1000))
    assert totals()[0] == truth()[0] + 1000


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_writers_and_folders_at_once_lose_and_double_nothing(runtime: Runtime) -> None:
    errors: list[BaseException] = []
    writing = threading.Event()

    def write(worker: int) -> None:
        try:
            for n in range(30):
                with transaction(runtime.sessions) as session:
                    session.add(AuditEntry(**entry(worker * 1000 + n)))
                    if n % 3 == 0:
                        session.execute(sa.insert(AuditEntry), [entry(-n), entry(-n - 1)])
                    if n % 10 == 9:
                        session.execute(
                            sa.delete(AuditEntry).where(AuditEntry.object_id == str(worker * 1000 + n))
                        )
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    def fold() -> None:
        try:
            while writing.is_set():
                with transaction(runtime.sessions) as session:
                    counts.compact(session, "audit_log")
        except BaseException as exc:
            errors.append(exc)

    writing.set()
    folders = [threading.Thread(target=fold) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in [*folders, *writers]:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    for thread in folders:
        thread.join()
    assert errors == []
    with runtime.readers() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 6 * (30 + 20 - 3)
        assert counts.total(session, "audit_log") == 6 * (30 + 20 - 3)


@pytest.mark.parametrize(
    ("query", "table"),
    [
        (sa.select(Run).order_by(Run.id.desc()), "runs"),
        (sa.select(Run.id, Run.status), "runs"),
        (sa.select(AuditEntry), "audit_log"),
        (sa.select(Export), None),  # not a counted table
        (sa.select(Run).where(Run.status == RunStatus.FAILED), None),
        (sa.select(Run).join(Export, Export.id == Run.export_id), None),
        (sa.select(Run).select_from(Run.__table__.join(Export.__table__)), None),
        (sa.select(Run).join_from(Run, Export), None),
        (sa.select(Run.status).group_by(Run.status), None),
        (sa.select(Run.status).group_by(Run.status).having(sa.func.count() > 1), None),
        (sa.select(Run.export_id).distinct(), None),
        (sa.select(Run, Export), None),  # two tables
        (sa.select(sa.func.count()).select_from(Run), None),
    ],
)
def test_only_a_list_of_every_row_of_a_counted_table_uses_its_kept_count(
    query: Any, table: str | None
) -> None:
    """A filter, a join, grouping or another table must be counted: the kept total would be wrong."""
    assert counts.whole_table(query) == table
