"""The segments list, a page at a time, on SQLite and PostgreSQL: every segment once, in name
order, across the pages; the pager; the actions only for those who may edit; a rule shown in
words as it is now, after a change (the words are kept per segment until it changes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role, User
from segmentsync.db import transaction
from segmentsync.profiles.load import load_file
from segmentsync.runtime import Runtime
from segmentsync.segments import service as segments
from segmentsync.segments.rules import Group
from segmentsync.segments.schemas import SegmentCreate, SegmentUpdate
from segmentsync.web.views import segments as segments_view

from .conftest import PASSWORD, _write_profiles
from .pages import Pages

ADMIN, VIEWER = "ada@example.com", "vera@example.com"
NAMES = [f"Segment {n:02d}" for n in (5, 0, 6, 3, 1, 4, 2)]  # made out of order


def _rule(orders: int) -> Group:
    return Group.model_validate({"items": [{"column": "orders", "operator": "ge", "value": orders}]})


@pytest.fixture
def people(runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    profiles = tmp_path / "profiles.csv"
    _write_profiles(profiles)
    load_file(runtime.settings.data_dir / "profiles.duckdb", profiles)
    with transaction(runtime.sessions) as session:
        for email, role in ((ADMIN, Role.ADMIN), (VIEWER, Role.VIEWER)):
            auth_service.create_user(session=session, email=email, role=role, password=PASSWORD, actor=None)
        admin = session.scalar(sa.select(User).where(User.email == ADMIN))
        assert admin is not None
        return {
            name: segments.create(session=session, source=runtime.profiles, actor=admin,
                                  segment_in=SegmentCreate(name=name, rules=_rule(n))).id
            for n, name in enumerate(NAMES)
        }  # fmt: skip


def _pages(runtime: Runtime, email: str) -> Pages:
    pages = Pages(runtime)
    assert pages.sign_in(email, PASSWORD).status_code == 303
    return pages


def _listed(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<td><a href="/segments/(\d+)">', html)]


def test_every_segment_once_in_name_order_a_page_at_a_time(
    runtime: Runtime, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments_view, "PER_PAGE", 3)
    admin, viewer = _pages(runtime, ADMIN), _pages(runtime, VIEWER)
    seen: list[int] = []
    for offset, shown in ((0, "1–3 of 7"), (3, "4–6 of 7"), (6, "7–7 of 7")):
        page = admin.get("/segments", offset=offset)
        assert page.status_code == 200
        assert shown in page.text
        found = _listed(page.text)
        assert len(found) == min(3, 7 - offset)
        assert len(re.findall(r'action="/segments/\d+/refresh"', page.text)) == len(found)  # may edit
        seen += found
        read_only = viewer.get("/segments", offset=offset)
        assert _listed(read_only.text) == found
        assert 'action="/segments/' not in read_only.text
        assert "/segments/new" not in read_only.text
    assert seen == [people[name] for name in sorted(NAMES)]
    assert _listed(admin.get("/segments", offset=7).text) == []  # past the end: none
    assert _listed(admin.get("/segments", offset=-5).text) == seen[:3]  # a negative offset: the first page


def test_a_rule_changed_is_shown_as_it_is_now(runtime: Runtime, people: dict[str, int]) -> None:
    admin = _pages(runtime, ADMIN)
    assert "<code>orders ≥ 4</code>" in admin.get("/segments").text
    with transaction(runtime.sessions) as session:
        actor = session.scalar(sa.select(User).where(User.email == ADMIN))
        assert actor is not None
        segments.update(session=session, source=runtime.profiles, segment_id=people[NAMES[4]],
                        segment_in=SegmentUpdate(rules=_rule(40)), actor=actor)  # fmt: skip
    listed = admin.get("/segments").text
    assert "<code>orders ≥ 40</code>" in listed
    assert "<code>orders ≥ 4</code>" not in listed
