"""``segmentsync quickstart``: the whole product on one machine, against the sandbox.

Creates the data dir, 100,000 sample profiles, three segments, an admin (password printed once),
a Campaign Monitor and a Constant Contact connection to the sandbox, and two exports; then serves
the web UI with a scheduler and a worker. Running it again reuses what exists. The sandbox keeps
nothing between runs, so its demo client, account and lists are made anew each time and the demo
connections and exports are pointed at them (the exports then send everyone again).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
import typer
from pydantic import SecretStr
from sqlalchemy.orm import Session

from segmentsync.auth import service as users
from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, ConnectionUpdate, TokenAuth
from segmentsync.db import transaction
from segmentsync.errors import SegmentSyncError
from segmentsync.exports import service as exports
from segmentsync.exports.models import Export
from segmentsync.exports.schemas import ExportCreate, ExportUpdate
from segmentsync.profiles import store
from segmentsync.profiles.generate import generate
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.scheduling.cli import serve_runtime
from segmentsync.segments import service as segments
from segmentsync.segments.models import Segment
from segmentsync.segments.schemas import SegmentCreate
from segmentsync.settings import Settings, get_settings
from segmentsync.terminal import out

app = typer.Typer()
ADMIN_EMAIL = "admin@example.com"
CM_NAME = "Campaign Monitor (sandbox)"
CC_NAME = "Constant Contact (sandbox)"

SEGMENTS: dict[str, dict[str, Any]] = {
    "Poland, bought in the last 90 days": {
        "op": "and",
        "items": [
            {"column": "country", "operator": "eq", "value": "PL"},
            {"column": "last_purchase_at", "operator": "in_last_days", "value": 90},
        ],
    },
    "Latvia": {"op": "and", "items": [{"column": "country", "operator": "eq", "value": "LV"}]},
    "Big spenders": {"op": "and", "items": [{"column": "total_spend", "operator": "gt", "value": 500}]},
}


@dataclass
class Demo:
    admin_password: str | None
    exports: list[str]


@app.command()
def quickstart(
    rows: Annotated[int, typer.Option(help="sample profiles to generate (first time only)")] = 100_000,
    host: Annotated[str, typer.Option(help="web UI interface")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="web UI port")] = 8000,
    cm_port: Annotated[int, typer.Option(help="Campaign Monitor emulator port")] = 8801,
    cc_port: Annotated[int, typer.Option(help="Constant Contact emulator port")] = 8802,
) -> None:
    """Demo everything locally: sandbox, sample data, connections, exports, the web UI."""
    settings = get_settings(host=host, port=port)
    for what, number in (
        ("web UI", port),
        ("Campaign Monitor emulator", cm_port),
        ("Constant Contact emulator", cc_port),
    ):
        _check_port_free(host, number, what)
    out.print(f"Data dir: {settings.data_dir}")
    with Sandbox.start(
        host=host, ports={"campaign_monitor": cm_port, "constant_contact": cc_port}
    ) as sandbox:
        settings = _pointed_at(settings, sandbox)
        runtime = Runtime.open(settings)
        try:
            demo = _seed(runtime, sandbox, rows)
            _welcome(settings, sandbox, demo)

            serve_runtime(runtime, settings)
        except SegmentSyncError as exc:
            out.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(1) from None
        finally:
            runtime.close()


def _check_port_free(host: str, port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            out.print(
                f"[red]error:[/red] port {port} ({what}) is taken — is quickstart already running? "
                "Stop it, or choose other ports (see --help)."
            )
            raise typer.Exit(1) from None


def _pointed_at(settings: Settings, sandbox: Sandbox) -> Settings:
    """Settings whose platforms are the sandbox, with OAuth apps registered for our callback."""
    callback = f"{settings.public_base_url}/api/v1/connections/oauth/callback"
    with httpx.Client(timeout=10) as http:
        cm = http.post(
            f"{sandbox.campaign_monitor_url}/_sandbox/oauth_apps",
            json={"name": "segmentsync quickstart", "redirect_uri": callback},
        ).json()
        cc = http.post(
            f"{sandbox.constant_contact_url}/_sandbox/apps",
            json={"name": "segmentsync quickstart", "redirect_uris": [callback]},
        ).json()
    return settings.model_copy(
        update={
            "campaign_monitor_api_url": sandbox.campaign_monitor_api,
            "campaign_monitor_oauth_url": sandbox.campaign_monitor_oauth,
            "constant_contact_api_url": sandbox.constant_contact_api,
            "constant_contact_oauth_url": sandbox.constant_contact_oauth,
            "campaign_monitor_client_id": cm["client_id"],
            "campaign_monitor_client_secret": SecretStr(cm["client_secret"]),
            "constant_contact_client_id": cc["client_id"],
            "constant_contact_client_secret": SecretStr(cc["client_secret"]),
        }
    )


def _seed(runtime: Runtime, sandbox: Sandbox, rows: int) -> Demo:
    _profiles(runtime, rows)
    admin, password = _admin(runtime)
    segment_ids = _segments(runtime, admin)
    cm_conn, cm_list = _campaign_monitor(runtime, sandbox, admin)
    cc_conn, cc_list = _constant_contact(runtime, sandbox, admin)
    names = [
        _export(
            runtime,
            admin,
            ExportCreate(
                name="Poland → Campaign Monitor",
                connection_id=cm_conn,
                list_id=cm_list,
                email_column="email",
                attributes=[
                    {"column": "first_name", "target": "Name"},
                    {"column": "last_name", "target": "Name"},
                ],
                consent_to_track="column",
                consent_column="consent_email",
                segment_ids=[segment_ids["Poland, bought in the last 90 days"]],
            ),
        ),
        _export(
            runtime,
            admin,
            ExportCreate(
                name="Latvia → Constant Contact",
                connection_id=cc_conn,
                list_id=cc_list,
                email_column="email",
                attributes=[
                    {"column": "first_name", "target": "first_name"},
                    {"column": "last_name", "target": "last_name"},
                ],
                segment_ids=[segment_ids["Latvia"]],
            ),
        ),
    ]
    return Demo(admin_password=password, exports=names)


def _profiles(runtime: Runtime, rows: int) -> None:
    settings = runtime.settings
    path = store.embedded_path(settings)
    if path.exists():
        try:
            count = runtime.profiles.row_count()
        except SegmentSyncError:
            count = 0
        if count:
            out.print(f"Profiles: {count:,} in {path} (kept)")
            return
    result = generate(path, rows=rows, seed=42, table=settings.profiles_table)
    out.print(f"Profiles: generated {result.rows:,} sample profiles in {result.seconds:.1f} s")


def _admin(runtime: Runtime) -> tuple[User, str | None]:
    with transaction(runtime.sessions) as session:
        admin = session.scalar(
            sa.select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id)
        )
        if admin is not None:
            return admin, None
        password = users.generate_password()
        admin = users.create_user(
            session=session, email=ADMIN_EMAIL, role=Role.ADMIN, password=password, name="Admin", actor=None
        )
        return admin, password


def _segments(runtime: Runtime, admin: User) -> dict[str, int]:
    ids: dict[str, int] = {}
    with transaction(runtime.sessions) as session:
        for name, rules in SEGMENTS.items():
            found = session.scalar(sa.select(Segment).where(Segment.name == name))
            if found is None:
                found = segments.create(
                    session=session,
                    source=runtime.profiles,
                    segment_in=SegmentCreate.model_validate({"name": name, "rules": rules}),
                    actor=admin,
                )
            ids[name] = found.id
        segments.refresh_many(
            session=session, source=runtime.profiles, segment_ids=list(ids.values()), actor=admin
        )
    return ids


def _by_name(session: Session, name: str) -> Connection | None:
    return session.scalar(sa.select(Connection).where(Connection.name == name))


def _campaign_monitor(runtime: Runtime, sandbox: Sandbox, admin: User) -> tuple[int, str]:
    client = sandbox.create_cm_client("Demo client")
    answer = httpx.post(
        f"{sandbox.campaign_monitor_api}/lists/{client['ClientID']}.json",
        json={"Title": "Newsletter (sandbox)", "UnsubscribeSetting": "OnlyThisList"},
        auth=(client["ApiKey"], "x"),
        timeout=10,
    )
    answer.raise_for_status()
    auth = ApiKeyAuth(api_key=client["ApiKey"], client_id=client["ClientID"])
    return _connection(runtime, admin, CM_NAME, ConnectionType.CAMPAIGN_MONITOR, auth, sandbox), answer.json()


def _constant_contact(runtime: Runtime, sandbox: Sandbox, admin: User) -> tuple[int, str]:
    account = sandbox.create_cc_account("Demo account")
    answer = httpx.post(
        f"{sandbox.constant_contact_api}/contact_lists",
        json={"name": "Customers (sandbox)"},
        headers={"Authorization": f"Bearer {account['access_token']}"},
        timeout=10,
    )
    answer.raise_for_status()
    auth = TokenAuth(
        access_token=account["access_token"],
        refresh_token=account["refresh_token"],
        oauth_client_id=account["client_id"],
        oauth_client_secret=account["client_secret"],
    )
    connection_id = _connection(runtime, admin, CC_NAME, ConnectionType.CONSTANT_CONTACT, auth, sandbox)
    return connection_id, answer.json()["list_id"]


def _connection(
    runtime: Runtime,
    admin: User,
    name: str,
    type: ConnectionType,
    auth: ApiKeyAuth | TokenAuth,
    sandbox: Sandbox,
) -> int:
    """Create the demo connection, or re-authenticate it with this sandbox's fresh credentials."""
    cm = type is ConnectionType.CAMPAIGN_MONITOR
    with transaction(runtime.sessions) as session:
        existing = _by_name(session, name)
        if existing is not None:
            connections.update(
                session=session,
                runtime=runtime,
                connection=existing,
                data=ConnectionUpdate(auth=auth),
                actor=admin,
            )
            return existing.id
    data = ConnectionCreate(
        type=type,
        name=name,
        consent=True,
        shared_with_contributors=True,
        add_me_as_export_user=True,
        auth=auth,
        api_url=sandbox.campaign_monitor_api if cm else sandbox.constant_contact_api,
        oauth_url=sandbox.campaign_monitor_oauth if cm else sandbox.constant_contact_oauth,
    )
    with transaction(runtime.sessions) as session:
        return connections.create(session=session, runtime=runtime, data=data, actor=admin).id


def _export(runtime: Runtime, admin: User, form: ExportCreate) -> str:
    with runtime.sessions() as session:
        existing = session.scalar(sa.select(Export).where(Export.name == form.name))
    if existing is None:
        exports.create(runtime=runtime, data=form, actor=admin)
    elif existing.list_id != form.list_id:
        exports.update(
            runtime=runtime, export_id=existing.id, changes=ExportUpdate(list_id=form.list_id), actor=admin
        )
    return form.name


def _welcome(settings: Settings, sandbox: Sandbox, demo: Demo) -> None:
    url = settings.public_base_url
    out.rule("segmentsync is ready")
    out.print(f"Open [bold]{url}[/bold] and sign in as [bold]{ADMIN_EMAIL}[/bold]")
    if demo.admin_password:
        out.print(f"Password (shown once): [bold]{demo.admin_password}[/bold]")
    else:
        out.print(
            f"(password shown on the first run; reset it with `segmentsync users set-password {ADMIN_EMAIL}`)"
        )
    out.print("Then:")
    out.print(f"  1. Data > Exports → “{demo.exports[0]}” → Run, and watch the progress")
    out.print("  2. Run it again: nothing changed, so nothing is sent")
    out.print(
        "  3. Admin > Connections → Add connection: the sandbox's OAuth page stands in for the platform's"
    )
    out.print(
        f"Sandbox: Campaign Monitor {sandbox.campaign_monitor_api} · Constant Contact {sandbox.constant_contact_api}"
    )
    out.print(f"REST API: {url}/api/v1 (OpenAPI: {url}/api/v1/openapi.json). Ctrl-C stops everything.")
