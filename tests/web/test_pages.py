"""The pages without a browser, on SQLite and PostgreSQL: forms, errors beside their fields, the
actions on connections, segments, exports and runs, the schedule and users."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate
from segmentsync.db import transaction
from segmentsync.exports import runs
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.profiles.load import load_file
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox

from .conftest import PASSWORD, _write_profiles
from .pages import Pages, field_error

ADMIN, CONTRIBUTOR, VIEWER = "ada@example.com", "carl@example.com", "vera@example.com"


@dataclass
class World:
    runtime: Runtime
    sandbox: Sandbox
    cm: dict[str, str]

    def pages(self, email: str | None = ADMIN, *, language: str = "en") -> Pages:
        pages = Pages(self.runtime, language=language)
        if email is not None:
            assert pages.sign_in(email, PASSWORD).status_code == 303
        return pages

    def admin(self) -> User:
        with self.runtime.sessions() as session:
            found = session.scalar(sa.select(User).where(User.email == ADMIN))
            assert found is not None
            return found

    def connection(self, name: str = "Newsletter", *, shared: bool = False) -> int:
        data = ConnectionCreate(
            type=ConnectionType.CAMPAIGN_MONITOR, name=name, consent=True, shared_with_contributors=shared,
            auth=ApiKeyAuth(api_key=self.cm["ApiKey"], client_id=self.cm["ClientID"]),
        )  # fmt: skip
        with transaction(self.runtime.sessions) as session:
            return connections.create(session=session, runtime=self.runtime, data=data, actor=self.admin()).id

    def cm_list(self, title: str) -> str:
        return self.sandbox.cm_create_list(self.cm, title)


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox, tmp_path: Path) -> World:
    settings = runtime.settings
    settings.campaign_monitor_api_url = sandbox.campaign_monitor_api
    settings.campaign_monitor_oauth_url = sandbox.campaign_monitor_oauth
    settings.constant_contact_api_url = sandbox.constant_contact_api
    settings.constant_contact_oauth_url = sandbox.constant_contact_oauth
    profiles = tmp_path / "profiles.csv"
    _write_profiles(profiles)
    load_file(settings.data_dir / "profiles.duckdb", profiles)
    with transaction(runtime.sessions) as session:
        for email, role in ((ADMIN, Role.ADMIN), (CONTRIBUTOR, Role.CONTRIBUTOR), (VIEWER, Role.VIEWER)):
            auth_service.create_user(session=session, email=email, role=role, password=PASSWORD, actor=None)
    return World(runtime, sandbox, sandbox.create_cm_client("Acme"))


# ---------------------------------------------------------------- signing in


def test_sign_in_checks_the_form_token_and_the_password(world: World) -> None:
    pages = world.pages(None)
    assert pages.get("/segments").headers["location"] == "/sign-in?next=%2Fsegments"
    pages.get("/sign-in")
    refused = pages.post("/sign-in", {"email": ADMIN, "password": PASSWORD}, csrf=False)
    assert refused.status_code == 403
    assert "security token" in refused.text
    wrong = pages.post("/sign-in", {"email": ADMIN, "password": "not the password", "next": "/segments"})
    assert wrong.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert f'value="{ADMIN}"' in wrong.text  # the email is kept
    signed_in = pages.post("/sign-in", {"email": ADMIN, "password": PASSWORD, "next": "//evil.example/x"})
    assert signed_in.headers["location"] == "/exports"  # never an open redirect
    assert pages.get("/exports").status_code == 200
    assert pages.post("/sign-out", {}).headers["location"] == "/sign-in"
    assert pages.get("/exports").status_code == 303


def test_unknown_pages_answer_with_pages_and_the_api_with_json(world: World) -> None:
    pages = world.pages()
    missing = pages.get("/exports/999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert pages.get("/exports/not-a-number").status_code == 404
    assert pages.get("/api/v1/exports/999").json()["error"]["code"] == "not_found"


# ---------------------------------------------------------------- connections


def test_wizard_shows_each_error_beside_its_field_and_keeps_the_input(world: World) -> None:
    pages = world.pages()
    pages.get("/connections/new")
    form = {"type": "campaign_monitor", "name": "Shop", "shared": "contributors"}
    no_consent = pages.post("/connections/new", {**form, "step": "connect"})
    assert no_consent.status_code == 422
    assert "I agree" in field_error(no_consent.text, "consent")
    assert 'value="Shop"' in no_consent.text
    connected = pages.post("/connections/new", {**form, "consent": "1", "step": "connect"})
    assert "Authenticate with Campaign Monitor" in connected.text
    bad_key = pages.post(
        "/connections/new",
        {**form, "consent": "1", "step": "save", "api_key": "wrong", "client_id": world.cm["ClientID"]},
    )
    assert bad_key.status_code == 400
    assert "not accepted" in field_error(bad_key.text, "api_key")
    assert "wrong" not in bad_key.text.split("csrf_token")[-1]  # the secret is never shown back
    saved = pages.post(
        "/connections/new",
        {**form, "consent": "1", "step": "save", "api_key": world.cm["ApiKey"], "client_id": world.cm["ClientID"],
         "add_me": "1"},
    )  # fmt: skip
    assert saved.headers["location"] == "/connections"
    listing = pages.get("/connections").text
    assert "Shop" in listing
    assert "Administrators and contributors" in listing
    admin_id = world.admin().id
    with world.runtime.sessions() as session:
        connection = session.scalar(sa.select(Connection).where(Connection.name == "Shop"))
        assert connection is not None
        assert connection.export_user_id == admin_id
    taken = pages.post("/connections/new", {**form, "consent": "1", "step": "connect"})
    assert "already taken" in field_error(taken.text, "name")


def test_remove_is_refused_while_exports_use_the_connection_which_can_be_detached(world: World) -> None:
    connection_id = world.connection()
    with transaction(world.runtime.sessions) as session:
        session.add(
            Export(name="Weekly", connection_id=connection_id, list_id="a" * 32, email_column="email")
        )
    pages = world.pages()
    page = pages.get(f"/connections/{connection_id}").text
    assert world.cm["ClientID"] in page
    assert world.cm["ApiKey"] not in page  # secrets are write-only
    assert 'data-testid="remove-refused"' in page  # said before anyone asks (no pointless confirm)
    assert 'data-testid="remove-connection"' not in page
    refused = pages.post(f"/connections/{connection_id}/remove", {})
    assert refused.status_code == 409
    assert "Weekly" in refused.text
    assert 'data-testid="detach-all"' in refused.text
    assert pages.post(f"/connections/{connection_id}/detach", {}).status_code == 303
    assert "No export uses this connection." in pages.get(f"/connections/{connection_id}").text
    assert pages.post(f"/connections/{connection_id}/remove", {}).headers["location"] == "/connections"
    assert "No connections yet" in pages.get("/connections").text
    assert "No connection" in pages.get("/exports").text  # the export is kept, detached


def test_renaming_to_a_taken_name_says_so_beside_the_name(world: World) -> None:
    first, _ = world.connection("First"), world.connection("Second")
    pages = world.pages()
    pages.get(f"/connections/{first}")
    answer = pages.post(f"/connections/{first}", {"name": "Second", "shared": "admins"})
    assert answer.status_code == 409
    assert "already taken" in field_error(answer.text, "name")
    renamed = pages.post(f"/connections/{first}", {"name": "Renamed", "shared": "contributors"})
    assert renamed.status_code == 303
    assert "Administrators and contributors" in pages.get("/connections").text


# ---------------------------------------------------------------- segments and exports


def test_a_rule_on_an_unknown_column_is_shown_at_its_condition(world: World) -> None:
    pages = world.pages()
    pages.get("/segments/new")
    rules = '{"op": "and", "items": [{"column": "contry", "operator": "eq", "value": "PL"}]}'
    answer = pages.post("/segments/new", {"name": "Typo", "rules": rules, "action": "save"})
    assert answer.status_code == 422
    assert "did you mean 'country'" in field_error(answer.text, "rules")
    assert 'data-error-path="rules.items[0].column"' in answer.text
    assert 'value="Typo"' in answer.text
    preview = pages.post(
        "/segments/new", {"name": "PL", "rules": rules.replace("contry", "country"), "action": "preview"}
    )
    assert "customer05@example.com" in preview.text
    assert "members" in preview.text


def _segment(pages: Pages) -> int:
    rules = '{"op": "and", "items": [{"column": "country", "operator": "eq", "value": "PL"}]}'
    saved = pages.post("/segments/new", {"name": "Poland", "rules": rules, "action": "save"})
    return int(saved.headers["location"].rsplit("/", 1)[1])


def test_the_export_form_from_errors_to_saved_and_the_actions_on_it(world: World) -> None:
    connection_id = world.connection()
    pages = world.pages()
    pages.get("/segments/new")
    segment_id = _segment(pages)
    form = {"name": "Poland weekly", "connection_id": connection_id, "list_id": "nope", "email_column": "email",
            "attr_column": "first_name", "attr_target": "Name", "schedule_mode": "system"}  # fmt: skip
    pages.get("/exports/new")
    no_segment = pages.post("/exports/new", form)
    assert field_error(no_segment.text, "segment_ids") == "Choose at least one segment."
    bad_list = pages.post("/exports/new", {**form, "segment_ids": segment_id})
    assert "not a Campaign Monitor list ID" in field_error(bad_list.text, "list_id")
    assert 'value="Poland weekly"' in bad_list.text
    list_id = world.cm_list("Poland")
    saved = pages.post("/exports/new", {**form, "segment_ids": segment_id, "list_id": list_id})
    assert saved.status_code == 303, saved.text
    export_id = int(saved.headers["location"].rsplit("/", 1)[1])
    page = pages.get(f"/exports/{export_id}").text
    assert "Saving never runs it" in page
    assert "Not run yet" in page
    with world.runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0  # saving never runs

    dry = pages.post(f"/exports/{export_id}/run", {"dry_run": "1"})
    run_id = int(dry.headers["location"].rsplit("/", 1)[1])
    again = pages.post(f"/exports/{export_id}/run", {"next": "/exports"})
    assert again.headers["location"] == "/exports"
    assert "already has an active run" in pages.get("/exports").text
    listing = pages.get("/exports", q="poland", sort="-last_run").text
    assert "Poland weekly" in listing
    assert "Queued" in listing
    assert pages.post(f"/runs/{run_id}/cancel", {}).status_code == 303

    copy = pages.post(f"/exports/{export_id}/duplicate", {})
    assert copy.headers["location"] == f"/exports/new?copy_of={export_id}"
    assert "Copy of Poland weekly" not in pages.get("/exports").text  # nothing before Save
    form_of_copy = pages.get(copy.headers["location"]).text
    assert 'value="Copy of Poland weekly"' in form_of_copy
    assert f'value="{list_id}"' in form_of_copy
    assert pages.post("/exports/new", {**form, "name": "Copy of Poland weekly", "segment_ids": segment_id,
                                       "list_id": list_id}).status_code == 303  # fmt: skip
    assert "Copy of Poland weekly" in pages.get("/exports").text
    assert "Poland weekly" in pages.get("/exports", q=list_id).text  # the search matches list IDs
    assert pages.post(f"/exports/{export_id}/detach", {}).status_code == 303
    assert "No connection: this export is inactive" in pages.get(f"/exports/{export_id}").text
    assert pages.post(f"/exports/{export_id}/remove", {}).headers["location"] == "/exports"
    assert f'href="/exports/{export_id}"' not in pages.get("/exports").text
    assert f"/runs/{run_id}" in pages.get("/system/status").text  # the history is kept


def test_a_run_stopped_by_the_mirror_guard_waits_for_confirmation(world: World) -> None:
    connection_id = world.connection(shared=True)
    with transaction(world.runtime.sessions) as session:
        export = Export(name="Mirror", connection_id=connection_id, list_id="a" * 32, email_column="email")
        session.add(export)
        session.flush()
        run = runs.start_run(session=session, export=export, actor=None)
        run.status, run.plan, run.error = (
            RunStatus.AWAITING_CONFIRMATION,
            {"remove": 30},
            "would remove 30 of 40",
        )
        run_id = run.id
    viewer = world.pages(VIEWER)
    page = viewer.get(f"/runs/{run_id}").text
    assert "Awaiting confirmation" in page
    assert page.count('data-testid="mirror-guard"') == 1
    assert '<li data-phase="send" class="phase-waiting"' in page  # where it stopped, not all done
    assert "would remove 30 of 40" not in page.lower()  # the guard's card says it once, in words
    assert 'data-testid="confirm-removals"' not in page  # viewers only look
    contributor = world.pages(CONTRIBUTOR)
    assert 'data-testid="confirm-removals"' in contributor.get(f"/runs/{run_id}").text
    assert contributor.post(f"/runs/{run_id}/confirm-removals", {}).status_code == 303
    live = contributor.get(f"/runs/{run_id}/live").json()
    assert live["status"] == "queued"
    assert live["active"] is True
    csv = contributor.get(f"/runs/{run_id}/rows.csv")
    assert csv.text.splitlines()[0] == "email,profile_key,action,outcome,code,message"


# ---------------------------------------------------------------- system and users


def test_the_schedule_form(world: World) -> None:
    pages = world.pages()
    pages.get("/system/schedule")
    form: list[tuple[str, str]] = [
        ("enabled", "1"),
        ("frequency", "weekly"),
        ("times", "06:00"),
        ("timezone", "Europe/Warsaw"),
    ]
    no_days = pages.post("/system/schedule", form)
    assert "weekday" in field_error(no_days.text, "weekdays")
    assert pages.post("/system/schedule", [*form, ("weekdays", "0"), ("weekdays", "4")]).status_code == 303
    page = pages.get("/system/schedule").text
    assert "Next refreshes" in page
    assert re.search(r'value="4" checked', page)
    read_only = world.pages(VIEWER).get("/system/schedule").text
    assert 'data-testid="schedule-read-only"' in read_only
    assert "Europe/Warsaw" in read_only
    assert 'name="timezone"' not in read_only  # nothing that looks editable


def test_admins_manage_users_and_the_last_admin_stays(world: World) -> None:
    pages = world.pages()
    pages.get("/users")
    created = pages.post("/users", {"email": "new@example.com", "role": "contributor", "name": "New"})
    assert 'data-testid="generated-password"' in created.text
    password = re.search(r"<code>([^<]+)</code>", created.text.split("generated-password")[1])
    assert password is not None
    assert Pages(world.runtime).sign_in("new@example.com", password.group(1)).status_code == 303
    admin_id = world.admin().id
    pages.get(f"/users/{admin_id}")
    demoted = pages.post(f"/users/{admin_id}", {"role": "viewer", "is_active": "1", "name": ""})
    assert demoted.status_code == 409
    assert "last active administrator" in demoted.text
    assert world.pages(CONTRIBUTOR).get("/users").status_code == 403


def test_polish_pages_for_a_polish_browser(world: World) -> None:
    pages = world.pages(language="pl-PL,pl;q=0.9")
    page = pages.get("/connections/new").text
    assert '<html lang="pl">' in page
    assert "Dodaj połączenie" in page
    assert "Wyświetlana nazwa" in page
    answer = pages.post("/connections/new", {"type": "campaign_monitor", "name": "X", "step": "connect"})
    assert "Zgadzam się" in field_error(answer.text, "consent")
