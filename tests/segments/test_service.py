"""The segment service on both metadata stores (SQLite, PostgreSQL) over a DuckDB profile file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from segmentsync.auth.models import AuditEntry, Role, User
from segmentsync.db import transaction
from segmentsync.errors import Conflict, Forbidden, Invalid, NotFound
from segmentsync.exports.models import Export, ExportSegment
from segmentsync.profiles import store
from segmentsync.runtime import Runtime
from segmentsync.segments import service
from segmentsync.segments.models import Segment, SegmentRefresh
from segmentsync.segments.rules import parse
from segmentsync.segments.schemas import SegmentCreate, SegmentOut, SegmentUpdate

from .conftest import duckdb_source
from .dataset import NOW

TYPICAL = {
    "items": [
        {"column": "country", "operator": "in", "value": ["PL", "LV"]},
        {"column": "last_purchase_at", "operator": "in_last_days", "value": 90},
        {"column": "total_spend", "operator": "gt", "value": 100},
    ]
}  # members: 1 and 10
POLES = {"items": [{"column": "country", "operator": "eq", "value": "PL"}]}  # 1, 3, 9, 12


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    """The runtime with the test profiles in its embedded DuckDB store and three users."""
    duckdb_source(store.embedded_path(runtime.settings))
    with transaction(runtime.sessions) as session:
        for role in Role:
            session.add(User(email=f"{role.value}@example.com", role=role))
    return runtime


def user(rt: Runtime, role: Role) -> User:
    with rt.sessions() as session:
        found = session.scalar(sa.select(User).where(User.role == role))
        assert found is not None
        return found


def create(rt: Runtime, name: str, rules: dict[str, Any], role: Role = Role.CONTRIBUTOR) -> int:
    actor = user(rt, role)  # before the write transaction: SQLite lets one writer in at a time
    with transaction(rt.sessions) as session:
        segment = service.create(
            session=session, source=rt.profiles, actor=actor,
            segment_in=SegmentCreate(name=name, description="for tests", rules=parse(rules)),
        )  # fmt: skip
        return segment.id


def audit_actions(rt: Runtime) -> list[tuple[str, str | None, str]]:
    with rt.sessions() as session:
        rows = session.execute(sa.select(AuditEntry.action, AuditEntry.object_label, AuditEntry.actor_label))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_create_saves_the_rule_and_audits(rt: Runtime) -> None:
    segment_id = create(rt, "PL+LV buyers", TYPICAL)
    with rt.sessions() as session:
        out = SegmentOut.model_validate(service.get(session=session, segment_id=segment_id))
    assert out.rules == parse(TYPICAL)
    assert out.rule_text == (
        "country in ('PL', 'LV') AND last_purchase_at in the last 90 days AND total_spend > 100"
    )
    assert out.member_count is None
    assert out.last_refresh_at is None
    assert audit_actions(rt) == [("segment.create", "PL+LV buyers", "contributor@example.com")]


def test_a_rule_that_does_not_fit_the_table_saves_nothing(rt: Runtime) -> None:
    with pytest.raises(Invalid, match="unknown column 'contry'; did you mean 'country'"):
        create(rt, "typo", {"items": [{"column": "contry", "operator": "eq", "value": "PL"}]})
    with rt.sessions() as session:
        assert service.list_segments(session=session) == []
    assert audit_actions(rt) == []


def test_names_are_unique_ignoring_case(rt: Runtime) -> None:
    create(rt, "Poles", POLES)
    other = create(rt, "Buyers", TYPICAL)
    with pytest.raises(Conflict, match="'poles' exists already"):
        create(rt, "poles", POLES)
    with pytest.raises(Conflict), transaction(rt.sessions) as session:
        service.update(
            session=session, source=rt.profiles, segment_id=other, actor=user(rt, Role.ADMIN),
            segment_in=SegmentUpdate(name="POLES"),
        )  # fmt: skip


def test_a_name_beyond_ascii_is_taken_once(rt: Runtime) -> None:
    # SQLite's lower() folds only A-Z: 'Élan' must still be found taken, as a conflict, not as
    # the unique index's failure (a 500 found by the API fuzz test).
    segment_id = create(rt, "Élan Ω", POLES)
    with pytest.raises(Conflict, match="exists already"):
        create(rt, "Élan Ω", POLES)
    with rt.sessions() as session:
        assert service.find(session=session, ref="Élan Ω").id == segment_id


def test_viewers_may_not_change_segments(rt: Runtime) -> None:
    with pytest.raises(Forbidden, match=r"viewer.*segments\.edit"):
        create(rt, "Poles", POLES, role=Role.VIEWER)
    segment_id = create(rt, "Poles", POLES)
    with pytest.raises(Forbidden), transaction(rt.sessions) as session:
        service.delete(session=session, segment_id=segment_id, actor=user(rt, Role.VIEWER))


def test_editing_the_rule_forgets_the_old_count(rt: Runtime) -> None:
    segment_id = create(rt, "Poles", POLES)
    with transaction(rt.sessions) as session:
        service.refresh(session=session, source=rt.profiles, segment_id=segment_id, actor=None, now=NOW)
    admin = user(rt, Role.ADMIN)
    with transaction(rt.sessions) as session:
        updated = service.update(
            session=session, source=rt.profiles, segment_id=segment_id, actor=admin,
            segment_in=SegmentUpdate(description="new words"),
        )  # fmt: skip
        assert updated.member_count == 4  # only the description changed
        updated = service.update(
            session=session, source=rt.profiles, segment_id=segment_id, actor=admin,
            segment_in=SegmentUpdate(rules=parse(TYPICAL)),
        )  # fmt: skip
        assert updated.member_count is None
        assert updated.last_refresh_at is None
    with rt.sessions() as session:
        entries = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "segment.update")))
    assert [e.after["description"] for e in entries if e.after] == ["new words", "new words"]
    assert entries[1].before is not None
    assert entries[1].before["rules"] == parse(POLES).model_dump(mode="json")


def test_delete_is_refused_while_exports_use_the_segment(rt: Runtime) -> None:
    segment_id = create(rt, "Poles", POLES)
    with transaction(rt.sessions) as session:
        for name in ("Weekly newsletter", "Alpha list"):
            export = Export(name=name, list_id="x" * 32, email_column="email")
            session.add(export)
            session.flush()
            session.add(ExportSegment(export_id=export.id, segment_id=segment_id))
    with pytest.raises(Conflict) as info, transaction(rt.sessions) as session:
        service.delete(session=session, segment_id=segment_id, actor=user(rt, Role.ADMIN))
    assert "used by 2 export(s): Alpha list, Weekly newsletter" in info.value.message
    assert info.value.details == {"exports": ["Alpha list", "Weekly newsletter"]}
    with transaction(rt.sessions) as session:
        session.execute(sa.delete(ExportSegment))
    with transaction(rt.sessions) as session:
        service.delete(session=session, segment_id=segment_id, actor=user(rt, Role.ADMIN))
    with rt.sessions() as session, pytest.raises(NotFound):
        service.get(session=session, segment_id=segment_id)
    assert audit_actions(rt)[-1] == ("segment.delete", "Poles", "admin@example.com")


def test_refresh_stores_the_count_with_history(rt: Runtime) -> None:
    segment_id = create(rt, "Buyers", TYPICAL)
    for day in (0, 1):
        with transaction(rt.sessions) as session:
            result = service.refresh(
                session=session, source=rt.profiles, segment_id=segment_id, actor=user(rt, Role.ADMIN),
                now=NOW + timedelta(days=day),
            )  # fmt: skip
    assert result.ok
    assert result.member_count == 1
    with rt.sessions() as session:
        segment = service.get(session=session, segment_id=segment_id)
        assert (segment.member_count, segment.last_refresh_at) == (1, NOW + timedelta(days=1))
        assert segment.last_refresh_ms is not None
        assert segment.last_refresh_ms >= 0
        counts = [r.member_count for r in service.history(session=session, segment_id=segment_id)]
    assert counts == [1, 2]
    assert [a for a, _, _ in audit_actions(rt)].count("segment.refresh") == 2


def test_refresh_all_records_each_failure_and_counts_the_rest(rt: Runtime) -> None:
    good = create(rt, "Poles", POLES)
    with transaction(rt.sessions) as session:  # a rule saved before its column was dropped
        broken = Segment(name="Old", rules={"items": [{"column": "gone", "operator": "is_empty"}]})
        session.add(broken)
    with transaction(rt.sessions) as session:
        results = service.refresh_many(
            session=session, source=rt.profiles, segment_ids=None, actor=None, now=NOW
        )
    by_name = {r.segment_name: r for r in results}
    assert by_name["Poles"].member_count == 4
    assert by_name["Poles"].ok
    assert by_name["Old"].member_count is None
    assert by_name["Old"].error is not None
    assert "unknown column 'gone'" in by_name["Old"].error
    with rt.sessions() as session:
        old = session.get(Segment, broken.id)
        assert old is not None
        assert old.last_refresh_error == by_name["Old"].error
        errors = session.scalars(sa.select(SegmentRefresh.error).order_by(SegmentRefresh.segment_id)).all()
    assert errors == [None, by_name["Old"].error]
    assert good == by_name["Poles"].segment_id
    assert audit_actions(rt)[-1][0] == "segment.create"  # system refreshes are not audited


def test_refresh_without_a_profile_store_records_the_error(rt: Runtime) -> None:
    segment_id = create(rt, "Poles", POLES)
    store.embedded_path(rt.settings).unlink()
    with transaction(rt.sessions) as session:
        result = service.refresh(session=session, source=rt.profiles, segment_id=segment_id, actor=None)
        with pytest.raises(NotFound, match="no profile store"):
            service.record_refresh(session=session, source=rt.profiles, segment_id=segment_id)
    assert result.error is not None
    assert "there is no profile store" in result.error
    with rt.sessions() as session:
        assert len(service.history(session=session, segment_id=segment_id)) == 1


def test_record_refresh_is_what_runs_and_the_scheduler_call(rt: Runtime) -> None:
    segment_id = create(rt, "Poles", POLES)
    with transaction(rt.sessions) as session:
        out = service.record_refresh(
            session=session, source=rt.profiles, segment_id=segment_id, rules=parse(POLES)
        )
    assert out.member_count == 4
    assert out.ok


def test_preview_and_count(rt: Runtime) -> None:
    segment_id = create(rt, "Poles", POLES)
    with rt.sessions() as session:
        assert service.count(session=session, source=rt.profiles, segment_id=segment_id) == 4
        preview = service.preview(
            session=session, source=rt.profiles, segment_id=segment_id, columns=["email", "city"], limit=3
        )
        everything = service.preview(session=session, source=rt.profiles, segment_id=segment_id)
        with pytest.raises(Invalid, match="unknown profile column"):
            service.preview(session=session, source=rt.profiles, segment_id=segment_id, columns=["nope"])
        with pytest.raises(Invalid, match="limit"):
            service.preview(session=session, source=rt.profiles, segment_id=segment_id, limit=0)
    assert preview.segment_id == segment_id
    assert preview.columns == ["profile_id", "email", "city"]
    assert preview.rows == [
        {"profile_id": 1, "email": "a@x.pl", "city": "Warszawa"},
        {"profile_id": 3, "email": None, "city": None},
        {"profile_id": 9, "email": "x\\y@z.com", "city": "Łódź"},
    ]
    assert len(everything.rows) == 4
    assert len(everything.columns) == 9
    assert everything.model_dump(mode="json")["rows"][0]["signup_date"] == "2020-01-15"
