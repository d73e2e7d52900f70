"""What goes in and out of the connection services, the REST API and (later) the UI forms.

Secrets come in as ``SecretStr`` and never go out: no output model has a field that could hold
one. The input models follow the steps of docs/connections.md ("Setting one up": type, display name, who can use it, consent,
authenticate, add yourself as export user), so a form can be generated from them step by step.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, SecretStr, StringConstraints

from segmentsync.connections.models import ConnectionStatus, ConnectionType

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

CONSENT_NOTICE = (
    "Exporting moves data, including personal data, outside this system's compliance boundary. "
    "You are responsible for ensuring that the platform meets any privacy or security obligations "
    "you may have."
)


class AuthMethod(StrEnum):
    API_KEY = "api_key"  # Campaign Monitor only
    OAUTH = "oauth"


class ApiKeyAuth(BaseModel):
    """Campaign Monitor: an API key (HTTP Basic) and the client ID it works for."""

    method: Literal["api_key"] = "api_key"
    api_key: SecretStr = Field(min_length=1)
    client_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _visible_ascii(value: SecretStr) -> SecretStr:
    # A token travels in an HTTP header: anything else cannot be sent (it was a 500, not a 422).
    if not all("!" <= char <= "~" for char in value.get_secret_value()):
        raise ValueError("a token holds only visible ASCII characters (no spaces)")
    return value


Token = Annotated[SecretStr, Field(min_length=1), AfterValidator(_visible_ascii)]


class TokenAuth(BaseModel):
    """OAuth tokens obtained elsewhere (scripted setups, the sandbox in ``quickstart``)."""

    method: Literal["oauth_tokens"] = "oauth_tokens"
    access_token: Token
    refresh_token: Token
    expires_at: datetime | None = None
    client_id: str | None = Field(
        default=None, max_length=64, description="Campaign Monitor: the client the token works for"
    )
    oauth_client_id: str | None = Field(
        default=None, max_length=200, description="the OAuth application that issued the tokens"
    )
    oauth_client_secret: SecretStr | None = None


Auth = Annotated[ApiKeyAuth | TokenAuth, Field(discriminator="method")]


class ConnectionDraft(BaseModel):
    """Steps 1–4 and 6 of the setup; the authentication step is added by the subclasses."""

    type: ConnectionType
    name: DisplayName = Field(description="display name, unique")
    shared_with_contributors: bool = Field(
        default=False, description="who can use it: administrators (default) or also contributors"
    )
    consent: bool = Field(default=False, description=f"I agree: {CONSENT_NOTICE}")
    add_me_as_export_user: bool = Field(
        default=True, description="exports on this connection run on behalf of you"
    )


class ConnectionCreate(ConnectionDraft):
    """A connection authenticated with an API key (Campaign Monitor) or existing OAuth tokens."""

    auth: Auth
    api_url: HttpUrl | None = Field(
        default=None, description="the platform's API base URL, if not the configured one (sandbox)"
    )
    oauth_url: HttpUrl | None = Field(
        default=None, description="the platform's OAuth base URL, for token refresh (sandbox)"
    )


class OAuthStart(ConnectionDraft):
    """A new connection authenticated through the platform's OAuth consent page."""

    client_id: str | None = Field(
        default=None,
        max_length=64,
        description="Campaign Monitor: the client to use when the authorization covers several",
    )


class ConnectionUpdate(BaseModel):
    """Edit later: name, sharing, re-authenticate with a key or tokens (OAuth: its own flow)."""

    model_config = ConfigDict(extra="forbid")

    name: DisplayName | None = None
    shared_with_contributors: bool | None = None
    auth: Auth | None = None


class DetachRequest(BaseModel):
    export_ids: list[int] | None = Field(
        default=None, description="the exports to detach; all exports of the connection if absent"
    )


# --- out -----------------------------------------------------------------------------------------


class ConnectionSettings(BaseModel):
    """The non-secret settings stored with a connection (shown to admins)."""

    auth_method: AuthMethod
    client_id: str | None = Field(default=None, description="Campaign Monitor client ID")
    account_id: str | None = None
    account_name: str | None = None
    oauth_client_id: str | None = Field(default=None, description="the OAuth application's client id")
    api_url: str | None = Field(default=None, description="API base URL override")
    oauth_url: str | None = Field(default=None, description="OAuth base URL override")


class UserRef(BaseModel):
    id: int
    email: str
    name: str


class ExportRef(BaseModel):
    id: int
    name: str


class ConnectionSummary(BaseModel):
    """What contributors see of a shared connection: display name and type, nothing else."""

    id: int
    name: str
    type: ConnectionType


class ConnectionOut(ConnectionSummary):
    """What admins see. Secrets are write-only: only the names of the stored ones are listed."""

    shared_with_contributors: bool
    consent_by: UserRef | None
    consent_at: datetime
    export_user: UserRef | None
    export_user_problem: str | None = Field(description="why runs cannot use the export user, if so")
    settings: ConnectionSettings
    secrets_stored: list[str] = Field(description="names of the stored secrets (never their values)")
    status: ConnectionStatus
    status_message: str | None
    token_expires_at: datetime | None
    exports: list[ExportRef]
    created_by: UserRef | None
    created_at: datetime
    updated_at: datetime


class OAuthStarted(BaseModel):
    authorize_url: str = Field(description="open this in the browser of the admin who started it")
    state: str
    redirect_uri: str
    expires_at: datetime


class ListOut(BaseModel):
    list_id: str
    name: str
    member_count: int | None = None


class FieldOut(BaseModel):
    key: str
    name: str
    type: str
    options: list[str] = []


class VerifyOut(BaseModel):
    connection: ConnectionOut
    account_id: str
    account_name: str
