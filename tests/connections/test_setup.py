"""The connection setup, step by step, through the services against the sandbox."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from segmentsync.auth.models import AuditEntry, Role, User
from segmentsync.connections import service
from segmentsync.connections.access import credentials_for
from segmentsync.connections.models import Connection, ConnectionStatus, ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionOut, ConnectionSummary, ConnectionUpdate
from segmentsync.db import transaction
from segmentsync.errors import ConfigError, Conflict, Forbidden, Invalid, NotFound
from segmentsync.exports.models import Export
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox

from .conftest import MakeUser, Person, add_export, cc_create, cm_create, load, save


def test_campaign_monitor_with_an_api_key(runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    client = sandbox.create_cm_client("Acme")
    connection = save(runtime, cm_create(key=client["ApiKey"], client_id=client["ClientID"]), admin)

    stored = load(runtime, connection.id)
    assert stored.name == "CM Newsletter"
    assert stored.type is ConnectionType.CAMPAIGN_MONITOR
    assert stored.shared_with_contributors is False  # "Administrators" is the default
    assert stored.consent_by_id == admin.id
    assert stored.consent_at is not None
    assert stored.export_user_id == admin.id  # "add yourself as export user"
    assert stored.status is ConnectionStatus.OK
    assert stored.settings["client_id"] == client["ClientID"]
    assert stored.settings["account_name"] == "Acme"
    assert stored.settings["auth_method"] == "api_key"
    assert client["ApiKey"] not in stored.secrets  # encrypted
    assert credentials_for(vault=runtime.vault, connection=stored).api_key == client["ApiKey"]
    with runtime.sessions() as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "connection.create")).one()
    assert entry.actor_id == admin.id
    assert entry.after is not None
    assert entry.after["consent_by_id"] == admin.id
    assert client["ApiKey"] not in str(entry.after)


def test_constant_contact_with_existing_tokens(runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    account = sandbox.create_cc_account("Shop")
    connection = save(runtime, cc_create(account=account, shared_with_contributors=True), admin)

    stored = load(runtime, connection.id)
    assert stored.settings["auth_method"] == "oauth"
    assert stored.settings["account_id"] == account["account_id"]  # the account behind the tokens
    assert stored.settings["account_name"] == "Shop"  # its organization's name, not its id
    assert stored.settings["oauth_client_id"] == account["client_id"]
    assert stored.shared_with_contributors is True
    credentials = credentials_for(vault=runtime.vault, connection=stored)
    assert credentials.refresh_token == account["refresh_token"]
    assert credentials.oauth_client_secret == account["client_secret"]


def test_without_consent_nothing_is_saved(runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    client = sandbox.create_cm_client()
    data = cm_create(key=client["ApiKey"], client_id=client["ClientID"]).model_copy(update={"consent": False})
    with pytest.raises(Invalid) as caught:
        save(runtime, data, admin)
    assert caught.value.field == "consent"
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 0


def test_a_bad_api_key_gives_the_platforms_message(runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    client = sandbox.create_cm_client()
    with pytest.raises(ConfigError) as caught:
        save(runtime, cm_create(key="not-the-key", client_id=client["ClientID"]), admin)
    message = caught.value.message
    assert "Campaign Monitor" in message
    assert "Must supply a valid HTTP Basic Authorization header" in message or "Invalid API Key" in message
    assert caught.value.field == "auth"


def test_constant_contact_has_no_api_keys(runtime: Runtime, admin: Person) -> None:
    data = cm_create(key="k", client_id="c").model_copy(update={"type": ConnectionType.CONSTANT_CONTACT})
    with pytest.raises(Invalid) as caught:
        save(runtime, data, admin)
    assert caught.value.field == "auth.method"


def test_display_names_are_unique(runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    client = sandbox.create_cm_client()
    save(runtime, cm_create("Same", key=client["ApiKey"], client_id=client["ClientID"]), admin)
    with pytest.raises(Conflict) as caught:
        save(runtime, cm_create("Same", key=client["ApiKey"], client_id=client["ClientID"]), admin)
    assert caught.value.field == "name"


def test_only_admins_manage_connections(runtime: Runtime, sandbox: Sandbox, contributor: Person) -> None:
    client = sandbox.create_cm_client()
    with pytest.raises(Forbidden):
        save(runtime, cm_create(key=client["ApiKey"], client_id=client["ClientID"]), contributor)


def test_contributors_see_only_shared_connections_name_and_type(
    runtime: Runtime, sandbox: Sandbox, admin: Person, contributor: Person
) -> None:
    client = sandbox.create_cm_client()
    shared = save(
        runtime,
        cm_create(
            "Shared", key=client["ApiKey"], client_id=client["ClientID"], shared_with_contributors=True
        ),
        admin,
    )
    private = save(runtime, cm_create("Private", key=client["ApiKey"], client_id=client["ClientID"]), admin)
    with runtime.sessions() as session:
        carl = session.get(User, contributor.id)
        ada = session.get(User, admin.id)
        assert carl is not None
        assert ada is not None
        seen = list(session.scalars(service.connection_query(actor=carl)))
        shown = service.views(session=session, connections=seen, actor=carl)
        assert [v.model_dump() for v in shown] == [
            {"id": shared.id, "name": "Shared", "type": ConnectionType.CAMPAIGN_MONITOR}
        ]
        assert all(type(v) is ConnectionSummary for v in shown)
        with pytest.raises(NotFound):
            service.get(session=session, connection_id=private.id, actor=carl)
        admin_views = service.views(
            session=session, connections=list(session.scalars(service.connection_query(actor=ada))), actor=ada
        )
        assert [v.name for v in admin_views] == ["Private", "Shared"]
        assert all(isinstance(v, ConnectionOut) for v in admin_views)


def test_edit_name_sharing_and_reauthenticate(runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    first, second = sandbox.create_cm_client("First"), sandbox.create_cm_client("Second")
    connection = save(runtime, cm_create(key=first["ApiKey"], client_id=first["ClientID"]), admin)
    export_id = add_export(runtime, connection.id, "Weekly")

    def edit(data: ConnectionUpdate) -> None:
        with transaction(runtime.sessions) as session:
            actor, row = session.get(User, admin.id), session.get(Connection, connection.id)
            assert actor is not None
            assert row is not None
            service.update(session=session, runtime=runtime, connection=row, data=data, actor=actor)

    edit(ConnectionUpdate(name="Renamed", shared_with_contributors=True))
    with pytest.raises(ConfigError):  # a bad key is refused and the old credentials stay
        edit(ConnectionUpdate(auth=ApiKeyAuth(api_key="wrong", client_id=second["ClientID"])))
    assert (
        credentials_for(vault=runtime.vault, connection=load(runtime, connection.id)).api_key
        == first["ApiKey"]
    )
    edit(ConnectionUpdate(auth=ApiKeyAuth(api_key=second["ApiKey"], client_id=second["ClientID"])))

    stored = load(runtime, connection.id)
    assert stored.name == "Renamed"
    assert stored.shared_with_contributors is True
    assert stored.settings["account_name"] == "Second"
    assert stored.secrets_version == 2
    with runtime.sessions() as session:
        export = session.get(Export, export_id)
        assert export is not None
        assert export.connection_id == connection.id


def test_remove_is_refused_while_exports_use_it_then_detach(
    runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    client = sandbox.create_cm_client()
    connection = save(runtime, cm_create(key=client["ApiKey"], client_id=client["ClientID"]), admin)
    weekly = add_export(runtime, connection.id, "Weekly")
    daily = add_export(runtime, connection.id, "Daily")

    def act(work: str, **kwargs: object) -> object:
        with transaction(runtime.sessions) as session:
            actor, row = session.get(User, admin.id), session.get(Connection, connection.id)
            assert actor is not None
            assert row is not None
            return getattr(service, work)(session=session, connection=row, actor=actor, **kwargs)

    with pytest.raises(Conflict) as caught:
        act("remove")
    assert caught.value.details["exports"] == [
        {"id": daily, "name": "Daily"},
        {"id": weekly, "name": "Weekly"},
    ]
    assert "'Daily'" in caught.value.message
    assert "'Weekly'" in caught.value.message

    act("detach", export_ids=[weekly])
    with pytest.raises(Conflict):
        act("remove")
    act("detach")
    act("remove")
    with runtime.sessions() as session:
        assert session.get(Connection, connection.id) is None
        kept = session.scalars(sa.select(Export).order_by(Export.name)).all()
        assert [(e.name, e.connection_id) for e in kept] == [("Daily", None), ("Weekly", None)]
        actions = session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("export.detach") == 2
    assert "connection.remove" in actions


def test_add_yourself_as_export_user(
    runtime: Runtime, sandbox: Sandbox, admin: Person, make_user: MakeUser
) -> None:
    client = sandbox.create_cm_client()
    connection = save(
        runtime,
        cm_create(key=client["ApiKey"], client_id=client["ClientID"], add_me_as_export_user=False),
        admin,
    )
    other = make_user("otto@example.com", Role.ADMIN)
    with transaction(runtime.sessions) as session:
        row, otto = session.get(Connection, connection.id), session.get(User, other.id)
        assert row is not None
        assert otto is not None
        view = service.view(session=session, connection=row, actor=otto)
        assert isinstance(view, ConnectionOut)
        assert view.export_user is None
        assert view.export_user_problem is not None
        assert "no export user" in view.export_user_problem
        service.add_export_user(session=session, connection=row, actor=otto)
    assert load(runtime, connection.id).export_user_id == other.id
