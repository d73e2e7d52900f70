"""`segmentsync users …` against a real metadata store (opened and migrated like in production)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from segmentsync.auth import service, signin
from segmentsync.auth.cli import app
from segmentsync.db import transaction
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings


@pytest.fixture
def cli(settings: Settings, store_url: str) -> CliRunner:
    env = {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": store_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "COLUMNS": "200",  # Rich tables: no truncated cells
    }
    return CliRunner(env=env)


@pytest.fixture
def store(settings: Settings, store_url: str) -> Iterator[Runtime]:
    settings.database_url = store_url
    runtime = Runtime.open(settings, migrate=False)
    yield runtime
    runtime.close()


def can_sign_in(store: Runtime, email: str, password: str) -> bool:
    with transaction(store.sessions) as session:
        now = datetime.now(UTC)
        return (
            signin.authenticate(session=session, email=email, password=password, ip=None, now=now) is not None
        )


def test_create_generates_and_prints_a_password_once(cli: CliRunner, store: Runtime) -> None:
    result = cli.invoke(app, ["create", "Root@Example.com", "--role", "admin", "--name", "Root"])
    assert result.exit_code == 0, result.output
    assert "created root@example.com (admin)" in result.output
    password = result.output.split("password (shown once): ")[1].split()[0]
    assert can_sign_in(store, "root@example.com", password)


def test_create_reads_the_password_from_stdin(cli: CliRunner, store: Runtime) -> None:
    result = cli.invoke(app, ["create", "ana@example.com", "--password-stdin"], input="from stdin 123\n")
    assert result.exit_code == 0, result.output
    assert "shown once" not in result.output
    assert can_sign_in(store, "ana@example.com", "from stdin 123")


def test_errors_are_one_clear_line(cli: CliRunner) -> None:
    cli.invoke(app, ["create", "ana@example.com", "--role", "admin"])
    duplicate = cli.invoke(app, ["create", "ANA@example.com"])
    assert duplicate.exit_code == 1
    assert "a user with the email ana@example.com already exists" in duplicate.output
    last_admin = cli.invoke(app, ["set-role", "ana@example.com", "viewer"])
    assert last_admin.exit_code == 1
    assert "last active admin" in last_admin.output
    unknown = cli.invoke(app, ["deactivate", "nobody@example.com"])
    assert (unknown.exit_code, "no user with the email nobody@example.com" in unknown.output) == (1, True)


def test_roles_and_deactivation(cli: CliRunner, store: Runtime) -> None:
    cli.invoke(app, ["create", "root@example.com", "--role", "admin"])
    cli.invoke(app, ["create", "bo@example.com", "--role", "viewer"])
    assert cli.invoke(app, ["set-role", "bo@example.com", "contributor"]).exit_code == 0
    assert cli.invoke(app, ["deactivate", "bo@example.com"]).exit_code == 0
    listing = cli.invoke(app, ["list"]).output
    [row] = [line for line in listing.splitlines() if "bo@example.com" in line]
    assert "contributor" in row
    assert " no " in row
    assert cli.invoke(app, ["activate", "bo@example.com"]).exit_code == 0
    with transaction(store.sessions) as session:
        user = service.get_user_by_email(session=session, email="bo@example.com")
        assert (user.role.value, user.is_active) == ("contributor", True)


def test_tokens_print_alone_on_stdout_and_can_be_revoked(cli: CliRunner, store: Runtime) -> None:
    cli.invoke(app, ["create", "bot@example.com", "--role", "contributor"])
    result = cli.invoke(app, ["token", "bot@example.com", "--name", "ci"])
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert token.startswith("ss_")
    assert "not shown again" in result.stderr
    with transaction(store.sessions) as session:
        user = service.user_for_api_token(session=session, token=token, now=datetime.now(UTC))
        assert user is not None
        [row] = session.scalars(service.token_query(user_id=user.id))
    listing = cli.invoke(app, ["tokens", "bot@example.com"]).output
    assert token[:10] in listing
    assert token not in listing
    assert cli.invoke(app, ["revoke-token", str(row.id)]).exit_code == 0
    with transaction(store.sessions) as session:
        assert service.user_for_api_token(session=session, token=token, now=datetime.now(UTC)) is None


def test_set_password(cli: CliRunner, store: Runtime) -> None:
    cli.invoke(app, ["create", "bo@example.com"])
    result = cli.invoke(
        app, ["set-password", "bo@example.com", "--password-stdin"], input="another secret 1\n"
    )
    assert result.exit_code == 0
    assert can_sign_in(store, "bo@example.com", "another secret 1")


def test_the_commands_are_the_users_group_of_segmentsync() -> None:
    from segmentsync.cli import app as main

    result = CliRunner().invoke(main, ["users", "--help"])
    assert result.exit_code == 0
    for command in ("create", "list", "set-role", "deactivate", "activate", "token", "revoke-token"):
        assert command in result.output
