"""Account, client, list and custom-field endpoints under /api/v3.3."""

from __future__ import annotations

from typing import Final

from segmentsync.sandbox.campaign_monitor import listing, lists
from segmentsync.sandbox.campaign_monitor.call import NO_BODY, Call, Handler, Reply
from segmentsync.sandbox.campaign_monitor.countries import COUNTRIES
from segmentsync.sandbox.campaign_monitor.store import STATES, format_time

ANY: Final = None  # any valid token, whatever its scopes
MANAGE_LISTS: Final = frozenset({"ManageLists"})


async def systemdate(call: Call) -> Reply:
    return 200, {"SystemDate": format_time(call.now())}


async def countries(call: Call) -> Reply:
    return 200, list(COUNTRIES)


async def clients(call: Call) -> Reply:
    visible = [
        client for client in call.emulator.store.clients.values() if call.principal.sees(client.client_id)
    ]
    return 200, [{"ClientID": client.client_id, "Name": client.name} for client in visible]


async def client_lists(call: Call) -> Reply:
    client = call.own_client(call.param("clientid"))
    store = call.emulator.store
    return 200, [{"ListID": list_id, "Name": store.lists[list_id].title} for list_id in client.list_ids]


async def suppression_list(call: Call) -> Reply:
    client = call.own_client(call.param("clientid"))
    query = call.queries()
    page, size = listing.page_params(query)
    entries = sorted(client.suppression.items())
    shown = entries[(page - 1) * size : page * size]
    results = [
        {
            "SuppressionReason": item.reason,
            "EmailAddress": item.email,
            "Date": format_time(item.date),
            "State": "Suppressed",
        }
        for _, item in shown
    ]
    return 200, {
        "Results": results,
        "ResultsOrderedBy": "email",
        "OrderDirection": "asc",
        "PageNumber": page,
        "PageSize": size,
        "RecordsOnThisPage": len(results),
        "TotalNumberOfRecords": len(entries),
        "NumberOfPages": -(-len(entries) // size),
    }


async def create_list(call: Call) -> Reply:
    client = call.own_client(call.param("clientid"))
    mailing_list = lists.create_list(call.emulator.store, client.client_id, await call.body("list"))
    return 201, mailing_list.list_id


async def list_details(call: Call) -> Reply:
    return 200, listing.details(call.own_list(call.param("listid")))


async def update_list(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    lists.update_list(call.emulator.store, mailing_list, await call.body("list"))
    return 200, NO_BODY


async def delete_list(call: Call) -> Reply:
    call.emulator.store.delete_list(call.own_list(call.param("listid")))
    return 200, NO_BODY


async def list_stats(call: Call) -> Reply:
    return 200, listing.stats(call.own_list(call.param("listid")), call.now())


async def custom_fields(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    return 200, [field.to_json() for field in mailing_list.fields.values()]


async def create_field(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    return 201, lists.create_field(mailing_list, await call.body("field")).key


async def update_field(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    return 200, lists.update_field(mailing_list, call.param("key"), await call.body("field")).key


async def update_options(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    lists.update_options(mailing_list, call.param("key"), await call.body("field"))
    return 200, NO_BODY


async def delete_field(call: Call) -> Reply:
    lists.delete_field(call.own_list(call.param("listid")), call.param("key"))
    return 200, NO_BODY


def _by_state(state: str) -> Handler:
    async def handler(call: Call) -> Reply:
        return 200, listing.paged(call.own_list(call.param("listid")), state, call.queries())

    return handler


ROUTES: Final[list[tuple[str, str, Handler, frozenset[str] | None]]] = [
    ("GET", "/systemdate.json", systemdate, ANY),
    ("GET", "/countries.json", countries, ANY),
    ("GET", "/clients.json", clients, ANY),
    ("GET", "/clients/{clientid}/lists.json", client_lists, ANY),
    ("GET", "/clients/{clientid}/suppressionlist.json", suppression_list, MANAGE_LISTS),
    ("POST", "/lists/{clientid}.json", create_list, MANAGE_LISTS),
    ("GET", "/lists/{listid}.json", list_details, MANAGE_LISTS),
    ("PUT", "/lists/{listid}.json", update_list, MANAGE_LISTS),
    ("DELETE", "/lists/{listid}.json", delete_list, MANAGE_LISTS),
    ("GET", "/lists/{listid}/stats.json", list_stats, MANAGE_LISTS),
    ("GET", "/lists/{listid}/customfields.json", custom_fields, MANAGE_LISTS),
    ("POST", "/lists/{listid}/customfields.json", create_field, MANAGE_LISTS),
    ("PUT", "/lists/{listid}/customfields/{key}/options.json", update_options, MANAGE_LISTS),
    ("PUT", "/lists/{listid}/customfields/{key}.json", update_field, MANAGE_LISTS),
    ("DELETE", "/lists/{listid}/customfields/{key}.json", delete_field, MANAGE_LISTS),
    *(("GET", f"/lists/{{listid}}/{state.lower()}.json", _by_state(state), MANAGE_LISTS) for state in STATES),
]
