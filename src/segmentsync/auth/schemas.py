"""What the API accepts and returns for users, sessions, API tokens and the audit log.

Secrets only ever travel inwards (``SecretStr``: hidden in reprs and logs), except a new API
token or a generated password, which are returned exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from segmentsync.auth.models import Role


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(Out):
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    language: str | None = Field(description="UI language; null follows the browser")
    created_at: datetime
    last_login_at: datetime | None
    export_user_of: list[str] = Field(
        default_factory=list, description="connections whose exports run on behalf of this user"
    )


class UserCreate(BaseModel):
    email: str = Field(max_length=254, examples=["ana@example.com"])
    name: str = Field(default="", max_length=200)
    role: Role = Role.VIEWER
    password: SecretStr | None = Field(
        default=None, description="omit to have a password generated and returned once"
    )
    language: str | None = None


class UserCreated(UserOut):
    generated_password: str | None = Field(
        default=None, description="only when no password was given; shown this once"
    )


class UserUpdate(BaseModel):
    """Only the fields sent are changed; ``language: null`` means: follow the browser."""

    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    is_active: bool | None = None
    language: str | None = None


class ProfileUpdate(BaseModel):
    """Your own name and UI language (``language: null``: follow the browser)."""

    name: str | None = Field(default=None, max_length=200)
    language: str | None = None


class PasswordSet(BaseModel):
    new_password: SecretStr


class PasswordChange(BaseModel):
    current_password: SecretStr = Field(description="may be empty if you have no password yet")
    new_password: SecretStr


class SignIn(BaseModel):
    email: str = Field(max_length=254)
    password: SecretStr


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="send it back as X-CSRF-Token on POST/PUT/PATCH/DELETE")


class BrowserSessionOut(Out):
    """A signed-in browser (its cookie's id is never shown)."""

    id: int
    created_at: datetime = Field(description="when it signed in")
    last_seen_at: datetime = Field(description="its last request (to the minute)")
    ip: str | None = Field(description="the address it signed in from")
    user_agent: str = Field(description="the browser it signed in with, as it said")
    current: bool = Field(default=False, description="this request's own session")


class MeOut(BaseModel):
    user: UserOut
    authenticated_by: str = Field(description='"session" (browser cookie) or "token" (API token)')
    csrf_token: str | None = Field(description="the session's CSRF token; null with an API token")
    permissions: list[str] = Field(description="the actions of the policy table your role allows")


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["nightly export script"])


class TokenOut(Out):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="the first characters of the token, to tell tokens apart")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself: shown this once, stored only as a hash")


class AuditOut(Out):
    id: int
    at: datetime
    actor_id: int | None
    actor_label: str
    action: str
    object_type: str
    object_id: str | None
    object_label: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
