"""Property-based: arbitrary JSON bodies and form values, odd numbers and odd digits included,
to every API endpoint and every page, as a signed-in admin (who may reach every route): no
answer is a 5xx.

Unlike the schemathesis suite (requests shaped like the OpenAPI document), these bodies ignore
the schema: NaN, Infinity, 1e400, "²", huge integers, nested lists where text is expected. A few
derandomized examples per route keep it to seconds.
"""

from __future__ import annotations

import json
import re
from typing import Any

import hypothesis
import stamina
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from exports.world import World
from segmentsync.api.app import create_app
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role, User
from segmentsync.db import transaction
from segmentsync.web.templating import TEMPLATES_DIR
from web.pages import Pages

from .scenario import ON_SQLITE, make_export

EXAMPLES = 4  # per route: ≈ 60 API operations and ≈ 60 pages
PASSWORD = "correct horse battery"
ODD_TEXT = [
    "²",
    "١",
    "𝟙",
    "NaN",
    "Infinity",
    "1e400",
    "-1",
    "0",
    "1",
    "99999999999999999999",
    "%",
    "_",
    "\x00",
]
ODD_NUMBERS = st.sampled_from([float("nan"), float("inf"), float("-inf"), 2**64, -(2**63) - 1, 1e308, -0.0])
TEXT = st.text(max_size=12) | st.sampled_from(ODD_TEXT)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ODD_NUMBERS | TEXT
# Tried first on every route: the odd values in the places where they used to hurt.
ODD_BODY = {
    "rules": {"op": "and", "items": [{"column": "age", "operator": "gt", "value": float("nan")}]},
    "name": "²", "segment_ids": ["²"], "connection_id": 1e400, "limit": float("inf"),
}  # fmt: skip
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


def json_values(names: list[str]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(names) | st.text(max_size=8)
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=10,
    )


def body_field_names(client: TestClient) -> list[str]:
    """Every property name of every schema of the API: the bodies hit real fields, not only noise."""
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    return sorted({name for schema in schemas.values() for name in schema.get("properties", {})})


def form_field_names() -> list[str]:
    names = set()
    for template in TEMPLATES_DIR.glob("*.html"):
        names.update(re.findall(r'name="([a-z_]+)"', template.read_text(encoding="utf-8")))
    return sorted(names - {"csrf_token"})


def routes(client: TestClient, *, api: bool) -> list[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        path = route.path or ""
        if not route.methods or path.startswith("/api/v1") is not api or path.startswith("/static"):
            continue
        found |= {(method, path) for method in route.methods - {"HEAD", "OPTIONS"}}
    return sorted(found)


def fill(path: str, ids: list[str]) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: ids.pop(0) if ids else "1", path)


def admin_password(world: World) -> str:
    """Give the admin a password; returns its hash, which :func:`repair_admin` puts back."""
    with transaction(world.runtime.sessions) as session:
        user = session.get(User, world.admin.id)
        assert user is not None
        user.password_hash = auth_service.hash_password(PASSWORD)
        return user.password_hash


def repair_admin(world: World, password_hash: str) -> None:
    """Undo what the fuzzing did to the admin (deactivated, demoted, password or token changed)."""
    with transaction(world.runtime.sessions) as session:
        user = session.get(User, world.admin.id)
        assert user is not None
        user.is_active, user.role, user.password_hash = True, Role.ADMIN, password_hash
        now = world.runtime.clock()
        if auth_service.user_for_api_token(session=session, token=world.admin.token, now=now) is None:
            _, world.admin.token = auth_service.create_api_token(
                session=session, user=user, name="fuzz", actor=None, now=now
            )


def api_property(client: TestClient, method: str, path: str, bodies: st.SearchStrategy[Any],
                 path_ids: st.SearchStrategy[list[str]], queries: st.SearchStrategy[dict[str, str]],
                 auth: dict[str, str]) -> Any:  # fmt: skip
    @SETTINGS
    @hypothesis.given(body=bodies, ids=path_ids, query=queries)
    @hypothesis.example(body=ODD_BODY, ids=["1"], query={})
    def send(body: Any, ids: list[str], query: dict[str, str]) -> None:
        url = fill(path, list(ids))
        content = json.dumps(body, allow_nan=True)  # NaN and Infinity as Python writes them
        headers = {**auth, "Content-Type": "application/json"}
        answer = client.request(method, url, content=content, params=query, headers=headers)
        assert answer.status_code < 500, f"{method} {url} {content[:200]}: {answer.text[:300]}"

    return send


def page_property(pages: Pages, method: str, path: str, forms: st.SearchStrategy[dict[str, list[str]]],
                  path_ids: st.SearchStrategy[list[str]]) -> Any:  # fmt: skip
    @SETTINGS
    @hypothesis.given(form=forms, ids=path_ids)
    @hypothesis.example(form={name: ["²"] for name in form_field_names()}, ids=["1"])
    def send(form: dict[str, list[str]], ids: list[str]) -> None:
        url = fill(path, list(ids))
        if method == "GET":
            answer = pages.client.get(url, params={k: v[:1] for k, v in form.items()}, follow_redirects=False)
        else:
            answer = pages.post(url, [(key, value) for key, values in form.items() for value in values])
        assert answer.status_code < 500, f"{method} {url} {form}: {answer.text[:300]}"

    return send


@ON_SQLITE  # once: the store does not change which inputs are refused
def test_arbitrary_json_to_every_endpoint_never_gets_a_5xx(world: World) -> None:
    make_export(world, "campaign_monitor", segment_ids=[world.segments["PL"]])
    password_hash = admin_password(world)
    client = TestClient(create_app(world.runtime), raise_server_exceptions=False)
    operations = routes(client, api=True)
    assert len(operations) >= 50
    bodies = json_values(body_field_names(client))
    path_ids = st.lists(st.sampled_from(["1", "2", *ODD_TEXT[:4], "99999999999999999999", "x"]), max_size=3)
    queries = st.dictionaries(
        st.sampled_from(["q", "limit", "offset", "sort", "status", "email"]), TEXT, max_size=3
    )
    failures: list[str] = []
    stamina.set_testing(True)  # platform retries without their back-off sleeps
    try:
        for method, path in operations:
            repair_admin(world, password_hash)

            send = api_property(client, method, path, bodies, path_ids, queries, world.admin.auth)
            try:
                send()
            except AssertionError as failure:
                failures.append(str(failure).splitlines()[0])
    finally:
        stamina.set_testing(False)
    assert not failures, "\n".join(failures)


@ON_SQLITE
def test_arbitrary_form_values_to_every_page_never_get_a_5xx(world: World) -> None:
    make_export(world, "campaign_monitor", segment_ids=[world.segments["PL"]])
    password_hash = admin_password(world)
    pages = Pages(world.runtime)
    pages.client = TestClient(pages.client.app, raise_server_exceptions=False)
    operations = routes(pages.client, api=False)
    assert len(operations) >= 40
    names = form_field_names()
    forms = st.dictionaries(
        st.sampled_from(names) | st.text(max_size=8), st.lists(TEXT, max_size=3), max_size=6
    )
    path_ids = st.lists(st.sampled_from(["1", "2", *ODD_TEXT[:4], "x"]), max_size=3)
    failures: list[str] = []
    stamina.set_testing(True)
    try:
        for method, path in operations:
            repair_admin(world, password_hash)
            if pages.client.get("/api/v1/me").status_code != 200:
                assert pages.sign_in(world.admin.email, PASSWORD).status_code == 303
                assert pages.get("/account").status_code == 200  # the signed-in session's CSRF token

            send = page_property(pages, method, path, forms, path_ids)
            try:
                send()
            except AssertionError as failure:
                failures.append(str(failure).splitlines()[0])
    finally:
        stamina.set_testing(False)
    assert not failures, "\n".join(failures)
