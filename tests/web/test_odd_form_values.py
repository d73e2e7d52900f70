"""Form fields that take ids or numbers refuse digits that are not ASCII ("²", "١") with the form
shown again and the error beside the field: never a 500."""

from __future__ import annotations

from .pages import field_error
from .test_pages import World, world  # noqa: F401  # the pages' world: users, profiles, the sandbox

ODD = ["²", "١", "𝟙"]


def test_odd_digits_in_the_export_form(world: World) -> None:  # noqa: F811
    pages = world.pages()
    connection, list_id = world.connection(), world.cm_list("L")
    for typed in ODD:
        pages.get("/exports/new")
        answer = pages.post(
            "/exports/new",
            [("name", "Odd"), ("connection_id", typed), ("list_id", "x"), ("email_column", "email"),
             ("segment_ids", typed)],
        )  # fmt: skip
        assert answer.status_code == 422, answer.text[:300]
        assert field_error(answer.text, "connection_id")
        pages.get("/exports/new")
        answer = pages.post(
            "/exports/new",
            [("name", "Odd"), ("connection_id", str(connection)), ("list_id", list_id),
             ("email_column", "email"), ("segment_ids", typed)],
        )  # fmt: skip
        assert answer.status_code == 422, answer.text[:300]


def test_odd_digits_in_the_schedule_form(world: World) -> None:  # noqa: F811
    pages = world.pages()
    for typed in ODD:  # "²" crashed int(); "١" and "𝟙" were read as Monday
        pages.get("/system/schedule")
        answer = pages.post(
            "/system/schedule",
            [("enabled", "1"), ("frequency", "weekly"), ("weekdays", typed), ("times", "06:00"),
             ("timezone", "UTC")],
        )  # fmt: skip
        assert answer.status_code == 422, answer.text[:300]
        assert field_error(answer.text, "weekdays")
