"""Domain errors. Services raise these; the API and web layers map them to HTTP in one place.

Each error carries a stable machine ``code``, a human message, an optional ``field`` (the input
it concerns, so forms can show it beside that field) and an HTTP ``status``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar


class SegmentSyncError(Exception):
    """Root of every error this project raises on purpose."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body


class Invalid(SegmentSyncError):
    """The input is wrong; the message says which part and why."""

    status = 422
    default_code = "invalid"


class NotFound(SegmentSyncError):
    status = 404
    default_code = "not_found"


class Conflict(SegmentSyncError):
    """The request clashes with the current state (unique name, object in use, run active)."""

    status = 409
    default_code = "conflict"


class Forbidden(SegmentSyncError):
    status = 403
    default_code = "forbidden"


class Unauthenticated(SegmentSyncError):
    status = 401
    default_code = "unauthenticated"


class ConfigError(SegmentSyncError):
    """Something an admin must fix: bad or revoked credentials, unknown list, missing setting."""

    status = 400
    default_code = "config_error"


class Retriable(SegmentSyncError):
    """A transient failure that gave up after its retries; trying again later may work."""

    status = 503
    default_code = "retriable"


class QuotaExceeded(Retriable):
    """The platform's daily quota is spent; nothing helps before ``resets_at``."""

    default_code = "quota_exceeded"

    def __init__(self, message: str, *, resets_at: datetime, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.resets_at = resets_at


class Fatal(SegmentSyncError):
    """A permanent failure that retrying cannot fix."""

    status = 502
    default_code = "fatal"
