"""Domain errors. Services raise these; the API and web layers map them to HTTP in one place.

Each error carries a stable machine ``code``, a human message, an optional ``field`` (the input
it concerns, so forms can show it beside that field) and an HTTP ``status``.

The message is written as a template with named ``%(placeholders)s`` and its ``params``:
``Invalid("there is no segment with id %(ids)s", params={"ids": "7"})``. ``message`` is the
English sentence the API and the logs show; the web pages translate ``template`` into the reader's
language and fill in the same ``params`` (see ``segmentsync.web.messages``). The templates are
collected into the UI's catalogs by ``python -m segmentsync.web.i18n`` (the error classes and
``N_`` are its keywords), so a template must be a string literal at the ``raise`` (or marked with
``N_`` where it is written), never an f-string.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar


def N_(message: str) -> str:  # the gettext convention: mark now, translate where shown
    """Mark a message template for the UI's catalogs without translating it."""
    return message


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
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.template = message
        self.params: dict[str, object] = dict(params or {})
        self.message = message % self.params if self.params else message
        super().__init__(self.message)
        self.code = code or self.default_code
        self.field = field
        self.details = details or {}
        self.each_problem: list[SegmentSyncError] = []  # where this error lists several (Problems)

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


class Problems:
    """The problems of one input, collected so that all of them are reported at once.

    ``check(function, *args)`` calls a check and keeps the input error it raises (returning
    None); ``raise_any()`` then raises the one problem as it was, or an :class:`Invalid` listing
    each (``details.errors``: its ``loc``, ``code`` and English ``message``).
    """

    KINDS = (Invalid, NotFound, Forbidden, Conflict)

    def __init__(self) -> None:
        self.found: list[SegmentSyncError] = []

    def add(self, error: SegmentSyncError) -> None:
        self.found.append(error)

    def check(self, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except self.KINDS as error:
            self.found.append(error)
            return None

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            listed = [
                {"loc": (error.field or "").split(".") if error.field else [], "type": "service",
                 "code": error.code, "message": error.message}
                for error in self.found
            ]  # fmt: skip
            every = "; ".join(error.message for error in self.found)  # the English messages, in order
            several = Invalid(every, field=self.found[0].field, details={"errors": listed})
            several.each_problem = list(self.found)
            raise several
