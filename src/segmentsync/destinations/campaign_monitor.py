"""Campaign Monitor API v3.3 behind the ``Destination`` protocol.

* Auth: an API key (HTTP Basic, the key as user name, password "x") or OAuth 2 Bearer tokens,
  refreshed on Code 121 or shortly before they expire (``auth.BearerAuth``).
* Upsert: ``POST subscribers/{list}/import.json``, 1,000 rows per call; a 201 or a 400 Code 210
  carries the per-row result (``campaign_monitor_rows``). Resubscribe and both autoresponder
  flags are off unless asked. Rows throttled per subscriber (Code 429) are sent again later.
* Remove: ``DELETE subscribers/{list}.json?email=`` (or ``unsubscribe.json``), one call per
  email, several at once from a small thread pool, paced like every other request.
* Pacing: ``X-RateLimit-*`` headers are followed (``ratelimit.HeaderPacer``); a 429 pauses every
  thread of this destination for ``X-RateLimit-Reset`` seconds, or briefly without the header.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx
import orjson

import segmentsync.destinations.campaign_monitor_rows as rows
from segmentsync.destinations.api_client import (
    ApiClient,
    RowsRejected,
    json_of,
    new_http_client,
    rate_limit_headers_wait,
)
from segmentsync.destinations.attribution import Prepared, unplanned
from segmentsync.destinations.auth import Auth, BasicAuth, BearerAuth
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
from segmentsync.destinations.batching import pack
from segmentsync.destinations.oauth import CampaignMonitorOAuth
from segmentsync.destinations.policy import CAMPAIGN_MONITOR, Tuning
from segmentsync.destinations.ratelimit import Clock, HeaderPacer, Sleep
from segmentsync.destinations.shared_limits import LimitStore
from segmentsync.destinations.templates import RowTemplate, Value
from segmentsync.errors import ConfigError, Conflict, Invalid
from segmentsync.outcomes import Outcome

TITLE = "Campaign Monitor"
DATA_TYPES = {
    "Text": FieldType.TEXT,
    "Number": FieldType.NUMBER,
    "Date": FieldType.DATE,
    "MultiSelectOne": FieldType.SELECT_ONE,
    "MultiSelectMany": FieldType.SELECT_MANY,
}
CREATE_TYPES = {kind: name for name, kind in DATA_TYPES.items()}
REMOVE_WORKERS = 8  # removal calls in flight per destination (one email per call)
THROTTLE_ROUNDS = 3  # times a throttled row is sent again before it counts as rejected


class CampaignMonitor:
    type = CAMPAIGN_MONITOR
    # No published rate for list imports: start with 4 in flight, grow to 16 while no answer asks
    # us to slow down (429, 5xx), halve when one does (see engine/send.py, Window).
    limits = Limits(
        max_batch_rows=1000, max_batch_bytes=None, concurrency=4, requests_per_second=None, max_concurrency=16
    )

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
        limit_store: LimitStore | None = None,  # unused: the platform announces its limits in headers
    ) -> None:
        self._tuning = tuning = tuning or Tuning()
        self._sleep = sleep
        self._client_id = credentials.client_id
        self._oauth = CampaignMonitorOAuth(
            oauth_url, transport=transport, tuning=tuning, clock=clock, sleep=sleep
        )
        self._pacer = HeaderPacer(clock=clock, sleep=sleep)
        self.api = ApiClient(
            platform=CAMPAIGN_MONITOR,
            title=TITLE,
            base_url=api_url,
            http=new_http_client(
                transport,
                timeout=tuning.timeout,
                connections=REMOVE_WORKERS + (self.limits.max_concurrency or 4),
            ),
            auth=self._auth(credentials, on_tokens, clock),
            limiter=self._pacer,
            tuning=tuning,
            clock=clock,
            observe=self._pacer.observe,
            rate_wait=rate_limit_headers_wait(tuning.short_rate_wait),
        )
        self._fields: dict[str, dict[str, FieldInfo]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _auth(self, credentials: Credentials, on_tokens: OnTokens | None, clock: Clock) -> Auth:
        if credentials.api_key:
            return BasicAuth(credentials.api_key)
        if not credentials.access_token:
            raise ConfigError(
                "%(platform)s: the connection has neither an API key nor an OAuth token",
                params={"platform": TITLE},
            )
        return BearerAuth(
            access_token=credentials.access_token,
            refresh_token=credentials.refresh_token,
            expires_at=credentials.expires_at,
            refresher=self._oauth.refresh,
            on_tokens=on_tokens,
            clock=clock,
            margin=self._tuning.refresh_margin,
            platform=TITLE,
        )

    # ------------------------------------------------------------------ account and lists

    def _get(self, path: str, **params: Any) -> Any:
        return json_of(self.api.request("GET", path, params=params or None))

    def pushback(self) -> int:
        return self.api.pushback

    def verify(self) -> AccountInfo:
        clients = self._get("/clients.json") or []
        if self._client_id is None and len(clients) == 1:
            self._client_id = clients[0]["ClientID"]
        for client in clients:
            if client["ClientID"] == self._client_id:
                return AccountInfo(
                    account_id=client["ClientID"], name=client["Name"], details={"clients": len(clients)}
                )
        choices = [{"client_id": c["ClientID"], "name": c["Name"]} for c in clients]
        if self._client_id is None:
            raise ConfigError(
                "%(platform)s: these credentials see %(count)s clients; choose one by its client ID",
                params={"platform": TITLE, "count": len(clients)},
                code="choose_client",
                field="client_id",
                details={"clients": choices},
            )
        raise ConfigError(
            "%(platform)s: client %(client_id)s is not visible with these credentials",
            params={"platform": TITLE, "client_id": self._client_id},
            code="unknown_client",
            field="client_id",
            details={"clients": choices},
        )

    def lists(self) -> list[ListInfo]:
        if self._client_id is None:
            self.verify()
        found = self._get(f"/clients/{self._client_id}/lists.json") or []
        return [ListInfo(list_id=item["ListID"], name=item["Name"]) for item in found]

    def describe_list(self, list_id: str) -> ListInfo:
        details = self._get(f"/lists/{quote(list_id)}.json")
        stats = self._get(f"/lists/{quote(list_id)}/stats.json")
        return ListInfo(
            list_id=details["ListID"], name=details["Title"], member_count=stats["TotalActiveSubscribers"]
        )

    def custom_fields(self, list_id: str) -> list[FieldInfo]:
        found = self._get(f"/lists/{quote(list_id)}/customfields.json") or []
        fields = [
            FieldInfo(
                key=item["Key"],
                name=item["FieldName"],
                type=DATA_TYPES.get(item["DataType"], FieldType.OTHER),
                options=tuple(item.get("FieldOptions") or ()),
            )
            for item in found
        ]
        with self._lock:
            self._fields[list_id] = rows.field_lookup(fields)
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
        body = {
            "FieldName": name,
            "DataType": CREATE_TYPES[type],
            "Options": list(options),
            "VisibleInPreferenceCenter": True,
        }
        try:
            key = json_of(self.api.request("POST", f"/lists/{quote(list_id)}/customfields.json", json=body))
        except RowsRejected as refused:
            error = Conflict if refused.code == "255" else Invalid
            raise error(f"{TITLE}: {refused.message}", field="name") from None
        with self._lock:
            self._fields.pop(list_id, None)
        return FieldInfo(key=key, name=name, type=type, options=tuple(options))

    def _lookup(self, list_id: str, members: Sequence[Member]) -> dict[str, FieldInfo]:
        """The list's fields, fetched once per destination (again if a member names a new one)."""
        with self._lock:
            lookup = self._fields.get(list_id)
        if lookup is None or rows.unknown_keys(members, lookup):
            self.custom_fields(list_id)
            with self._lock:
                lookup = self._fields[list_id]
        return lookup

    # ------------------------------------------------------------------ upsert

    def upsert(
        self, list_id: str, members: Sequence[Member], *, resubscribe: bool = False
    ) -> list[RowResult]:
        results: list[RowResult] = []
        for batch in pack(members, self.limits):
            results += self._upsert_batch(list_id, batch, resubscribe)
        return results

    def _upsert_batch(self, list_id: str, members: Sequence[Member], resubscribe: bool) -> list[RowResult]:
        prepared = rows.prepare(members, self._lookup(list_id, members) if _has_fields(members) else {})
        decided = self._upsert_prepared(list_id, members, prepared, resubscribe)
        return [decided[index] for index in range(len(members))]

    def row_template(
        self, list_id: str, values: Sequence[tuple[str, Value]], *, consent: Value | None = None
    ) -> RowTemplate:
        self.custom_fields(list_id)  # the list's fields as they are now
        with self._lock:
            lookup = self._fields[list_id]
        return rows.template(values, lookup, consent)

    def upsert_rows(
        self, list_id: str, batch: RenderedBatch, *, resubscribe: bool = False
    ) -> dict[int, RowResult]:
        fragments = [orjson.Fragment(row) for row in batch.rows]
        result = self._import(list_id, fragments, batch.emails, resubscribe)
        if not result.get("FailureDetails") and _as_planned(result, batch):
            return {}  # the common case: every row ended as planned, nothing to look at row by row
        members = [
            Member(email, delivered_before=not new)
            for email, new in zip(batch.emails, batch.planned_new, strict=True)
        ]
        prepared = Prepared(rows=fragments, sent=list(range(len(members))))
        decided = self._upsert_prepared(list_id, members, prepared, resubscribe, first=result)
        return unplanned(decided, batch.planned_new)

    def _upsert_prepared(
        self,
        list_id: str,
        members: Sequence[Member],
        prepared: Prepared,
        resubscribe: bool,
        first: dict[str, Any] | None = None,
    ) -> dict[int, RowResult]:
        decided = self._send_rounds(list_id, members, prepared, resubscribe, first)
        deleted = [i for i, r in decided.items() if r.code == rows.DELETED_CODE and not resubscribe]
        if deleted:  # deleted (our mirror mode, or by hand) is no opt-out: take them back
            back = self._send_rounds(list_id, members, prepared.only(deleted), True)
            for index, result in back.items():
                note = "was deleted in Campaign Monitor: added back"
                done = result.outcome in (Outcome.NEW, Outcome.UPDATED)
                decided[index] = (
                    replace(result, message="; ".join(filter(None, (note, result.message))))
                    if done
                    else result
                )
        return decided

    def _send_rounds(
        self,
        list_id: str,
        members: Sequence[Member],
        prepared: Prepared,
        resubscribe: bool,
        first: dict[str, Any] | None = None,
    ) -> dict[int, RowResult]:
        """Import the prepared rows (``first``: the answer to the first import, if it was made);
        rows throttled per subscriber go again, a few times."""
        decided = dict(prepared.early)
        for round_number in range(THROTTLE_ROUNDS + 1):
            if not prepared.rows:
                break
            if round_number == 0 and first is not None:
                result = first
            else:
                emails = [members[index].email for index in prepared.sent]
                result = self._import(list_id, prepared.rows, emails, resubscribe)
            done, again = rows.outcomes(members, prepared, result)
            decided.update(done)
            prepared = prepared.only(again)
            if prepared.rows and round_number < THROTTLE_ROUNDS:
                self._sleep(self._tuning.short_rate_wait * 2**round_number)
        for index in prepared.sent:  # still throttled after every round
            decided[index] = RowResult(
                members[index].email,
                Outcome.REJECTED,
                str(rows.THROTTLED_CODE),
                "Subscriber was added too many times too quickly, try again later.",
            )
        return decided

    def _import(
        self, list_id: str, subscribers: Sequence[Any], emails: Sequence[str], resubscribe: bool
    ) -> dict[str, Any]:
        """One ``import.json`` call; ``subscribers`` are rows, or rendered rows (orjson fragments)."""
        body = {
            "Subscribers": subscribers,
            "Resubscribe": resubscribe,
            "QueueSubscriptionBasedAutoResponders": False,
            "RestartSubscriptionBasedAutoresponders": False,
        }
        try:
            result: dict[str, Any] = json_of(
                self.api.request("POST", f"/subscribers/{quote(list_id)}/import.json", json=body)
            )
        except RowsRejected as refused:
            data = refused.body.get("ResultData") if isinstance(refused.body, dict) else None
            if refused.code == "210" and isinstance(data, dict):
                return data
            # the whole call was refused: every row of it is rejected with the platform's reason
            failures = [
                {"EmailAddress": email, "Code": refused.code, "Message": refused.message} for email in emails
            ]
            return {"FailureDetails": failures, "TotalNewSubscribers": 0}
        return result

    # ------------------------------------------------------------------ remove

    def remove(self, list_id: str, emails: Sequence[str], *, mode: str = "delete") -> list[RowResult]:
        if mode not in ("delete", "unsubscribe"):
            raise Invalid(
                "%(platform)s: removal mode must be delete or unsubscribe, not %(mode)s",
                params={"platform": TITLE, "mode": repr(mode)},
                field="mode",
            )
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(REMOVE_WORKERS, thread_name_prefix="cm-remove")
            pool = self._pool
        return list(pool.map(lambda email: self._remove_one(list_id, email, mode), emails))

    def _remove_one(self, list_id: str, email: str, mode: str) -> RowResult:
        try:
            if mode == "delete":
                self.api.request("DELETE", f"/subscribers/{quote(list_id)}.json", params={"email": email})
            else:
                self.api.request(
                    "POST", f"/subscribers/{quote(list_id)}/unsubscribe.json", json={"EmailAddress": email}
                )
        except RowsRejected as refused:
            if refused.code == "203":  # not on the list: nothing left to take out
                return RowResult(email, Outcome.REMOVED, refused.code, refused.message)
            return RowResult(email, Outcome.REJECTED, refused.code, refused.message)
        return RowResult(email, Outcome.REMOVED)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.api.close()
        self._oauth.close()


def _as_planned(result: dict[str, Any], batch: RenderedBatch) -> bool:
    """Did the platform count as many new subscribers as the plan expected (all rows accepted)?"""
    planned_new = sum(1 for new in batch.planned_new if new)
    return (
        int(result.get("TotalNewSubscribers") or 0) == planned_new
        and int(result.get("TotalExistingSubscribers") or 0) == len(batch.rows) - planned_new
    )


def _has_fields(members: Sequence[Member]) -> bool:
    return any(key not in ("Name", "name") for member in members for key in member.fields)
