"""The platform's own error answers.

Constant Contact answers 4xx with an ARRAY of ``{error_key, error_message}``; 401 and 429 are bare
OBJECTS (reference §1.5, §2.1, §3). These are platform answers, not segmentsync domain errors, so
they live here and are turned into HTTP responses by the routing wrapper.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

VALIDATION = "contacts.api.validation.error"
NOT_FOUND = "contacts.api.not_found"
CONFLICT = "contacts.api.conflict"
UNSUPPORTED_MEDIA = "contacts.api.unsupported_media_type"
FORBIDDEN = "forbidden"
METHOD_NOT_ALLOWED = "contacts.api.method_not_allowed"

# 59 bytes exactly, as the captured Content-Length shows (reference §1.5)
UNAUTHORIZED_BODY = b'{"error_key":"unauthorized","error_message":"Unauthorized"}'
UNAUTHORIZED_HEADERS = {
    "WWW-Authenticate": "Bearer realm=api.cc.email",
    "x-amzn-ErrorType": "UnauthorizedException",
}
THROTTLED_BODY = b'{"error_key":"throttled","error_message":"Too Many Requests"}'
QUOTA_BODY = b'{"error_key":"quota_exceeded","error_message":"Limit Exceeded"}'
# error_key of the queued-activities 429 is not documented: "throttled" makes clients back off
QUEUE_FULL_BODY = orjson.dumps(
    {
        "error_key": "throttled",
        "error_message": "Too many requests. You exceeded 1,000 queued activities for this user account.",
    }
)
SERVER_ERROR_BODY = orjson.dumps(
    [{"error_key": "server_error", "error_message": "There was a problem with our internal service."}]
)


class PlatformError(Exception):
    """An error answer of the emulated API: status plus the exact body bytes."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(body.decode())
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> Response:
        return Response(self.body, self.status, headers=self.headers, media_type="application/json")


def shown(value: object) -> str:
    """A value from a request as a message shows it: strings as they are, others as JSON (null)."""
    return value if isinstance(value, str) else orjson.dumps(value, default=repr).decode()


def invalid_list_id(field: str, value: object) -> PlatformError:
    return bad_request(f"{field} contains an invalid list ID: {shown(value)}.")


def api_error(status: int, key: str, message: str) -> PlatformError:
    return PlatformError(status, orjson.dumps([{"error_key": key, "error_message": message}]))


def bad_request(message: str) -> PlatformError:
    return api_error(400, VALIDATION, message)


def not_found(message: str) -> PlatformError:
    return api_error(404, NOT_FOUND, message)


def conflict(message: str) -> PlatformError:
    return api_error(409, CONFLICT, message)


def unauthorized() -> PlatformError:
    return PlatformError(401, UNAUTHORIZED_BODY, UNAUTHORIZED_HEADERS)


def forbidden(message: str) -> PlatformError:
    return api_error(403, FORBIDDEN, message)


def method_not_allowed(method: str, path: str, allowed: list[str]) -> PlatformError:
    error = api_error(
        405, METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}."
    )
    error.headers["Allow"] = ", ".join(allowed)
    return error


def unsupported_media_type() -> PlatformError:
    return api_error(
        415,
        UNSUPPORTED_MEDIA,
        "Unsupported Media Type; the payload must be in JSON format, and Content-Type must be application/json.",
    )
