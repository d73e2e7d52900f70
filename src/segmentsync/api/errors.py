"""The one place where domain errors become HTTP answers."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from segmentsync.db import store_away
from segmentsync.errors import Invalid, QuotaExceeded, SegmentSyncError
from segmentsync.logs import redact
from segmentsync.web.messages import clean_loc, english

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every error answer of the API has this shape."""

    error: ErrorDetail


# Documented on every /api/v1 operation (OpenAPI), replacing FastAPI's own 422 shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "Not signed in, or the API token is unknown, revoked or its user deactivated"),
        (403, "Your role does not allow this (code forbidden), or the CSRF token is missing (code csrf)"),
        (404, "No such object"),
        (409, "Conflicts with the current state (a unique name, an object in use, the last admin)"),
        (422, "The input is invalid; field names the input concerned"),
        (400, "Something an admin must fix: credentials, a missing setting (code config_error …)"),
        (502, "The platform failed in a way retrying cannot fix (code fatal)"),
        (503, "The platform failed for now; try again later (codes retriable, quota_exceeded)"),
    )
}
ERROR_RESPONSES[503]["headers"] = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
}


DEFAULT_RETRY_AFTER = {429: 60, 503: 30}  # seconds, when the error does not know better


def retry_after(exc: SegmentSyncError) -> int | None:
    """Seconds a client should wait before trying again (429 and 503 answers), else None."""
    if exc.status not in DEFAULT_RETRY_AFTER:
        return None
    if isinstance(exc, QuotaExceeded):
        return max(1, math.ceil((exc.resets_at - datetime.now(UTC)).total_seconds()))
    given = exc.details.get("retry_after_seconds")
    if isinstance(given, int | float) and given > 0:
        return math.ceil(given)
    return DEFAULT_RETRY_AFTER[exc.status]


def json_safe(value: Any) -> Any:
    """``value`` with every number JSON cannot carry (NaN, ±Infinity) as text.

    An error may quote the input it refuses (a rule's condition), and that input may hold such a
    number: the answer must still be JSON, never a failure to write the error.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def non_finite_path(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where in parsed JSON a non-finite number (``NaN``, ``Infinity``, ``1e400``) is, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite_path(item, (*path, key))
        if found is not None:
            return found
    return None


async def finite_json_body(request: Request) -> None:
    """Refuse a JSON body holding NaN, Infinity or a number beyond a double (``1e400``), naming it.

    Python's JSON parser takes them (JSON itself has no such numbers); nothing downstream can
    store, compare or answer them. A dependency of every API route, run before the body's model.
    """
    if "json" not in request.headers.get("content-type", "json") or not await request.body():
        return
    try:
        body = await request.json()  # parsed once: the route reads the same parsed body
    except (ValueError, UnicodeDecodeError):
        return  # not JSON at all: the route's own validation says so
    where = non_finite_path(body)
    if where is not None:
        field = ".".join(str(part) for part in where) or "body"
        raise Invalid(f"{field}: not a finite number (NaN, Infinity and numbers beyond ±1.8e308 are refused)",
                      code="invalid", field=field)  # fmt: skip


def _answer(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(json_safe(body), status_code=status, headers=headers)


def _listed(body: dict[str, Any]) -> dict[str, Any]:
    """An error listing several problems (``details.errors``): each with its English ``message``
    (a validator's finding as a sentence naming the field), the answer's message all of them."""
    listed = (body.get("details") or {}).get("errors")
    if not isinstance(listed, list) or not listed:
        return body
    errors = [
        {**error, "message": error.get("message") or english(error)}
        for error in listed
        if isinstance(error, dict)
    ]
    if len(errors) > 1:
        body["message"] = " ".join(str(error["message"]) for error in errors)
    return {**body, "details": {**body["details"], "errors": errors}}


async def domain_error(request: Request, exc: SegmentSyncError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    wait = retry_after(exc)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    return _answer({"error": {"status": exc.status, **_listed(exc.to_dict())}}, exc.status, headers)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Every problem of the request: ``loc`` for programs, ``message`` (a sentence) for people."""
    errors = [dict(error) for error in exc.errors()]
    first = errors[0] if errors else {}
    where = [str(part) for part in clean_loc(first.get("loc", ()))]
    listed = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type"), "message": english(e)}
              for e in errors]  # fmt: skip
    body = {
        "status": 422,
        "code": "invalid",
        "message": " ".join(str(item["message"]) for item in listed) or "The request is not valid.",
        "field": ".".join(where) or None,
        "details": {"errors": listed},
    }
    return _answer({"error": body}, 422)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The router's own answers (unknown path, method not allowed) in the same shape."""
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    body = {"status": exc.status_code, "code": codes.get(exc.status_code, "http_error"), "message": message}
    return JSONResponse({"error": body}, status_code=exc.status_code, headers=exc.headers)


async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A number too large for the database (an id of 30 digits): the input's fault, not ours."""
    log.info("value out of range in %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    body = {"status": 422, "code": "invalid", "message": "a value in the request is out of range"}
    return JSONResponse({"error": body}, status_code=422)


async def store_busy(request: Request, exc: Exception) -> JSONResponse:
    """Every store connection of this process is in use (a burst of requests while runs write):
    a clear, retryable 503 rather than a 500."""
    log.warning(
        "no store connection free for %s %s within the pool timeout", request.method, request.url.path
    )
    body = {"status": 503, "code": "store_busy", "message": "the server is busy; try again in a few seconds"}
    return JSONResponse({"error": body}, status_code=503, headers={"Retry-After": "5"})


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The store refused or lost the connection (a restart, ``max_connections`` reached): a
    retryable 503 naming it, not a 500; anything else of the class is a 500 as usual."""
    if not isinstance(exc, OperationalError) or not store_away(exc):
        return await unexpected_error(request, exc)
    log.warning(
        "the metadata store did not answer %s %s: %s",
        request.method,
        request.url.path,
        redact(str(exc.orig).strip()),
    )
    body = {
        "status": 503,
        "code": "store_unavailable",
        "message": "the metadata store did not answer; try again in a few seconds",
    }
    return JSONResponse({"error": body}, status_code=503, headers={"Retry-After": "5"})


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    body = {"status": 500, "code": "internal", "message": "internal error; the server log has the details"}
    return JSONResponse({"error": body}, status_code=500)


HANDLERS: tuple[tuple[type[Exception], Any], ...] = (
    (SegmentSyncError, domain_error),
    (RequestValidationError, validation_error),
    (StarletteHTTPException, http_error),
    (OverflowError, out_of_range),
    (DataError, out_of_range),
    (PoolTimeout, store_busy),
    (OperationalError, store_unavailable),
    (Exception, unexpected_error),
)


def install(app: FastAPI) -> None:
    for exc_class, handler in HANDLERS:
        app.add_exception_handler(exc_class, handler)
