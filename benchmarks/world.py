"""A benchmark data folder: profiles, metadata store, an admin, connections, lists and exports.

Everything is made through the product's own code (``profiles.generate``, the auth, connections
and exports services) and the platforms' real APIs on a running sandbox, like
``tests/exports/world.py`` but at benchmark scale. The export itself is then run by
``benchmarks.measure`` as the real product path, ``segmentsync exports run NAME --wait``, in a
separate process that gets :attr:`World.env`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import sqlalchemy as sa
from cryptography.fernet import Fernet

from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, TokenAuth
from segmentsync.db import create_engine, transaction
from segmentsync.exports import service as exports
from segmentsync.exports.schemas import ExportCreate
from segmentsync.profiles.generate import generate
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.segments.models import Segment
from segmentsync.settings import Settings

POSTGRES_SERVER = os.environ.get("SEGMENTSYNC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
EVERYONE = {"op": "and", "items": [{"column": "profile_id", "operator": "ge", "value": 0}]}
ADMIN_EMAIL = "bench-admin@example.com"
# What the exports send: a name made of two columns and one custom field, as a typical export does.
CM_ATTRIBUTES = [
    {"column": "first_name", "target": "Name"},
    {"column": "last_name", "target": "Name"},
    {"column": "city", "target": "[City]"},
]
CC_ATTRIBUTES = [
    {"column": "first_name", "target": "first_name"},
    {"column": "last_name", "target": "last_name"},
    {"column": "city", "target": "cf:city"},
]


@contextmanager
def metadata_store(kind: str, folder: Path) -> Iterator[str]:
    """A fresh metadata store URL: a SQLite file in ``folder``, or a PostgreSQL database of our own."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'segmentsync.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown store {kind!r}: sqlite or postgresql")
    name = f"segmentsync_bench_{os.getpid()}"
    admin = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Target:
    """One export and the platform list it fills."""

    export_id: int
    name: str
    list_id: str
    credentials: dict[str, Any]


@dataclass
class World:
    folder: Path
    settings: Settings
    runtime: Runtime
    sandbox: Sandbox
    admin_id: int
    segment_id: int

    @property
    def profiles_path(self) -> Path:
        return self.settings.data_dir / "profiles.duckdb"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a ``segmentsync`` process working on this data folder."""
        values = {
            "SEGMENTSYNC_DATA_DIR": str(self.settings.data_dir),
            "SEGMENTSYNC_DATABASE_URL": self.settings.resolved_database_url,
            "SEGMENTSYNC_SECRET_KEY": _secret(self.settings),
            "SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL": self.settings.campaign_monitor_api_url,
            "SEGMENTSYNC_CAMPAIGN_MONITOR_OAUTH_URL": self.settings.campaign_monitor_oauth_url,
            "SEGMENTSYNC_CONSTANT_CONTACT_API_URL": self.settings.constant_contact_api_url,
            "SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL": self.settings.constant_contact_oauth_url,
            "SEGMENTSYNC_LOG_LEVEL": "WARNING",
        }
        return {**os.environ, **values}

    def admin(self, session: sa.orm.Session) -> User:
        user = session.get(User, self.admin_id)
        assert user is not None
        return user

    def change_profiles(self, sql: str) -> None:
        """Change the profile table (the DuckDB file is closed again before any export opens it)."""
        con = duckdb.connect(str(self.profiles_path))
        try:
            con.execute(sql)
        finally:
            con.close()

    def close(self) -> None:
        self.runtime.close()


def _secret(settings: Settings) -> str:
    assert settings.secret_key is not None
    return settings.secret_key.get_secret_value()


def build(folder: Path, sandbox: Sandbox, *, rows: int, store_url: str) -> World:
    """Generate ``rows`` profiles and set up an admin and the "Everyone" segment."""
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=data_dir,
        database_url=store_url,
        secret_key=Fernet.generate_key().decode(),
        campaign_monitor_api_url=sandbox.campaign_monitor_api,
        campaign_monitor_oauth_url=sandbox.campaign_monitor_oauth,
        constant_contact_api_url=sandbox.constant_contact_api,
        constant_contact_oauth_url=sandbox.constant_contact_oauth,
    )
    generate(data_dir / "profiles.duckdb", rows=rows, seed=1)
    runtime = Runtime.open(settings)
    with transaction(runtime.sessions) as session:
        admin = auth_service.create_user(session=session, email=ADMIN_EMAIL, role=Role.ADMIN, actor=None)
        segment = Segment(name="Everyone", rules=EVERYONE)
        session.add(segment)
        session.flush()
        admin_id, segment_id = admin.id, segment.id
    return World(folder, settings, runtime, sandbox, admin_id, segment_id)


def _connection(world: World, data: ConnectionCreate) -> int:
    with transaction(world.runtime.sessions) as session:
        return connections.create(
            session=session, runtime=world.runtime, data=data, actor=world.admin(session)
        ).id


def _export(world: World, form: dict[str, Any]) -> int:
    with world.runtime.sessions() as session:
        actor = world.admin(session)
    data = ExportCreate.model_validate({"email_column": "email", "segment_ids": [world.segment_id], **form})
    return exports.create(runtime=world.runtime, data=data, actor=actor).export_id


def cm_list(sandbox: Sandbox, client: dict[str, Any], title: str) -> str:
    return sandbox.cm_create_list(client, title)


def cm_field(sandbox: Sandbox, client: dict[str, Any], list_id: str, name: str) -> None:
    sandbox.cm_create_field(client, list_id, name)


def plain_list(world: World, client: dict[str, Any], title: str) -> str:
    """A list with the same City field as the exports' lists, for the loops we compare with."""
    list_id = cm_list(world.sandbox, client, title)
    cm_field(world.sandbox, client, list_id, "City")
    return list_id


def cm_connection(world: World, name: str = "CM bench") -> tuple[int, dict[str, Any]]:
    client = world.sandbox.create_cm_client(f"{name} client")
    data = ConnectionCreate(
        type=ConnectionType.CAMPAIGN_MONITOR,
        name=name,
        consent=True,
        add_me_as_export_user=True,
        auth=ApiKeyAuth(api_key=client["ApiKey"], client_id=client["ClientID"]),
    )
    return _connection(world, data), client


def cm_export(world: World, connection: tuple[int, dict[str, Any]], name: str) -> Target:
    """A Campaign Monitor export of everyone to a new list (its City field created by the export)."""
    connection_id, client = connection
    list_id = cm_list(world.sandbox, client, f"{name} list")
    form = {
        "name": name,
        "connection_id": connection_id,
        "list_id": list_id,
        "attributes": CM_ATTRIBUTES,
        "create_missing_fields": True,
    }
    return Target(_export(world, form), name, list_id, client)


def cc_export(world: World, name: str) -> Target:
    """A Constant Contact export of everyone to a new list (with a custom field ``city``)."""
    account = world.sandbox.create_cc_account(f"{name} account")
    api = httpx.Client(
        base_url=world.sandbox.constant_contact_api,
        headers={"Authorization": f"Bearer {account['access_token']}"},
        timeout=30,
    )
    with api:
        created = api.post("/contact_lists", json={"name": f"{name} list"})
        created.raise_for_status()
        api.post("/contact_custom_fields", json={"label": "city", "type": "string"}).raise_for_status()
    data = ConnectionCreate(
        type=ConnectionType.CONSTANT_CONTACT,
        name=f"{name} connection",
        consent=True,
        add_me_as_export_user=True,
        auth=TokenAuth(
            access_token=account["access_token"],
            refresh_token=account["refresh_token"],
            oauth_client_id=account["client_id"],
            oauth_client_secret=account["client_secret"],
        ),
    )
    list_id: str = created.json()["list_id"]
    form = {
        "name": name,
        "connection_id": _connection(world, data),
        "list_id": list_id,
        "attributes": CC_ATTRIBUTES,
    }
    return Target(_export(world, form), name, list_id, account)
