"""``/v3/account/summary``: who the account belongs to (the ``account_read`` scope)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact.errors import bad_request
from segmentsync.sandbox.constant_contact.routing import Call, Handler, json_response

SCOPE = "account_read"
EXTRA_FIELDS = frozenset({"physical_address", "company_logo"})


async def get_account_summary(call: Call) -> Response:
    extra = call.params.get("extra_fields")
    if extra is not None and not set(extra.split(",")) <= EXTRA_FIELDS:
        raise bad_request("extra_fields must be a comma-separated list of physical_address, company_logo.")
    account = call.account
    body: dict[str, Any] = {
        "encoded_account_id": account.encoded_account_id,
        "organization_name": account.organization_name,
        "contact_email": account.contact_email,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "country_code": "US",
        "state_code": "MA",
        "time_zone_id": "US/Eastern",
    }
    # a sandbox account has neither a physical address nor a logo: extra_fields adds nothing
    return json_response(body)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/v3/account/summary", get_account_summary),
]
