"""``/oauth2/default/v1/authorize`` (consent page) and ``/oauth2/default/v1/token``."""

from __future__ import annotations

import base64
import binascii
import secrets
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from segmentsync.sandbox.constant_contact.authorize_page import consent_page, error_page
from segmentsync.sandbox.constant_contact.oauth import SCOPES, App, Grant, OAuthError
from segmentsync.sandbox.constant_contact.routing import json_response
from segmentsync.sandbox.constant_contact.state import Emulator

AUTHORIZE_PATH = "/oauth2/default/v1/authorize"
TOKEN_PATH = "/oauth2/default/v1/token"  # noqa: S105  # a URL path, not a secret
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Okta's own answers for a throttled token request and for a body that is not a form
OKTA_RATE_LIMITED = {
    "errorCode": "E0000047",
    "errorSummary": "API call exceeded rate limit due to too many requests.",
    "errorLink": "E0000047",
    "errorCauses": [],
}
OKTA_BAD_CONTENT = {"errorCode": "E0000021", "errorSummary": "Bad request.  Accept and/or Content-Type headers likely do not match supported values.", "errorLink": "E0000021", "errorCauses": []}  # fmt: skip


class _PageError(Exception):
    """Shown on the page: the client or its redirect URI cannot be trusted with a redirect."""


def _check_client(emulator: Emulator, params: dict[str, str]) -> App:
    app = emulator.apps.get(params.get("client_id", ""))
    if app is None:
        raise _PageError("Invalid value for 'client_id' parameter.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or (app.redirect_uris and redirect_uri not in app.redirect_uris):
        raise _PageError(
            "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings."
        )
    return app


def _request_problem(params: dict[str, str]) -> tuple[str, str] | None:
    """An error to send back to the client's redirect URI, if any."""
    if params.get("response_type") != "code":
        return "unsupported_response_type", "The response type is not supported by the authorization server."
    scopes = params.get("scope", "").split()
    if not scopes or not set(scopes) <= SCOPES:
        return "invalid_scope", "One or more scopes are not configured for the authorization server resource."
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method != "S256":
        return "invalid_request", "The code_challenge_method is invalid. Only S256 is supported."
    return None


def _back(params: dict[str, str], **answer: str) -> Response:
    uri = params["redirect_uri"]
    query = answer | ({"state": params["state"]} if "state" in params else {})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{urlencode(query)}", 302)


def authorize_routes(emulator: Emulator) -> list[Route]:
    async def authorize(request: Request) -> Response:
        response = await _authorize(emulator, request)
        emulator.stats.record(f"{request.method} {AUTHORIZE_PATH}", response.status_code)
        return response

    return [Route(AUTHORIZE_PATH, authorize, methods=["GET", "POST"])]


async def _authorize(emulator: Emulator, request: Request) -> Response:
    """GET shows the consent page; the page POSTs the decision back here."""
    if request.method == "GET":
        params = dict(request.query_params)
    else:
        params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    try:
        app = _check_client(emulator, params)
    except _PageError as error:
        return HTMLResponse(error_page(str(error)), 400)
    problem = _request_problem(params)
    if problem is not None:
        return _back(params, error=problem[0], error_description=problem[1])
    if request.method == "GET":
        return HTMLResponse(consent_page(app.name, params, list(emulator.accounts.values())))
    return _decide(emulator, app, params)


def _decide(emulator: Emulator, app: App, params: dict[str, str]) -> Response:
    if params.get("decision") != "approve":
        return _back(
            params,
            error="access_denied",
            error_description="The resource owner or authorization server denied the request.",
        )
    account = emulator.accounts.get(params.get("account_id", ""))
    if account is None:
        if emulator.accounts:
            return HTMLResponse(error_page("Choose one of the sandbox's accounts."), 400)
        account = emulator.create_account(params.get("account_name") or "Sandbox account")
    grant = Grant(account.account_id, app.client_id, frozenset(params["scope"].split()))
    code = emulator.tokens.new_code(grant, params["redirect_uri"], params.get("code_challenge") or None)
    return _back(params, code=code)


def token_routes(emulator: Emulator) -> list[Route]:
    async def token(request: Request) -> Response:
        response = await _token(emulator, request)
        emulator.stats.record(f"POST {TOKEN_PATH}", response.status_code)
        return response

    return [Route(TOKEN_PATH, token, methods=["POST"])]


async def _token(emulator: Emulator, request: Request) -> Response:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return json_response(OKTA_BAD_CONTENT | {"errorId": _error_id()}, 400)
    form = dict(request.query_params) | dict(
        parse_qsl((await request.body()).decode(), keep_blank_values=True)
    )
    client_id, secret = _client_credentials(request, form)
    if not emulator.token_limiter.allow_rate(client_id, emulator.limits.token_requests_per_second):
        emulator.stats.count_limited("token_throttled")
        return json_response(OKTA_RATE_LIMITED | {"errorId": _error_id()}, 429)
    try:
        app = emulator.apps.get(client_id)
        if app is None or (secret is not None and not secrets.compare_digest(secret, app.client_secret)):
            raise OAuthError(
                "invalid_client",
                "Client authentication failed. Either the client or the client credentials are invalid.",
                401,
            )
        grant = _grant(emulator, app, secret is not None, form)
    except OAuthError as error:
        body = {"error": error.error, "error_description": error.description}
        return Response(orjson.dumps(body), error.status, headers=NO_STORE, media_type="application/json")
    tokens = emulator.tokens.issue(grant, emulator.limits.access_token_seconds)
    return json_response(tokens, headers=NO_STORE)


def _grant(emulator: Emulator, app: App, authenticated: bool, form: dict[str, str]) -> Grant:
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        if not form.get("code") or not form.get("redirect_uri"):
            raise OAuthError("invalid_request", "The 'code' and 'redirect_uri' parameters are required.")
        return emulator.tokens.redeem_code(app, authenticated, form)
    if grant_type == "refresh_token":
        if not form.get("refresh_token"):
            raise OAuthError("invalid_request", "The 'refresh_token' parameter is required.")
        return emulator.tokens.redeem_refresh(app, form)
    raise OAuthError(
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server. "
        "Configured grant types: [refresh_token, authorization_code].",
    )


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """(client_id, secret): from Basic auth, else from the form (no secret: a public PKCE client)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret")


def _error_id() -> str:
    return "oae" + secrets.token_urlsafe(16)
