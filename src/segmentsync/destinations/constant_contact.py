"""Constant Contact API v3 behind the ``Destination`` protocol.

* Auth: OAuth 2 Bearer. A 401 (expired and invalid look alike) or an access token about to expire
  triggers one refresh; refresh tokens rotate, so the new pair goes to ``on_tokens`` before use.
* Limits: 4 requests/s and 10,000 requests/day per *application*: one token bucket and one daily
  counter per application key, shared by every process through the metadata store when one is
  given (``shared_limits``), else by every destination in the process (``ratelimit``).
  ``quota_exceeded`` stops everything with ``QuotaExceeded`` until 00:00 UTC.
* Upsert: ``POST activities/contacts_json_import`` (≤ 40,000 rows, < 4 MB), then the activity is
  polled (through the same limiter) until it is final; its counters become per-row outcomes
  (``constant_contact_rows``). Imports into one list are serialized in this process so that the
  list's membership count before and after tells how many rows were new to it.
* Remove: contact ids are resolved by email (per email, or by paging the list's members when
  that is cheaper), then ``POST activities/remove_list_memberships`` with ≤ 500 ids per activity.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
import orjson

import segmentsync.destinations.constant_contact_rows as rows
from segmentsync.destinations.api_client import ApiClient, RowsRejected, json_of, new_http_client
from segmentsync.destinations.attribution import Prepared, unplanned
from segmentsync.destinations.auth import BearerAuth
from segmentsync.destinations.base import (
    AccountInfo,
    Credentials,
    FieldInfo,
    FieldType,
    Limits,
    ListInfo,
    Member,
    OnTokens,
    RenderedBatch,
    RowResult,
)
from segmentsync.destinations.batching import ENVELOPE_BYTES, chunk, pack
from segmentsync.destinations.constant_contact_activities import Activities
from segmentsync.destinations.oauth import ConstantContactOAuth
from segmentsync.destinations.policy import CONSTANT_CONTACT, Tuning
from segmentsync.destinations.ratelimit import Clock, Quota, Sleep, TokenBucket, shared_limits
from segmentsync.destinations.shared_limits import LimitStore, StoreLimits, limit_key
from segmentsync.destinations.templates import RowTemplate, Value
from segmentsync.errors import ConfigError, Conflict, Fatal, Invalid
from segmentsync.outcomes import Outcome

TITLE = "Constant Contact"
log = logging.getLogger(__name__)
REQUESTS_PER_DAY = 10_000
# Imports spent per batch finding rows the platform refused without saying which (see _refused_rows):
# one refused row among 40,000 takes 16; past this the refusals stay unattributed (and logged).
BISECT_IMPORTS = 48
FIELD_TYPES = {
    "string": FieldType.TEXT,
    "text_area": FieldType.TEXT,
    "number": FieldType.NUMBER,
    "currency": FieldType.NUMBER,
    "date": FieldType.DATE,
    "datetime": FieldType.DATE,
    "single_select": FieldType.SELECT_ONE,
    "multi_select": FieldType.SELECT_MANY,
}
CREATE_TYPES = {
    FieldType.TEXT: "string",
    FieldType.NUMBER: "number",
    FieldType.DATE: "date",
    FieldType.SELECT_ONE: "single_select",
    FieldType.SELECT_MANY: "multi_select",
}
REMOVE_IDS = 500  # contact ids per remove_list_memberships activity
PAGE = 500  # contacts per page when listing


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT access token, unverified (only to learn the account and application)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class ConstantContact:
    type = CONSTANT_CONTACT
    limits = Limits(max_batch_rows=40_000, max_batch_bytes=4_000_000, concurrency=2, requests_per_second=4)

    def __init__(
        self,
        *,
        credentials: Credentials,
        api_url: str,
        oauth_url: str,
        on_tokens: OnTokens | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        tuning: Tuning | None = None,
        limit_store: LimitStore | None = None,
    ) -> None:
        if not credentials.access_token:
            raise ConfigError(
                "%(platform)s: the connection has no OAuth token; authenticate it", params={"platform": TITLE}
            )
        tuning = tuning or Tuning()
        self._claims = token_claims(credentials.access_token)
        app_key = credentials.oauth_client_id or str(self._claims.get("cid") or "unknown application")
        rate = tuning.requests_per_second or self.limits.requests_per_second or 4
        limiter: StoreLimits | TokenBucket
        self.quota: Quota
        if limit_store is not None:  # every process of this store shares them
            limiter = self.quota = StoreLimits(
                limit_store, key=limit_key(api_url, app_key), platform=self.type, rate=rate,
                daily=REQUESTS_PER_DAY, sleep=sleep, name=TITLE,
            )  # fmt: skip
        else:
            limiter, self.quota = shared_limits(
                (api_url, app_key), rate=rate, daily=REQUESTS_PER_DAY, clock=clock, sleep=sleep, name=TITLE
            )
        self._oauth = ConstantContactOAuth(
            oauth_url, transport=transport, tuning=tuning, clock=clock, sleep=sleep
        )
        secret = credentials.oauth_client_secret

        def refresher(refresh_token: str) -> Any:
            return self._oauth.refresh(app_key, secret, refresh_token)

        self.auth = BearerAuth(
            access_token=credentials.access_token,
            refresh_token=credentials.refresh_token,
            expires_at=credentials.expires_at or _expiry(self._claims),
            refresher=refresher if credentials.oauth_client_id or "cid" in self._claims else None,
            on_tokens=on_tokens,
            clock=clock,
            margin=tuning.refresh_margin,
            platform=TITLE,
        )
        self.api = ApiClient(
            platform=CONSTANT_CONTACT,
            title=TITLE,
            base_url=api_url,
            http=new_http_client(transport, timeout=tuning.timeout, connections=self.limits.concurrency + 2),
            auth=self.auth,
            limiter=limiter,
            tuning=tuning,
            clock=clock,
            quota=self.quota,
        )
        self._activities = Activities(self.api, tuning=tuning, clock=clock, sleep=sleep)
        self._origin = str(httpx.URL(api_url).copy_with(path="", query=None))
        self._lock = threading.Lock()
        self._list_locks: dict[str, threading.Lock] = {}
        self._fields: dict[str, FieldInfo] | None = None
        self._unsubscribed: set[str] | None = None
        self._members: dict[str, dict[str, str]] = {}  # list id -> email -> contact id

    # ------------------------------------------------------------------ reading

    def _get(self, path: str, **params: Any) -> Any:
        return json_of(self.api.request("GET", path, params=params or None))

    def _pages(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``_links.next.href`` (path-relative)."""
        body = self._get(path, **params)
        while True:
            yield from body.get(key) or []
            href = ((body.get("_links") or {}).get("next") or {}).get("href")
            if not href:
                return
            body = json_of(self.api.request("GET", self._origin + href))

    def pushback(self) -> int:
        return self.api.pushback

    def verify(self) -> AccountInfo:
        """The account as its owner knows it: ``organization_name`` from ``/account/summary``, else
        its contact email, else its id (a token without the ``account_read`` scope: 403)."""
        body = self._get("/contact_lists", limit=1, include_count="true")
        account = str(self._claims.get("platform_user_id") or self._claims.get("sub") or "")
        summary = self._account_summary()
        name = str(summary.get("organization_name") or summary.get("contact_email") or account or TITLE)
        details: dict[str, Any] = {"lists": body.get("lists_count")}
        if summary.get("encoded_account_id"):
            details["encoded_account_id"] = summary["encoded_account_id"]
        return AccountInfo(account_id=account, name=name.strip(), details=details)

    def _account_summary(self) -> dict[str, Any]:
        """``GET /account/summary``, or ``{}`` when the token may not read it (401/403)."""
        try:
            summary = self._get("/account/summary")
        except ConfigError as refused:
            if refused.details.get("status") not in (401, 403):
                raise
            log.info(
                "%s: the account summary is refused (%s); the account is named by its id", TITLE, refused
            )
            return {}
        return summary if isinstance(summary, dict) else {}

    def lists(self) -> list[ListInfo]:
        return [
            _list_info(item)
            for item in self._pages("/contact_lists", "lists", limit=1000, include_membership_count="all")
        ]

    def describe_list(self, list_id: str) -> ListInfo:
        return _list_info(self._get(f"/contact_lists/{quote(list_id)}", include_membership_count="all"))

    def custom_fields(self, list_id: str) -> list[FieldInfo]:
        """The account's custom fields (Constant Contact has them per account, not per list)."""
        fields = [
            FieldInfo(
                key=f"cf:{item['name']}",
                name=item.get("label") or item["name"],
                type=FIELD_TYPES.get(item.get("type", ""), FieldType.OTHER),
                options=tuple(_choice(c) for c in item.get("choices") or ()),
            )
            for item in self._pages("/contact_custom_fields", "custom_fields", limit=100)
        ]
        with self._lock:
            self._fields = {info.key.casefold(): info for info in fields}
        return fields

    def create_custom_field(
        self, list_id: str, name: str, type: FieldType, *, options: Sequence[str] = ()
    ) -> FieldInfo:
        if type not in CREATE_TYPES:
            raise Invalid(
                "%(platform)s has no custom field type %(type)s",
                params={"platform": TITLE, "type": str(type)},
                field="type",
            )
        body: dict[str, Any] = {"label": name, "type": CREATE_TYPES[type]}
        if options:
            body["choices"] = [{"choice_name": option} for option in options]
        try:
            item = json_of(self.api.request("POST", "/contact_custom_fields", json=body))
        except RowsRejected as refused:
            raise Invalid(
                "%(platform)s: %(message)s",
                params={"platform": TITLE, "message": refused.message},
                field="name",
            ) from None
        except Fatal as exc:
            if exc.details.get("status") == 409:
                raise Conflict(
                    "%(platform)s: a custom field named %(name)s exists already",
                    params={"platform": TITLE, "name": repr(name)},
                    field="name",
                ) from exc
            raise
        with self._lock:
            self._fields = None
        return FieldInfo(
            key=f"cf:{item['name']}", name=item.get("label") or name, type=type, options=tuple(options)
        )

    def _lookup(self, members: Sequence[Member]) -> dict[str, FieldInfo]:
        with self._lock:
            lookup = self._fields
        if lookup is None or rows.unknown_keys(members, lookup):
            self.custom_fields("")
            with self._lock:
                lookup = self._fields or {}
        return lookup

    def _unsubscribed_emails(self, fresh: bool) -> set[str]:
        with self._lock:
            known = self._unsubscribed
        if known is None or fresh:
            found = self._pages("/contacts", "contacts", status="unsubscribed", limit=PAGE)
            known = {item["email_address"]["address"].casefold() for item in found}
            with self._lock:
                self._unsubscribed = known
        return known

    # ------------------------------------------------------------------ upsert

    def upsert(
        self, list_id: str, members: Sequence[Member], *, resubscribe: bool = False
    ) -> list[RowResult]:
        """``resubscribe`` is not possible through an import (only the contact can opt in again)."""
        results: list[RowResult] = []
        for batch in pack(members, self.limits):
            results += self._upsert_batch(list_id, batch)
        return results

    def _upsert_batch(self, list_id: str, members: Sequence[Member]) -> list[RowResult]:
        has_fields = any(k.startswith("cf:") for m in members for k in m.fields)
        prepared = rows.prepare(members, self._lookup(members) if has_fields else {})
        sizes = [len(orjson.dumps(row)) + 1 for row in prepared.rows]
        decided = self._upsert_prepared(list_id, members, prepared, sizes)
        return [decided[index] for index in range(len(members))]

    def row_template(
        self, list_id: str, values: Sequence[tuple[str, Value]], *, consent: Value | None = None
    ) -> RowTemplate:
        """``consent`` does not apply: Constant Contact has no consent-to-track field."""
        self.custom_fields(list_id)  # the account's fields as they are now
        with self._lock:
            lookup = self._fields or {}
        return rows.template(values, lookup)

    def upsert_rows(
        self, list_id: str, batch: RenderedBatch, *, resubscribe: bool = False
    ) -> dict[int, RowResult]:
        members = [
            Member(email, delivered_before=not new)
            for email, new in zip(batch.emails, batch.planned_new, strict=True)
        ]
        prepared = Prepared(rows=[orjson.Fragment(row) for row in batch.rows], sent=list(range(len(members))))
        sizes = [len(row.encode()) + 1 for row in batch.rows]
        return unplanned(self._upsert_prepared(list_id, members, prepared, sizes), batch.planned_new)

    def _upsert_prepared(
        self, list_id: str, members: Sequence[Member], prepared: Prepared, sizes: Sequence[int]
    ) -> dict[int, RowResult]:
        planned = all(member.delivered_before is not None for member in members)
        decided = dict(prepared.early)
        budget = self.limits.max_batch_bytes or 0
        sized = list(zip(prepared.rows, prepared.sent, sizes, strict=True))
        for part in chunk(
            sized,
            max_rows=self.limits.max_batch_rows,
            max_bytes=budget - ENVELOPE_BYTES,
            size=lambda item: item[2],
        ):
            sub = Prepared(rows=[r for r, _, _ in part], sent=[i for _, i, _ in part], notes=prepared.notes)
            added: int | None = None
            if planned:  # the run's plan says who is new: batches may run side by side
                activity = self._import(list_id, sub.rows)
            else:  # count the memberships the batch adds, one batch at a time
                with self._list_lock(list_id):
                    before = self.describe_list(list_id).member_count
                    activity = self._import(list_id, sub.rows)
                    after = self.describe_list(list_id).member_count
                added = None if before is None or after is None else max(0, after - before)
            identify = partial(self._refused_rows, list_id, dict(zip(sub.sent, sub.rows, strict=True)))
            decided.update(
                rows.outcomes(
                    members,
                    sub,
                    activity,
                    unsubscribed=self._unsubscribed_emails,
                    added=added,
                    identify=identify,
                )
            )
        return decided

    def _import(self, list_id: str, import_data: Sequence[Any]) -> dict[str, Any]:
        """One JSON import into the list, run until its activity ends."""
        return self._activities.run(
            "/activities/contacts_json_import", {"import_data": import_data, "list_ids": [list_id]}
        )

    def _refused_rows(
        self, list_id: str, sent: Mapping[int, Any], candidates: list[int], count: int
    ) -> set[int] | None:
        """Which ``count`` of ``candidates`` the platform refuses: halves of them are imported again
        (an import only adds or updates, so this changes nothing on the list) until each refused row
        stands alone — about log2(rows) imports per refused row. None past ``BISECT_IMPORTS``."""
        found: set[int] = set()
        groups = [(candidates, count)]
        imports = 0
        while groups:
            group, refused = groups.pop()
            if refused <= 0:
                continue
            if refused >= len(group):
                found.update(group)
                continue
            if imports >= BISECT_IMPORTS:
                log.warning(
                    "Constant Contact refused rows without saying which; not looked for past %d imports",
                    BISECT_IMPORTS,
                )
                return None
            imports += 1
            half, rest = group[: len(group) // 2], group[len(group) // 2 :]
            status = self._import(list_id, [sent[i] for i in half]).get("status") or {}
            in_half = int(status.get("correctable_count") or 0) + int(status.get("error_count") or 0)
            groups += [(half, in_half), (rest, refused - in_half)]
        return found

    def _list_lock(self, list_id: str) -> threading.Lock:
        with self._lock:
            return self._list_locks.setdefault(list_id, threading.Lock())

    # ------------------------------------------------------------------ remove

    def remove(self, list_id: str, emails: Sequence[str], *, mode: str = "delete") -> list[RowResult]:
        """Take the members off the list (``mode`` does not apply: contacts stay in the account)."""
        ids = self._contact_ids(list_id, emails)
        found = [ids[e.casefold()] for e in emails if e.casefold() in ids]
        for part in chunk(found, max_rows=REMOVE_IDS, max_bytes=None, size=len):
            body = {"source": {"contact_ids": part}, "list_ids": [list_id]}
            self._activities.run("/activities/remove_list_memberships", body)
        with self._lock:
            members = self._members.get(list_id)
            for email in emails:
                if members is not None:
                    members.pop(email.casefold(), None)
        return [
            RowResult(email, Outcome.REMOVED)
            if email.casefold() in ids
            else RowResult(email, Outcome.REMOVED, "not_found", "not a member of the list")
            for email in emails
        ]

    def _contact_ids(self, list_id: str, emails: Sequence[str]) -> dict[str, str]:
        """Contact ids by email: one lookup per email, or page the list if that costs less."""
        with self._lock:
            members = self._members.get(list_id)
        if members is None:
            count = self.describe_list(list_id).member_count or 0
            if len(emails) <= math.ceil(count / PAGE):
                return self._lookup_ids(emails)
            members = {
                item["email_address"]["address"].casefold(): item["contact_id"]
                for item in self._pages("/contacts", "contacts", lists=list_id, status="all", limit=PAGE)
            }
            with self._lock:
                self._members[list_id] = members
        return {e.casefold(): members[e.casefold()] for e in emails if e.casefold() in members}

    def _lookup_ids(self, emails: Sequence[str]) -> dict[str, str]:
        ids = {}
        for email in emails:
            found = self._get("/contacts", email=email, status="all").get("contacts") or []
            if found:
                ids[email.casefold()] = found[0]["contact_id"]
        return ids

    def close(self) -> None:
        self.api.close()
        self._oauth.close()


def _list_info(item: dict[str, Any]) -> ListInfo:
    return ListInfo(list_id=item["list_id"], name=item["name"], member_count=item.get("membership_count"))


def _choice(choice: Any) -> str:
    return str(choice.get("choice_name", "")) if isinstance(choice, dict) else str(choice)


def _expiry(claims: dict[str, Any]) -> datetime | None:
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None
