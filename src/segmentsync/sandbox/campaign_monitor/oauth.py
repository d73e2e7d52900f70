"""OAuth 2: the authorize page at ``/oauth`` and the token endpoint ``POST /oauth/token``.

The page lists the sandbox's clients; approving grants the chosen one (or all of them, as an
account administrator would) and redirects back with ``code`` and ``state``.
"""

from __future__ import annotations

from html import escape
from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from segmentsync.sandbox.campaign_monitor.auth import CODE_SECONDS, Grant, OAuthApp, OAuthError, parse_scopes
from segmentsync.sandbox.campaign_monitor.call import json_response
from segmentsync.sandbox.campaign_monitor.state import Emulator

ALL_CLIENTS: Final = "all"
_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Campaign Monitor (sandbox): authorize {app}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}button{{margin-right:1em}}</style></head>
<body><h1>Authorize {app}</h1>
<p><strong>{app}</strong> asks for these permissions: {scopes}.</p>
<form id="authorize" method="post" action="/oauth">
<input type="hidden" name="app_client_id" value="{app_id}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="scope" value="{scope}">
<input type="hidden" name="state" value="{state}">
<label for="client_id">Grant access to</label>
<select id="client_id" name="client_id">{options}</select>
<p><button type="submit" id="approve" name="decision" value="approve">Approve</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button></p>
</form></body></html>
"""


class _PageError(Exception):
    """A problem we cannot send back to the redirect URI (unknown app, bad redirect URI)."""


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


def _app_and_redirect(
    emulator: Emulator, client_id: str | None, redirect_uri: str | None
) -> tuple[OAuthApp, str]:
    app = emulator.oauth.apps.get(client_id or "")
    if app is None:
        raise _PageError("unknown_client: no application is registered with this client_id")
    if not redirect_uri or not redirect_uri.startswith(("http://", "https://")):
        raise _PageError("invalid_redirect_uri: redirect_uri must be an absolute http(s) URL")
    if app.redirect_uri and not redirect_uri.startswith(app.redirect_uri):
        raise _PageError("invalid_redirect_uri: redirect_uri does not match the application's")
    return app, redirect_uri


def _error_page(message: str) -> HTMLResponse:
    body = f"<!doctype html><html><body><h1>Authorization failed</h1><p>{escape(message)}</p></body></html>"
    return HTMLResponse(body, status_code=400)


def _options(emulator: Emulator) -> str:
    options = [
        f'<option value="{escape(client.client_id)}">{escape(client.name)}</option>'
        for client in emulator.store.clients.values()
    ]
    options.append(f'<option value="{ALL_CLIENTS}">All clients (account administrator)</option>')
    return "".join(options)


def authorize_page(emulator: Emulator) -> Route:
    async def endpoint(request: Request) -> Response:
        emulator.count("GET /oauth")
        query = request.query_params
        try:
            app, redirect_uri = _app_and_redirect(emulator, query.get("client_id"), query.get("redirect_uri"))
        except _PageError as error:
            return _error_page(str(error))
        state = query.get("state", "")
        if query.get("type", "web_server") != "web_server":
            return _redirect(redirect_uri, {"error": "invalid_request", "state": state})
        scopes = parse_scopes(query.get("scope", ""))
        if scopes is None:
            return _redirect(redirect_uri, {"error": "unknown_scope", "state": state})
        page = _PAGE.format(
            app=escape(app.name),
            app_id=escape(app.client_id),
            scopes=escape(", ".join(sorted(scopes))),
            scope=escape(",".join(sorted(scopes))),
            redirect_uri=escape(redirect_uri),
            state=escape(state),
            options=_options(emulator),
        )
        return HTMLResponse(page)

    return Route("/oauth", endpoint, methods=["GET"])


def decide(emulator: Emulator) -> Route:
    async def endpoint(request: Request) -> Response:
        emulator.count("POST /oauth")
        form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
        try:
            app, redirect_uri = _app_and_redirect(
                emulator, form.get("app_client_id"), form.get("redirect_uri")
            )
        except _PageError as error:
            return _error_page(str(error))
        state = form.get("state", "")
        scopes = parse_scopes(form.get("scope", ""))
        if form.get("decision") != "approve":
            return _redirect(redirect_uri, {"error": "access_denied", "state": state})
        chosen = form.get("client_id", "")
        if scopes is None or (chosen != ALL_CLIENTS and chosen not in emulator.store.clients):
            return _redirect(redirect_uri, {"error": "invalid_request", "state": state})
        client_ids = None if chosen == ALL_CLIENTS else frozenset((chosen,))
        grant = Grant(app.client_id, client_ids, scopes, redirect_uri, emulator.now() + CODE_SECONDS)
        return _redirect(redirect_uri, {"code": emulator.oauth.grant(grant), "state": state})

    return Route("/oauth", endpoint, methods=["POST"])


def token(emulator: Emulator) -> Route:
    """``authorization_code`` (client_id, client_secret, redirect_uri, code) and ``refresh_token``."""

    async def endpoint(request: Request) -> Response:
        emulator.count("POST /oauth/token")
        form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
        grant_type = form.get("grant_type", "")
        lifetime = emulator.limits.access_token_seconds
        try:
            if grant_type == "authorization_code":
                issued = emulator.oauth.exchange(form, now=emulator.now(), lifetime=lifetime)
            elif grant_type == "refresh_token":
                issued = emulator.oauth.refresh(form, now=emulator.now(), lifetime=lifetime)
            else:
                raise OAuthError(
                    "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
                )
        except OAuthError as error:
            return json_response(error.status, {"error": error.error, "error_description": error.description})
        body = {
            "access_token": issued.access_token,
            "expires_in": lifetime,
            "refresh_token": issued.refresh_token,
        }
        return json_response(200, body)

    return Route("/oauth/token", endpoint, methods=["POST"])
