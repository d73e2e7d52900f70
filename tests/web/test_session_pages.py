"""The account page lists your signed-in browsers and signs them out (one, or everywhere); an
admin's user page does the same for anyone."""

from __future__ import annotations

import re

from .test_pages import CONTRIBUTOR, World, world  # noqa: F401  # the pages' world

SESSION_ROW = re.compile(r'action="(/(?:account|users/\d+)/sessions/(\d+))/end"')


def test_you_sign_a_browser_out_and_then_every_browser(world: World) -> None:  # noqa: F811
    laptop, phone = world.pages(), world.pages()
    account = laptop.get("/account").text
    assert len(SESSION_ROW.findall(account)) == 2
    assert "This browser" in account
    listed = laptop.client.get("/api/v1/me/sessions").json()["items"]
    other = [f"/account/sessions/{row['id']}" for row in listed if not row["current"]]
    assert laptop.post(f"{other[0]}/end", {}).status_code == 303
    assert phone.get("/account").status_code in (302, 303, 401)  # the phone is signed out
    assert laptop.get("/account").status_code == 200
    assert laptop.post("/account/sessions/end-all", {}).headers["location"] == "/sign-in"
    assert laptop.get("/account").status_code in (302, 303, 401)


def test_an_admin_signs_out_every_browser_of_a_user(world: World) -> None:  # noqa: F811
    carl, admin = world.pages(CONTRIBUTOR), world.pages()
    user_id = next(
        int(found) for found in re.findall(r'href="/users/(\d+)"', admin.get("/users").text)
        if CONTRIBUTOR in admin.get(f"/users/{found}").text
    )  # fmt: skip
    page = admin.get(f"/users/{user_id}").text
    assert len(SESSION_ROW.findall(page)) == 1
    answer = admin.post(f"/users/{user_id}/sessions/end-all", {})
    assert answer.status_code == 303
    assert carl.get("/account").status_code in (302, 303, 401)
    assert admin.get("/account").status_code == 200
