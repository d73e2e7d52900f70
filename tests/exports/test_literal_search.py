"""Every search is literal: ``%`` and ``_`` find themselves, not every name (security review, class 5)."""

from __future__ import annotations

from segmentsync.exports import views

from .world import World


def names(world: World, search: str) -> list[str]:
    user = world.admin.load(world.runtime)
    with world.runtime.sessions() as session:
        return [e.name for e in session.scalars(views.export_query(actor=user, search=search))]


def test_percent_underscore_and_backslash_in_an_export_search_match_only_themselves(world: World) -> None:
    for name in ("100% sure", "a_b list", "back\\slash", "plain"):
        world.create(world.form(name=name))
    assert names(world, "%") == ["100% sure"]
    assert names(world, "_") == ["a_b list"]
    assert names(world, "\\") == ["back\\slash"]
    assert names(world, "0%") == ["100% sure"]
    assert names(world, "A_B") == ["a_b list"]  # still case-insensitive
    assert names(world, "pla") == ["plain"]
