"""The sandbox's consent page (plain HTML, no external assets): pick an account, Approve or Deny."""

from __future__ import annotations

from html import escape

from segmentsync.sandbox.constant_contact.account import Account

AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; color: #1d2b36; }
h1 { font-size: 1.4rem; } .app { font-weight: 600; } ul { padding-left: 1.2rem; }
label, select, input { display: block; margin: .4rem 0; } select, input { width: 100%; padding: .4rem; }
.buttons { display: flex; gap: .8rem; margin-top: 1.2rem; } button { padding: .5rem 1.2rem; font-size: 1rem; }
button[value=approve] { background: #1856ed; color: white; border: 0; border-radius: 4px; }
.note { color: #5a6770; font-size: .85rem; }
"""


def consent_page(app_name: str, params: dict[str, str], accounts: list[Account]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(params[name])}">'
        for name in AUTHORIZE_FIELDS
        if params.get(name) is not None
    )
    scopes = "".join(f"<li>{escape(scope)}</li>" for scope in params.get("scope", "").split())
    if accounts:
        options = "".join(
            f'<option value="{escape(a.account_id)}">{escape(a.name)} ({escape(a.account_id)})</option>'
            for a in accounts
        )
        chooser = f'<label for="account_id">Account</label><select id="account_id" name="account_id">{options}</select>'
    else:
        chooser = (
            '<p class="note">The sandbox has no account yet: approving creates this one.</p>'
            '<label for="account_name">New account name</label>'
            '<input id="account_name" name="account_name" value="Sandbox account">'
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Constant Contact sandbox: authorize</title>
<style>{_STYLE}</style></head><body>
<h1>Constant Contact sandbox</h1>
<p><span class="app">{escape(app_name)}</span> asks for access to your account:</p>
<ul>{scopes}</ul>
<form method="post" action="/oauth2/default/v1/authorize">{hidden}{chooser}
<div class="buttons"><button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></div>
</form>
<p class="note">This page belongs to the local emulator; no real account is involved.</p>
</body></html>"""


def error_page(message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Constant Contact sandbox: error</title>
<style>{_STYLE}</style></head><body><h1>Authorization failed</h1><p>{escape(message)}</p></body></html>"""
