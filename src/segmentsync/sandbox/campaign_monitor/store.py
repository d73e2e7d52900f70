"""The emulator's data: clients, lists, subscribers, custom-field values, suppression lists.

Built for millions of subscribers: a subscriber is one small tuple with shared, interned state
strings and shared per-request timestamps; custom-field values live per field (only the
subscribers that have a value pay for it). Subscribers are keyed by their lower-cased address, and
keep the address as it was first stored.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Final, NamedTuple

from segmentsync.sandbox.campaign_monitor.fields import CustomField

ACTIVE: Final = "Active"
UNCONFIRMED: Final = "Unconfirmed"
UNSUBSCRIBED: Final = "Unsubscribed"
BOUNCED: Final = "Bounced"
DELETED: Final = "Deleted"
STATES: Final = (ACTIVE, UNCONFIRMED, UNSUBSCRIBED, BOUNCED, DELETED)

ALL_CLIENT_LISTS: Final = "AllClientLists"
ONLY_THIS_LIST: Final = "OnlyThisList"


def new_id() -> str:
    """32 lower-case hex characters, like every CM ID."""
    return secrets.token_hex(16)


@lru_cache(maxsize=4096)
def format_time(seconds: int) -> str:
    """CM's ``YYYY-MM-DD HH:MM:SS`` (account time zone: the sandbox uses UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


# One address on one list: (email, name, state, consent, date, joined, mobile, sms), read with the
# indexes below. ``date``: last state change; ``joined``: first added (epoch seconds).
# A plain tuple, not an object nor a NamedTuple: the cyclic garbage collector stops tracking exact
# tuples of strings and ints, so millions of them cost no GC pauses (a full collection over 2M
# ``__slots__`` objects took ~0.6 s). Changing a subscriber stores a new tuple under the same key.
Subscriber = tuple[str, str, str, str, int, int, str | None, str | None]
EMAIL: Final = 0
NAME: Final = 1
STATE: Final = 2
CONSENT: Final = 3
DATE: Final = 4
JOINED: Final = 5
MOBILE: Final = 6
SMS: Final = 7


def with_state(subscriber: Subscriber, state: str, now: int) -> Subscriber:
    email, name, _, consent, _, joined, mobile, sms = subscriber
    return (email, name, state, consent, now, joined, mobile, sms)


class MailingList:
    """A subscriber list ("list" is a builtin, hence the name)."""

    def __init__(
        self,
        *,
        list_id: str,
        client_id: str,
        title: str,
        unsubscribe_page: str = "",
        confirmed_opt_in: bool = False,
        confirmation_success_page: str = "",
        unsubscribe_setting: str = ALL_CLIENT_LISTS,
    ) -> None:
        self.list_id = list_id
        self.client_id = client_id
        self.title = title
        self.unsubscribe_page = unsubscribe_page
        self.confirmed_opt_in = confirmed_opt_in
        self.confirmation_success_page = confirmation_success_page
        self.unsubscribe_setting = unsubscribe_setting
        self.add_unsubscribes_to_supp_list = False
        self.scrub_active_with_supp_list = False
        self.subscribers: dict[str, Subscriber] = {}
        self.fields: dict[str, CustomField] = {}  # by key, in creation order
        self.field_lookup: dict[str, CustomField] = {}  # "[key]", "key", field name; lower-cased
        self.counts: dict[str, int] = dict.fromkeys(STATES, 0)
        self.events: dict[tuple[str, int], int] = {}  # (state entered, day number) -> how many
        self.version = 0  # bumped by every change; paged listings cache their sort on it
        self.sorted_cache: dict[tuple[object, ...], list[tuple[str, Subscriber]]] = {}
        # Times each address reached this list through the API, once a test asks to count
        # (``POST /_sandbox/lists/{id}/received``); None: not counted (nothing to pay at 2M).
        self.received: dict[str, int] | None = None

    def touch(self) -> None:
        self.version += 1
        if self.sorted_cache:
            self.sorted_cache.clear()

    def add_subscriber(self, key: str, subscriber: Subscriber) -> None:
        self.subscribers[key] = subscriber
        self.counts[subscriber[STATE]] += 1
        self._event(subscriber[STATE], subscriber[DATE])

    def set_state(self, key: str, subscriber: Subscriber, state: str, now: int) -> Subscriber:
        if subscriber[STATE] == state:
            return subscriber
        self.counts[subscriber[STATE]] -= 1
        self.counts[state] += 1
        changed = self.subscribers[key] = with_state(subscriber, state, now)
        self._event(state, now)
        return changed

    def _event(self, state: str, now: int) -> None:
        day = now // 86400
        self.events[state, day] = self.events.get((state, day), 0) + 1

    def rebuild_field_lookup(self) -> None:
        lookup: dict[str, CustomField] = {}
        for field in self.fields.values():
            bare = field.key[1:-1]
            for alias in (field.key, bare, field.name):
                lookup.setdefault(alias.lower(), field)
        self.field_lookup = lookup

    def rekey(self, old_key: str, new_key: str, new_email: str) -> Subscriber:
        """An update changed the address: move the subscriber and its field values."""
        _, name, state, consent, date, joined, mobile, sms = self.subscribers.pop(old_key)
        subscriber = (new_email, name, state, consent, date, joined, mobile, sms)
        self.subscribers[new_key] = subscriber
        for field in self.fields.values():
            if old_key in field.values:
                field.values[new_key] = field.values.pop(old_key)
        return subscriber


class Suppressed(NamedTuple):
    email: str
    reason: str
    date: int


class Client:
    def __init__(self, *, client_id: str, name: str, api_key: str) -> None:
        self.client_id = client_id
        self.name = name
        self.api_key = api_key
        self.list_ids: list[str] = []
        self.suppression: dict[str, Suppressed] = {}  # by lower-cased address


class Store:
    """Every client and list of the sandbox's one account."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.lists: dict[str, MailingList] = {}
        self.api_keys: dict[str, str] = {}  # API key -> client ID

    def create_client(self, name: str) -> Client:
        client = Client(client_id=new_id(), name=name, api_key=secrets.token_urlsafe(32))
        self.clients[client.client_id] = client
        self.api_keys[client.api_key] = client.client_id
        return client

    def add_list(self, mailing_list: MailingList) -> None:
        self.lists[mailing_list.list_id] = mailing_list
        self.clients[mailing_list.client_id].list_ids.append(mailing_list.list_id)

    def delete_list(self, mailing_list: MailingList) -> None:
        del self.lists[mailing_list.list_id]
        self.clients[mailing_list.client_id].list_ids.remove(mailing_list.list_id)

    def client_lists(self, client_id: str) -> Iterator[MailingList]:
        for list_id in self.clients[client_id].list_ids:
            yield self.lists[list_id]
