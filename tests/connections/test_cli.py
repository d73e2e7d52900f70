"""`segmentsync connections …` against a real metadata store and the sandbox."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from segmentsync.cli import app
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings

from .conftest import Person, add_export

Env = dict[str, str]


@pytest.fixture
def env(settings: Settings, store_url: str) -> Env:
    """The settings of the test, as the environment a command line would have."""
    assert settings.secret_key is not None
    values = {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": store_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SEGMENTSYNC_BASE_URL": settings.public_base_url,
        "COLUMNS": "200",  # Rich tables: no truncated cells
    }
    for name in ("campaign_monitor", "constant_contact"):
        for part in ("api_url", "oauth_url", "client_id"):
            values[f"SEGMENTSYNC_{name.upper()}_{part.upper()}"] = str(getattr(settings, f"{name}_{part}"))
    return values


def run(env: Env, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(app, ["connections", *args], input=input)
    return result.exit_code, result.output


def test_create_with_a_key_from_stdin(env: Env, runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    cm = sandbox.create_cm_client("Acme")
    create = [
        "create",
        "--type",
        "campaign_monitor",
        "--name",
        "CM",
        "--agree",
        "--client-id",
        cm["ClientID"],
    ]

    code, output = run(env, *create, "--api-key-stdin", "--json", input=cm["ApiKey"] + "\n")

    assert code == 0, output
    shown = json.loads(output)
    assert shown["settings"]["account_name"] == "Acme"
    assert shown["consent_by"]["email"] == admin.email
    listed = run(env, "list")[1]
    assert "CM" in listed
    assert "campaign_monitor" in listed
    outputs = [output, listed, run(env, "show", "CM")[1], run(env, "verify", "CM")[1]]
    assert "ok: Acme" in outputs[-1]
    assert not [text for text in outputs if cm["ApiKey"] in text]


def test_clear_errors(env: Env, sandbox: Sandbox, admin: Person, contributor: Person) -> None:
    cm = sandbox.create_cm_client("Acme")
    create = [
        "create",
        "--type",
        "campaign_monitor",
        "--name",
        "CM",
        "--client-id",
        cm["ClientID"],
        "--api-key-stdin",
    ]

    no_consent = run(env, *create, input=cm["ApiKey"])
    bad_key = run(env, *create, "--agree", input="wrong-key")
    not_admin = run(env, *create, "--agree", "--as", contributor.email, input=cm["ApiKey"])

    assert no_consent[0] == 1
    assert "I agree" in no_consent[1]
    assert bad_key[0] == 1
    assert "credentials were not accepted: Campaign Monitor" in bad_key[1]
    assert not_admin[0] == 1
    assert "contributor" in not_admin[1]


def test_constant_contact_tokens_from_stdin(env: Env, sandbox: Sandbox, admin: Person) -> None:
    account = sandbox.create_cc_account("Shop")
    secrets = {k: account[k] for k in ("access_token", "refresh_token")}
    secrets["oauth_client_secret"] = account["client_secret"]

    code, output = run(
        env, "create", "--type", "constant_contact", "--name", "CC", "--agree", "--shared", "--tokens-stdin",
        input=json.dumps({**secrets, "oauth_client_id": account["client_id"]}),
    )  # fmt: skip

    assert code == 0, output
    assert "shared_with_contributors: True" in output
    assert account["client_id"] in output  # not a secret: the OAuth application's public id
    assert not [value for value in secrets.values() if value in output]


def test_oauth_url(env: Env, sandbox: Sandbox, admin: Person) -> None:
    code, output = run(env, "oauth-url", "--type", "constant_contact", "--name", "CC", "--agree")

    assert code == 0, output
    assert f"{sandbox.constant_contact_oauth}/authorize?" in output
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Fapi%2Fv1%2Fconnections%2Foauth%2Fcallback" in output


def test_edit_detach_and_remove(env: Env, runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    cm = sandbox.create_cm_client("Acme")
    run(env, "create", "--type", "campaign_monitor", "--name", "CM", "--agree", "--client-id", cm["ClientID"],
        "--api-key-stdin", input=cm["ApiKey"])  # fmt: skip
    connection_id = json.loads(run(env, "show", "CM", "--json")[1])["id"]
    add_export(runtime, connection_id, "Weekly")

    edited = run(env, "edit", "CM", "--name", "Renamed", "--shared")
    refused = run(env, "remove", "Renamed")
    detached = run(env, "detach", str(connection_id))
    removed = run(env, "remove", "Renamed")

    assert "shared_with_contributors: True" in edited[1]
    assert refused[0] == 1
    assert "'Weekly'" in refused[1]
    assert "detached 1 export(s): Weekly" in detached[1]
    assert removed == (0, "removed connection Renamed\n")


def test_rotate_secrets_to_a_new_key(env: Env, sandbox: Sandbox, admin: Person) -> None:
    cm = sandbox.create_cm_client("Acme")
    run(env, "create", "--type", "campaign_monitor", "--name", "CM", "--agree", "--client-id", cm["ClientID"],
        "--api-key-stdin", input=cm["ApiKey"])  # fmt: skip
    new_key = Fernet.generate_key().decode()
    both = {**env, "SEGMENTSYNC_SECRET_KEY": f"{new_key},{env['SEGMENTSYNC_SECRET_KEY']}"}
    only_new = {**env, "SEGMENTSYNC_SECRET_KEY": new_key}
    assert run(only_new, "verify", "CM")[0] == 1  # the new key alone cannot read the old secrets

    rotated = run(both, "rotate-secrets")

    assert rotated == (0, "re-encrypted 1 secret(s) with the newest key\n")
    assert run(only_new, "verify", "CM") == (0, "ok: Acme ({})\n".format(cm["ClientID"]))


def test_an_admins_only_connection_is_an_unknown_name_to_a_contributor(
    env: Env, sandbox: Sandbox, admin: Person, contributor: Person
) -> None:
    cm = sandbox.create_cm_client("Acme")
    create = ["create", "--type", "campaign_monitor", "--name", "Private CM", "--agree", "--client-id",
              cm["ClientID"], "--api-key-stdin", "--json"]  # fmt: skip
    code, output = run(env, *create, input=cm["ApiKey"])
    assert code == 0, output
    private_id = json.loads(output)["id"]
    by_name = run(env, "show", "Private CM", "--as", contributor.email)
    unknown = run(env, "show", "Nobody CM", "--as", contributor.email)
    assert by_name[0] == unknown[0] == 1
    assert by_name[1].replace("Private CM", "X") == unknown[1].replace("Nobody CM", "X")  # same answer
    assert str(private_id) not in by_name[1].replace("Private CM", "")
    assert run(env, "show", "Private CM")[0] == 0  # the admin sees it
    assert run(env, "show", "²")[0] == 1  # not a number: an unknown name, not a crash
