"""``POST /v3/activities/contacts_json_import``: checks when received, effects when processed.

Receiving must be fast (40,000 rows accepted well under a second): the request is parsed and its
structure checked, and only the raw body is kept. Processing re-reads it and applies every row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from segmentsync.sandbox.constant_contact import rows as R
from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.activities import Outcome
from segmentsync.sandbox.constant_contact.errors import bad_request, invalid_list_id
from segmentsync.sandbox.constant_contact.store import DELETED, IMPLICIT, UNSUBSCRIBED, is_uuid

MAX_ROWS = 40_000
# "payload < 4 MB; over it only the first 4 MB is imported": 4,000,000 bytes, the stricter reading
MAX_BYTES = 4_000_000
MAX_LIST_IDS = 50
PHONE_KINDS = {
    "phone": "other",
    "home_phone": "home",
    "work_phone": "work",
    "mobile_phone": "mobile",
    "other_phone": "other",
}
ADDRESS_PARTS = {"street": 255, "street2": 255, "city": 50, "state": 50, "zip": 50, "country": 50}
ADDRESS_KINDS = {"": "home", "home_": "home", "work_": "work", "other_": "other"}
PROFILE_KEYS = frozenset({"job_title", "company_name"})
BASE_KEYS = frozenset({"email", "first_name", "last_name"})
ADDRESS_KEYS = frozenset(
    [prefix + part for prefix in ADDRESS_KINDS for part in ADDRESS_PARTS] + ["home country"]
)
COUNTERS = ("person_count", "error_count", "correctable_count", "cannot_add_to_list_count")


@dataclass(slots=True)
class ImportJob:
    body: bytes
    rows: int  # how many rows are imported (fewer than sent when the body passes 4 MB)
    list_ids: list[str]


def receive(account: Account, body: bytes) -> ImportJob:
    """Check the request; 400 with the platform's array body when it cannot be queued."""
    data = _json_object(body)
    rows = data.get("import_data")
    if not isinstance(rows, list) or not rows:
        raise bad_request("import_data is required and must be a non-empty array.")
    if len(rows) > MAX_ROWS:
        raise bad_request(f"import_data can contain at most {MAX_ROWS} contacts.")
    list_ids = data.get("list_ids")
    if not isinstance(list_ids, list) or not 1 <= len(list_ids) <= MAX_LIST_IDS:
        raise bad_request(f"list_ids is required and must contain 1 to {MAX_LIST_IDS} list IDs.")
    for list_id in list_ids:
        if not is_uuid(list_id):
            raise invalid_list_id("list_ids", list_id)
        if account.live_list(list_id) is None:
            raise bad_request(f"The contact list {list_id} does not exist.")
    if data.get("sms_permission_to_send") not in (None, "explicit", "not_set"):
        raise bad_request("sms_permission_to_send must be explicit or not_set.")
    _check_rows(rows)
    count = len(rows) if len(body) <= MAX_BYTES else _rows_within_limit(data, len(body))
    return ImportJob(body, count, list(dict.fromkeys(list_ids)))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request("The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def _check_rows(rows: list[Any]) -> None:
    """Only the shape: a row's content is judged when it is processed (unknown ``cf:`` keys too)."""
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad_request(f"import_data[{index}] must be an object.")


def _rows_within_limit(data: dict[str, Any], body_size: int) -> int:
    """How many whole rows fit in the first 4 MB (measured on compact JSON, scaled to the body)."""
    rows = data["import_data"]
    rest = {key: value for key, value in data.items() if key != "import_data"}
    scale = body_size / len(orjson.dumps(data))
    used = len(orjson.dumps(rest)) + len('"import_data":[],')
    for count, row in enumerate(rows):
        used += len(orjson.dumps(row)) + 1
        if used * scale > MAX_BYTES:
            return count
    return len(rows)


def apply(account: Account, job: ImportJob) -> Outcome:
    """Create or update every row's contact and add it to the lists (processing the activity)."""
    rows = orjson.loads(job.body)["import_data"][: job.rows]
    _count_received(account, job.list_ids, rows)
    writer = _RowWriter(account, account.list_mask(job.list_ids))  # a list deleted meanwhile is skipped
    counts = dict.fromkeys(COUNTERS, 0)
    problems: dict[str, int] = {}
    for row in rows:
        try:
            outcome = writer.write(row)
        except R.RowProblem as problem:
            problems[problem.reason] = problems.get(problem.reason, 0) + 1
            counts[
                "correctable_count" if R.MESSAGES[problem.reason][0] == R.CORRECTABLE else "error_count"
            ] += 1
            continue
        counts["person_count"] += 1
        if outcome == "unsubscribed":
            counts["cannot_add_to_list_count"] += 1
        elif outcome == "too_many_lists":
            problems["too_many_lists"] = problems.get("too_many_lists", 0) + 1
            counts["error_count"] += 1
    unknown = [
        f"Custom field {name} does not exist: its values were not imported."
        for name in sorted(writer.unknown)
    ]
    return Outcome(counts, R.summary(problems) + unknown)


def _count_received(account: Account, list_ids: list[str], rows: list[Any]) -> None:
    for counts in [account.received[list_id] for list_id in list_ids if list_id in account.received]:
        for row in rows:
            email = str(row.get("email") or "").strip().lower()
            counts[email] = counts.get(email, 0) + 1


class _RowWriter:
    """Applies rows one by one; how to read a row is worked out once per distinct set of keys."""

    def __init__(self, account: Account, mask: int) -> None:
        self.account = account
        self.contacts = account.contacts
        self.mask = mask
        self.now = time.time()
        self.plans: dict[tuple[str, ...], tuple[list[tuple[str, int]], list[str]]] = {}
        self.unknown: set[str] = set()  # cf: keys naming no custom field (their values are skipped)

    def plan(self, row: dict[str, Any]) -> tuple[list[tuple[str, int]], list[str]]:
        """(custom field keys with their slots, other keys beyond email and names)."""
        keys = tuple(row)
        plan = self.plans.get(keys)
        if plan is None:
            by_name = self.account.fields_by_name
            fields = [(key, by_name[key[3:]].slot) for key in keys if key[:3] == "cf:" and key[3:] in by_name]
            self.unknown.update(key for key in keys if key[:3] == "cf:" and key[3:] not in by_name)
            other = [key for key in keys if key[:3] != "cf:" and key not in BASE_KEYS]
            plan = self.plans[keys] = (fields, other)
        return plan

    def write(self, row: dict[str, Any]) -> str:
        email_value = row.get("email")
        if email_value is None and row.get("sms_number"):
            raise R.RowProblem("sms_only")
        email = R.normal_email(email_value)
        contacts = self.contacts
        first = R.text(row.get("first_name"), 50)
        last = R.text(row.get("last_name"), 50)
        i = contacts.by_email.get(email)
        field_keys, other = self.plan(row)
        fields = {slot: text for key, slot in field_keys if (text := R.text(row[key], 255)) is not None}
        if fields and not contacts.fields_fit(i, fields, len(self.account.field_slots)):
            raise R.RowProblem("too_many_fields")
        profile = _profile(row, other, contacts.details[i] if i is not None else None) if other else None
        if i is None:
            i = contacts.append(email, IMPLICIT, 0, self.now)
        else:
            contacts.updated[i] = self.now
            if contacts.flags[i] & DELETED:
                self.account.revive(i)  # "un-delete deleted contacts by adding them to lists"
        contacts.set_profile(i, first, last, fields)
        if profile:
            contacts.details_of(i).update(profile)
        if contacts.permission[i] == UNSUBSCRIBED:
            return "unsubscribed"
        return "ok" if self.account.add_memberships(i, self.mask) else "too_many_lists"


def _profile(row: dict[str, Any], keys: list[str], current: dict[str, Any] | None) -> dict[str, Any]:
    """Job, company, dates, phones, addresses: checked (``RowProblem``) and merged with the contact's."""
    present = set(keys)
    props: dict[str, Any] = {}
    for key in sorted(PROFILE_KEYS & present):
        if (value := R.text(row[key], 50)) is not None:
            props[key] = value
    if "anniversary" in present and (date := R.anniversary(row["anniversary"])) is not None:
        props["anniversary"] = date
    if {"birthday_month", "birthday_day"} & present:
        born = R.birthday(row.get("birthday_month"), row.get("birthday_day"))
        if born is not None:
            props["birthday_month"], props["birthday_day"] = born
    if PHONE_KINDS.keys() & present:
        phones = [
            {"kind": kind, "phone_number": number}
            for key, kind in PHONE_KINDS.items()
            if (number := R.text(row.get(key), 50)) is not None
        ]
        props["phone_numbers"] = R.merge_kinds((current or {}).get("phone_numbers", []), phones)
    if ADDRESS_KEYS & present:
        addresses = [a for prefix, kind in ADDRESS_KINDS.items() if (a := _address(row, prefix, kind))]
        props["street_addresses"] = R.merge_kinds((current or {}).get("street_addresses", []), addresses)
    return props


def _address(row: dict[str, Any], prefix: str, kind: str) -> dict[str, str] | None:
    parts = {part: R.text(row.get(prefix + part), limit) for part, limit in ADDRESS_PARTS.items()}
    if prefix == "home_" and parts["country"] is None:
        parts["country"] = R.text(row.get("home country"), 50)  # the spec's own key has a space
    if not any(parts.values()):
        return None
    street = " ".join(p for p in (parts.pop("street"), parts.pop("street2")) if p)
    address = {"kind": kind, "street": street, "postal_code": parts.pop("zip")} | parts
    return {key: value for key, value in address.items() if value}
