"""What adding, importing, updating, unsubscribing and deleting do to a list's subscribers.

Rules (reference §2.5-§2.6, §6): identity is the address, case-insensitively, echoed as first
stored; an address that is not Active is only taken back with ``Resubscribe`` (else 204-208);
``ConsentToTrack`` is mandatory (214/215) and applies to the address on every list of the client.
"""

from __future__ import annotations

import re
from typing import Any, Final

from segmentsync.sandbox.campaign_monitor import errors
from segmentsync.sandbox.campaign_monitor.errors import ApiError
from segmentsync.sandbox.campaign_monitor.fields import apply_values, lower_keys
from segmentsync.sandbox.campaign_monitor.store import (
    ACTIVE,
    ALL_CLIENT_LISTS,
    BOUNCED,
    CONSENT,
    DELETED,
    EMAIL,
    STATE,
    UNCONFIRMED,
    UNSUBSCRIBED,
    MailingList,
    Store,
    Subscriber,
    Suppressed,
)

MAX_IMPORT: Final = 1000
MAX_EMAIL_LENGTH: Final = 254
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN: Final = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
MOBILE: Final = re.compile(r"\+[1-9][0-9]{6,14}")
CONSENT_VALUES: Final = {"yes": "Yes", "no": "No", "unchanged": "Unchanged"}
NOT_TAKEN_BACK: Final = {
    UNSUBSCRIBED: errors.IS_UNSUBSCRIBED,
    DELETED: errors.IS_DELETED,
    BOUNCED: errors.IS_BOUNCED,
    UNCONFIRMED: errors.IS_UNCONFIRMED,
}


class RowFailure(Exception):
    def __init__(self, error: tuple[int, str]) -> None:
        super().__init__(error[1])
        self.code, self.message = error

    def detail(self, address: object) -> dict[str, Any]:
        """The import's ``FailureDetails`` entry, with the address as it was sent."""
        return {
            "EmailAddress": address if isinstance(address, str) else None,
            "Code": self.code,
            "Message": self.message,
        }


def valid_email(raw: object) -> str | None:
    """The address, trimmed, if it is one."""
    if not isinstance(raw, str):
        return None
    email = raw.strip()
    if len(email) > MAX_EMAIL_LENGTH or EMAIL_PATTERN.fullmatch(email) is None:
        return None
    return email


def as_bool(raw: object, what: str) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise errors.not_deserializable(what)


def check_shape(row: dict[str, Any], what: str) -> None:
    """Reject, before anything is stored, a ``CustomFields`` that is not a list of objects."""
    fields = row.get("customfields")
    if fields is not None and not (
        isinstance(fields, list) and all(isinstance(item, dict) for item in fields)
    ):
        raise errors.not_deserializable(what)


def _consent(row: dict[str, Any]) -> str:
    raw = row.get("consenttotrack")
    if raw is None or raw == "":
        raise RowFailure(errors.CONSENT_MISSING)
    consent = CONSENT_VALUES.get(raw.lower()) if isinstance(raw, str) else None
    if consent is None:
        raise RowFailure(errors.CONSENT_INVALID)
    return consent


def _mobile(row: dict[str, Any], email_ok: bool) -> str | None:
    raw = row.get("mobilenumber")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or MOBILE.fullmatch(raw.strip()) is None:
        raise RowFailure(errors.INVALID_MOBILE if email_ok else errors.INVALID_EMAIL_AND_MOBILE)
    return raw.strip()


def suppress(store: Store, client_id: str, email: str, reason: str, now: int) -> None:
    store.clients[client_id].suppression.setdefault(email.lower(), Suppressed(email, reason, now))


def reactivate(
    store: Store, mailing_list: MailingList, key: str, subscriber: Subscriber, now: int
) -> Subscriber:
    """Resubscribe: Active again and off the client's suppression list."""
    store.clients[mailing_list.client_id].suppression.pop(key, None)
    return mailing_list.set_state(key, subscriber, ACTIVE, now)


def upsert(
    store: Store, mailing_list: MailingList, row: dict[str, Any], *, resubscribe: bool, now: int
) -> tuple[bool, Subscriber]:
    """Add or update one subscriber from a lower-keyed row: (created, subscriber). Raises RowFailure."""
    email = valid_email(row.get("emailaddress"))
    if email is None:
        _mobile(row, email_ok=False)
        raise RowFailure(errors.INVALID_EMAIL)
    consent = _consent(row)
    mobile = _mobile(row, email_ok=True)
    key = email.lower()
    if key == email:
        key = email  # one string object for both the key and the address
    if mailing_list.received is not None:
        mailing_list.received[key] = mailing_list.received.get(key, 0) + 1
    subscriber = mailing_list.subscribers.get(key)
    if subscriber is None:
        _admit(store, mailing_list, key, resubscribe=resubscribe)
        state = UNCONFIRMED if mailing_list.confirmed_opt_in else ACTIVE
        subscriber = _updated((email, "", state, consent, now, now, None, None), row, consent, mobile)
        mailing_list.add_subscriber(key, subscriber)
        _apply_rest(store, mailing_list, key, row, consent)
        return True, subscriber
    if subscriber[STATE] != ACTIVE:
        if not resubscribe:
            raise RowFailure(NOT_TAKEN_BACK[subscriber[STATE]])
        subscriber = reactivate(store, mailing_list, key, subscriber, now)
    return False, _apply(store, mailing_list, key, subscriber, row, consent, mobile)


def _admit(store: Store, mailing_list: MailingList, key: str, *, resubscribe: bool) -> None:
    """A new address on the client's suppression list needs ``Resubscribe`` (204), which lifts it."""
    suppression = store.clients[mailing_list.client_id].suppression
    if key in suppression:
        if not resubscribe:
            raise RowFailure(errors.IN_SUPPRESSION_LIST)
        del suppression[key]


def _updated(subscriber: Subscriber, row: dict[str, Any], consent: str, mobile: str | None) -> Subscriber:
    """The subscriber with the row's name, consent and mobile (the same tuple if nothing changes)."""
    email, old_name, state, old_consent, date, joined, old_mobile, old_sms = subscriber
    raw_name = row.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else old_name
    if consent == "Unchanged":
        consent = old_consent
    sms = old_sms
    if mobile is None:
        mobile = old_mobile
    else:
        raw_sms = row.get("consenttosendsms")
        sms = CONSENT_VALUES.get(raw_sms.lower(), sms) if isinstance(raw_sms, str) else sms
    if name == old_name and consent == old_consent and mobile == old_mobile and sms == old_sms:
        return subscriber
    return (email, name, state, consent, date, joined, mobile, sms)


def _apply(
    store: Store,
    mailing_list: MailingList,
    key: str,
    subscriber: Subscriber,
    row: dict[str, Any],
    consent: str,
    mobile: str | None,
) -> Subscriber:
    """Store the row's details for an existing subscriber; fields not mentioned keep their values."""
    changed = _updated(subscriber, row, consent, mobile)
    if changed is not subscriber:
        mailing_list.subscribers[key] = changed
    _apply_rest(store, mailing_list, key, row, consent)
    return changed


def _apply_rest(store: Store, mailing_list: MailingList, key: str, row: dict[str, Any], consent: str) -> None:
    fields = row.get("customfields")
    if fields and mailing_list.field_lookup:
        apply_values(mailing_list.field_lookup, key, fields)
    if consent != "Unchanged":
        _share_consent(store, mailing_list, key, consent)


def _share_consent(store: Store, mailing_list: MailingList, key: str, consent: str) -> None:
    """Consent to track belongs to the address within the client, not to one list."""
    list_ids = store.clients[mailing_list.client_id].list_ids
    if len(list_ids) < 2:
        return
    for list_id in list_ids:
        subscribers = store.lists[list_id].subscribers
        other = subscribers.get(key)
        if other is not None and other[CONSENT] != consent:
            email, name, state, _, date, joined, mobile, sms = other
            subscribers[key] = (email, name, state, consent, date, joined, mobile, sms)


def import_batch(
    store: Store, mailing_list: MailingList, body: dict[str, Any], *, now: int
) -> dict[str, Any]:
    """``POST subscribers/{listid}/import.json``: the ImportResult (failures listed, others stored)."""
    rows = body.get("subscribers")
    if not rows:
        raise errors.bad_request(errors.EMPTY_BATCH)
    if not isinstance(rows, list):
        raise errors.not_deserializable("subscribers")
    if len(rows) > MAX_IMPORT:
        raise errors.bad_request(errors.TOO_MANY_IN_BATCH)
    resubscribe = as_bool(body.get("resubscribe"), "subscribers")
    unique, duplicates = _deduplicate(rows)
    failures: list[dict[str, Any]] = []
    new = existing = 0
    try:
        for row in unique.values():
            try:
                created, _ = upsert(store, mailing_list, row, resubscribe=resubscribe, now=now)
            except RowFailure as failure:
                failures.append(failure.detail(row.get("emailaddress")))
                continue
            new, existing = (new + 1, existing) if created else (new, existing + 1)
    finally:
        mailing_list.touch()
    return {
        "FailureDetails": failures,
        "TotalUniqueEmailsSubmitted": len(unique),
        "TotalExistingSubscribers": existing,
        "TotalNewSubscribers": new,
        "DuplicateEmailsInSubmission": duplicates,
    }


def _deduplicate(rows: list[Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rows by address (case-insensitive; the last occurrence wins) and the repeated addresses."""
    unique: dict[str, dict[str, Any]] = {}
    duplicates: dict[str, str] = {}
    for index, raw in enumerate(rows):
        if not isinstance(raw, dict):
            raise errors.not_deserializable("subscribers")
        row = lower_keys(raw)
        check_shape(row, "subscribers")
        address = row.get("emailaddress")
        if not isinstance(address, str) or not address.strip():
            unique[f"\0{index}"] = row  # no address: its own (failed) row
            continue
        key = address.strip().lower()
        previous = unique.get(key)
        if previous is not None and key not in duplicates:
            duplicates[key] = previous["emailaddress"].strip()
        unique[key] = row
    return unique, list(duplicates.values())


def find(mailing_list: MailingList, raw_email: object, invalid: tuple[int, str]) -> tuple[str, Subscriber]:
    """The subscriber an ``email`` parameter names: Code 1 if it is no address, 203 if not on the list."""
    email = valid_email(raw_email)
    if email is None:
        raise errors.bad_request(invalid)
    key = email.lower()
    subscriber = mailing_list.subscribers.get(key)
    if subscriber is None:
        raise errors.bad_request(errors.NOT_IN_LIST)
    return key, subscriber


def update(
    store: Store, mailing_list: MailingList, old_email: object, row: dict[str, Any], *, now: int
) -> None:
    """``PUT subscribers/{listid}.json?email=``: new address, name, fields, consent; 201/203/211."""
    check_shape(row, "subscriber")
    old_key, subscriber = find(mailing_list, old_email, errors.INVALID_EMAIL)
    new_email = valid_email(row.get("emailaddress"))
    if new_email is None:
        raise errors.bad_request(errors.INVALID_NEW_EMAIL)
    try:
        consent = _consent(row)
        mobile = _mobile(row, email_ok=True)
    except RowFailure as failure:
        raise ApiError(400, failure.code, failure.message) from None
    new_key = new_email.lower()
    if new_key != old_key:
        if new_key in mailing_list.subscribers:
            raise errors.bad_request(errors.ALREADY_SUBSCRIBED)
        subscriber = mailing_list.rekey(old_key, new_key, new_email)
    elif subscriber[EMAIL] != new_email:
        _, name, state, consent_now, date, joined, mobile_now, sms = subscriber
        subscriber = (new_email, name, state, consent_now, date, joined, mobile_now, sms)
        mailing_list.subscribers[new_key] = subscriber
    if subscriber[STATE] != ACTIVE and as_bool(row.get("resubscribe"), "subscriber"):
        subscriber = reactivate(store, mailing_list, new_key, subscriber, now)
    _apply(store, mailing_list, new_key, subscriber, row, consent, mobile)
    mailing_list.touch()


def unsubscribe(store: Store, mailing_list: MailingList, raw_email: object, *, now: int) -> None:
    """Unsubscribed here, and on every list of the client with ``AllClientLists`` (then suppressed)."""
    key, subscriber = find(mailing_list, raw_email, errors.INVALID_EMAIL)
    mailing_list.set_state(key, subscriber, UNSUBSCRIBED, now)
    mailing_list.touch()
    if mailing_list.unsubscribe_setting == ALL_CLIENT_LISTS:
        for other in store.client_lists(mailing_list.client_id):
            found = other.subscribers.get(key)
            if found is not None and found[STATE] in (ACTIVE, UNCONFIRMED):
                other.set_state(key, found, UNSUBSCRIBED, now)
                other.touch()
        suppress(store, mailing_list.client_id, subscriber[EMAIL], "Unsubscribed", now)
    elif mailing_list.add_unsubscribes_to_supp_list:
        suppress(store, mailing_list.client_id, subscriber[EMAIL], "Unsubscribed", now)


def delete(mailing_list: MailingList, raw_email: object, *, now: int) -> None:
    """Deleted: off the list, not suppressed; ``Resubscribe`` brings the address back."""
    key, subscriber = find(mailing_list, raw_email, errors.INVALID_EMAIL)
    mailing_list.set_state(key, subscriber, DELETED, now)
    mailing_list.touch()


def bounce(store: Store, mailing_list: MailingList, raw_email: object, *, now: int) -> None:
    """A hard bounce: Bounced, and on the client's suppression list."""
    key, subscriber = find(mailing_list, raw_email, errors.INVALID_EMAIL)
    mailing_list.set_state(key, subscriber, BOUNCED, now)
    mailing_list.touch()
    suppress(store, mailing_list.client_id, subscriber[EMAIL], "Bounced", now)
