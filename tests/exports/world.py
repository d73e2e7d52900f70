"""A small world for the export, run and scheduling tests: users of every role, profiles in
DuckDB, segments, and a Campaign Monitor and a Constant Contact connection to the sandbox, each
with a list made through the platform's real API.

Used by ``tests/exports/conftest.py`` and ``tests/scheduling/conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from cryptography.fernet import Fernet

from people import Person, make_person
from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, TokenAuth
from segmentsync.db import transaction
from segmentsync.exports import service
from segmentsync.exports.schemas import ExportCreate
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.segments.models import Segment
from segmentsync.settings import Settings

__all__ = ["Person", "World", "make_person"]

COUNTRIES = ["PL", "LV", "RO", "FI"]
PROFILES = 40  # ten per country


def sandbox_settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    return Settings(
        data_dir=data_dir,
        secret_key=Fernet.generate_key().decode(),
        campaign_monitor_api_url=sandbox.campaign_monitor_api,
        campaign_monitor_oauth_url=sandbox.campaign_monitor_oauth,
        constant_contact_api_url=sandbox.constant_contact_api,
        constant_contact_oauth_url=sandbox.constant_contact_oauth,
        scheduler_interval_seconds=0.2,
    )


def write_profiles(settings: Settings, rows: int = PROFILES) -> None:
    """profile_id, email, first_name, last_name, city, age, country, consent."""
    path = settings.data_dir / "profiles.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        f"""
        CREATE OR REPLACE TABLE profiles AS
        SELECT i AS profile_id,
               'person' || i || '@example.com' AS email,
               'First' || i AS first_name,
               'Last' || i AS last_name,
               'City' || (i % 3) AS city,
               20 + i AS age,
               ['PL', 'LV', 'RO', 'FI'][1 + (i % 4)] AS country,
               CASE WHEN i % 2 = 0 THEN 'yes' ELSE 'no' END AS consent
        FROM range(1, {rows + 1}) t(i)
        """
    )
    con.close()


def make_segment(runtime: Runtime, name: str, rules: dict[str, Any]) -> int:
    with transaction(runtime.sessions) as session:
        segment = Segment(name=name, rules=rules)
        session.add(segment)
        session.flush()
        return segment.id


def country_rule(*countries: str) -> dict[str, Any]:
    return {"op": "and", "items": [{"column": "country", "operator": "in", "value": list(countries)}]}


@dataclass
class Platform:
    connection_id: int
    list_id: str
    list_name: str
    credentials: dict[str, Any]
    other_list_id: str = ""


@dataclass
class World:
    runtime: Runtime
    sandbox: Sandbox
    admin: Person
    contributor: Person
    viewer: Person
    cm: Platform  # shared with contributors
    cm_private: Platform  # administrators only (same client)
    cc: Platform  # shared with contributors
    segments: dict[str, int] = field(default_factory=dict)

    def form(self, **changes: Any) -> ExportCreate:
        """A valid Campaign Monitor export form, with ``changes``."""
        values: dict[str, Any] = {
            "name": "Newsletter PL",
            "connection_id": self.cm.connection_id,
            "list_id": self.cm.list_id,
            "email_column": "email",
            "segment_ids": [self.segments["PL"]],
        }
        values.update(changes)
        return ExportCreate.model_validate(values)

    def cc_form(self, **changes: Any) -> ExportCreate:
        values: dict[str, Any] = {
            "name": "Contacts LV",
            "connection_id": self.cc.connection_id,
            "list_id": self.cc.list_id,
            "email_column": "email",
            "segment_ids": [self.segments["LV"]],
        }
        values.update(changes)
        return ExportCreate.model_validate(values)

    def create(self, form: ExportCreate, person: Person | None = None) -> service.Saved:
        return service.create(
            runtime=self.runtime, data=form, actor=(person or self.admin).load(self.runtime)
        )


def faults(world: World, platform: str, **changes: Any) -> dict[str, Any]:
    """Set the platform's sandbox faults and limits (``POST /_sandbox/faults``); returns them."""
    if platform == "campaign_monitor":
        return world.sandbox.cm_faults(**changes)
    return world.sandbox.cc_faults(**changes)


# Both platforms' import paths (Campaign Monitor's …/import.json, Constant Contact's
# …/contacts_json_import), and not Constant Contact's activity polls.
IMPORTS = "import"


def outage_after(world: World, platform: str, *, imports: int, seconds: float = 600, **more: Any) -> None:
    """The platform answers no import for ``seconds`` once ``imports`` more imports went through
    (``more``: other faults, e.g. latency). The sandbox counts the imports itself, so the outage
    strikes mid-run however fast the run is or however late a test's watcher looks."""
    faults(
        world, platform, path_pattern=IMPORTS, outage_after_requests=imports, outage_seconds=seconds, **more
    )


def outage_over(world: World, platform: str) -> None:
    """The platform answers again (also ends an outage still waiting for its imports)."""
    faults(world, platform, outage_seconds=0)


def cm_list(sandbox: Sandbox, client: dict[str, Any], title: str) -> str:
    return sandbox.cm_create_list(client, title)


def cm_field(sandbox: Sandbox, client: dict[str, Any], list_id: str, name: str) -> str:
    return sandbox.cm_create_field(client, list_id, name)


def cc_list(sandbox: Sandbox, account: dict[str, Any], name: str) -> str:
    return sandbox.cc_create_list(account["access_token"], name)


def _connection(runtime: Runtime, admin: Person, data: ConnectionCreate) -> int:
    with transaction(runtime.sessions) as session:
        actor = session.get(User, admin.id)
        assert actor is not None
        return connections.create(session=session, runtime=runtime, data=data, actor=actor).id


def _cm(
    runtime: Runtime, sandbox: Sandbox, admin: Person, client: dict[str, Any], name: str, shared: bool
) -> Platform:
    list_id = cm_list(sandbox, client, f"{name} list")
    other = cm_list(sandbox, client, f"{name} other list")
    data = ConnectionCreate(
        type=ConnectionType.CAMPAIGN_MONITOR,
        name=name,
        consent=True,
        shared_with_contributors=shared,
        add_me_as_export_user=True,
        auth=ApiKeyAuth(api_key=client["ApiKey"], client_id=client["ClientID"]),
    )
    return Platform(_connection(runtime, admin, data), list_id, f"{name} list", client, other)


def _cc(runtime: Runtime, sandbox: Sandbox, admin: Person) -> Platform:
    account = sandbox.create_cc_account("Contacts Inc")
    list_id = cc_list(sandbox, account, "CC list")
    data = ConnectionCreate(
        type=ConnectionType.CONSTANT_CONTACT,
        name="CC Main",
        consent=True,
        shared_with_contributors=True,
        add_me_as_export_user=True,
        auth=TokenAuth(
            access_token=account["access_token"],
            refresh_token=account["refresh_token"],
            oauth_client_id=account["client_id"],
            oauth_client_secret=account["client_secret"],
        ),
    )
    return Platform(
        _connection(runtime, admin, data), list_id, "CC list", account, cc_list(sandbox, account, "CC other")
    )


def build_world(runtime: Runtime, sandbox: Sandbox) -> World:
    write_profiles(runtime.settings)
    admin = make_person(runtime, "ada@example.com", Role.ADMIN)
    client = sandbox.create_cm_client("Newsletters Ltd")
    world = World(
        runtime=runtime,
        sandbox=sandbox,
        admin=admin,
        contributor=make_person(runtime, "carl@example.com", Role.CONTRIBUTOR),
        viewer=make_person(runtime, "vera@example.com", Role.VIEWER),
        cm=_cm(runtime, sandbox, admin, client, "CM Shared", shared=True),
        cm_private=_cm(runtime, sandbox, admin, client, "CM Admins", shared=False),
        cc=_cc(runtime, sandbox, admin),
    )
    for country in COUNTRIES:
        world.segments[country] = make_segment(runtime, f"Country {country}", country_rule(country))
    world.segments["all"] = make_segment(runtime, "Everyone", country_rule(*COUNTRIES))
    return world
