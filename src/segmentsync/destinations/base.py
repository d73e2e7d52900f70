"""The Destination protocol: what the run engine and the services need from a platform client.

One small class per platform implements it (``campaign_monitor.py``, ``constant_contact.py``);
``REGISTRY`` maps a connection type to its class. Destinations are synchronous and thread-safe:
the run engine sends several batches at once from a thread pool, within ``limits``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from segmentsync.destinations.fields import FieldInfo as FieldInfo  # re-exported: part of the protocol
from segmentsync.destinations.fields import FieldType as FieldType
from segmentsync.destinations.templates import RowTemplate, Value
from segmentsync.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class Member:
    """One member to upsert, already validated and normalised (lower-case email).

    ``fields`` maps a destination field to its value:
    Campaign Monitor: ``"Name"`` and custom field keys (``"[City]"``, brackets optional);
    Constant Contact: ``"first_name"``, ``"last_name"`` and ``"cf:<name>"`` custom fields.
    A list value is a multi-select (several options).
    """

    email: str
    fields: Mapping[str, str | int | float | bool | list[str] | None] = field(default_factory=dict)
    consent_to_track: str | None = None  # Campaign Monitor: "Yes" | "No" | "Unchanged"
    # The run's plan: True if this export delivered the member before ("changed"), False if not
    # ("new"), None if unknown. The platforms report new/existing only as totals per batch (or not
    # at all); this hint lets a destination attribute NEW/UPDATED per row (docs/destinations.md).
    delivered_before: bool | None = None


@dataclass(frozen=True, slots=True)
class RowResult:
    """The outcome of one member in a batch; ``code``/``message`` are the platform's."""

    email: str
    outcome: Outcome  # NEW, UPDATED, REMOVED, REJECTED or SKIPPED
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    max_batch_rows: int
    max_batch_bytes: int | None  # of the serialised request body; None: no byte limit
    concurrency: int  # batches in flight at first
    requests_per_second: float | None  # None: no fixed rate (adaptive to 429s / headers)
    max_concurrency: int | None = None  # grown towards while the platform keeps up; None: fixed


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Who the credentials belong to (shown on the connection)."""

    account_id: str
    name: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListInfo:
    list_id: str
    name: str
    member_count: int | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """Decrypted credentials of a connection. Only the fields of its auth method are set."""

    api_key: str | None = None  # Campaign Monitor API key (HTTP Basic)
    client_id: str | None = None  # Campaign Monitor client ID the key/token works for
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    oauth_client_id: str | None = None  # the OAuth application's id and secret (token refresh)
    oauth_client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class TokenSet:
    """New OAuth tokens after a refresh; the caller must persist them before using them."""

    access_token: str
    refresh_token: str
    expires_at: datetime


# Called with fresh tokens after a refresh. It must persist them atomically (a Constant Contact
# refresh token is single-use: losing the new one kills the connection) and may raise to stop.
OnTokens = Callable[[TokenSet], None]


@dataclass(frozen=True, slots=True)
class RenderedBatch:
    """Rows rendered by the destination's own ``row_template`` (the run engine's fast path)."""

    emails: Sequence[str]
    rows: Sequence[str]  # each row's JSON, exactly as the template rendered it
    planned_new: Sequence[bool]  # the run's plan: True never delivered (NEW), False delivered (UPDATED)


class Destination(Protocol):
    type: str
    limits: Limits

    def verify(self) -> AccountInfo:
        """Check the credentials against the platform; ConfigError with its message if bad."""
        ...

    def pushback(self) -> int:
        """How many answers so far asked us to slow down (429, 5xx, timeouts, dropped
        connections): the sender halves the batches in flight when this grows."""
        ...

    def lists(self) -> list[ListInfo]:
        """The lists these credentials can see (for the list picker)."""
        ...

    def describe_list(self, list_id: str) -> ListInfo:
        """Name and member count; ConfigError if the list does not exist or is not visible."""
        ...

    def custom_fields(self, list_id: str) -> list[FieldInfo]: ...

    def create_custom_field(
        self, list_id: str, name: str, type: FieldType, *, options: Sequence[str] = ()
    ) -> FieldInfo:
        """Create a custom field; ``options`` for select types. Conflict if the name is taken."""
        ...

    def upsert(
        self, list_id: str, members: Sequence[Member], *, resubscribe: bool = False
    ) -> list[RowResult]:
        """Add or update one batch (within ``limits``); one RowResult per member, same order.

        Raises ConfigError (credentials, list), QuotaExceeded, Retriable (retries used up) or
        Fatal. A partial rejection by the platform is not an error: those rows are REJECTED.
        """
        ...

    def row_template(
        self, list_id: str, values: Sequence[tuple[str, Value]], *, consent: Value | None = None
    ) -> RowTemplate:
        """How this list's import rows are rendered in SQL from the mapped ``values`` (field →
        value column), the same rows ``upsert`` would build (see ``templates``). ConfigError if
        a field does not exist on the list."""
        ...

    def upsert_rows(
        self, list_id: str, batch: RenderedBatch, *, resubscribe: bool = False
    ) -> dict[int, RowResult]:
        """``upsert`` for rows from ``row_template``. Returns only the rows (by position) that did
        not end as planned — NEW when ``planned_new``, else UPDATED, with no message."""
        ...

    def remove(self, list_id: str, emails: Sequence[str], *, mode: str = "delete") -> list[RowResult]:
        """Take members out of the list (mirror mode): ``mode`` "delete" or "unsubscribe"."""
        ...

    def close(self) -> None: ...
