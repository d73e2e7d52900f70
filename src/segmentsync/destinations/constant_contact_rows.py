"""Constant Contact import rows in, per-row outcomes out of an activity's counters.

``prepare`` makes ``contacts_json_import`` rows (the flat import vocabulary: ``email``,
``first_name``, ``last_name`` …, ``cf:<name>``). Emails are validated here because the platform
gives no per-row detail: an address it would count as *correctable* is REJECTED before sending,
so that the counters of the activity can be attributed. Text is trimmed to the platform's limits
(names 50, custom fields 255 characters); custom field values are fitted to their type.

``outcomes`` maps the counters of the finished activity:

* ``cannot_add_to_list_count`` — contacts unsubscribed in the platform: SKIPPED. Which rows they
  are is found in the account's unsubscribed contacts (fetched once, fetched again on mismatch).
* ``error_count`` + ``correctable_count`` — rows the platform refused: REJECTED, attributed to the
  rows our validation found doubtful (addresses over 50 characters, the import schema's limit).
  Refusals left unexplained are logged; the platform does not say which rows they were.
* the rest — NEW or UPDATED by ``attribution.new_rows`` from the number of memberships the batch
  added to the list (measured before and after), or by the run's plan when not measured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from email_validator import EmailNotValidError, validate_email

from segmentsync.destinations.attribution import Prepared, new_rows
from segmentsync.destinations.base import FieldInfo, Member, RowResult
from segmentsync.destinations.field_values import fit, text_of
from segmentsync.destinations.templates import RowTemplate, Sql, Value, fit_sql, notes_sql, sql, text_sql
from segmentsync.emails import plainly_valid
from segmentsync.errors import ConfigError
from segmentsync.outcomes import Outcome

log = logging.getLogger(__name__)

MAX_EMAIL = 80  # the contact resource's limit; longer addresses are never accepted
DOUBTFUL_EMAIL = 50  # the import schema says 50: over it, an address may be refused
MAX_CUSTOM_CHARS = 255
MAX_CUSTOM_FIELDS = 25  # per contact
TEXT_LIMITS = {
    "first_name": 50,
    "last_name": 50,
    "job_title": 50,
    "company_name": 50,
    **dict.fromkeys(("phone", "home_phone", "work_phone", "mobile_phone", "other_phone"), 50),
    **{
        f"{kind}{part}": limit
        for kind in ("", "home_", "work_", "other_")
        for part, limit in (
            ("street", 255),
            ("street2", 255),
            ("city", 50),
            ("state", 50),
            ("zip", 50),
            ("country", 50),
        )
    },
    "anniversary": 10,
}
NUMBER_KEYS = ("birthday_month", "birthday_day")


def unknown_keys(members: Sequence[Member], lookup: Mapping[str, FieldInfo]) -> list[str]:
    keys = {key for member in members for key in member.fields}
    return sorted(
        k for k in keys if k not in TEXT_LIMITS and k not in NUMBER_KEYS and k.casefold() not in lookup
    )


def email_problem(email: str) -> str | None:
    """Why the platform would refuse this address, or None."""
    if len(email) > MAX_EMAIL:
        return f"the address is longer than {MAX_EMAIL} characters"
    if plainly_valid(email):  # the common case, a hundred times cheaper than email-validator
        return None
    if not email.partition("@")[0].isascii():
        return NON_ASCII_LOCAL
    try:
        validate_email(email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def prepare(members: Sequence[Member], lookup: Mapping[str, FieldInfo]) -> Prepared:
    """Import rows; ConfigError if a member names a field the account lacks."""
    missing = unknown_keys(members, lookup)
    if missing:
        raise ConfigError(
            "Constant Contact: the account has no field %(names)s; create it or change the mapping",
            params={"names": ", ".join(missing)},
            code="unknown_field",
            details={"fields": missing},
        )
    prepared = Prepared()
    for index, member in enumerate(members):
        problem = email_problem(member.email)
        if problem:
            prepared.early[index] = RowResult(member.email, Outcome.REJECTED, "invalid_email", problem)
            continue
        row, notes = _row(member, lookup)
        prepared.rows.append(row)
        prepared.sent.append(index)
        if notes:
            prepared.notes[index] = "; ".join(notes)
    return prepared


def _row(member: Member, lookup: Mapping[str, FieldInfo]) -> tuple[dict[str, Any], list[str]]:
    row: dict[str, Any] = {"email": member.email}
    notes: list[str] = []
    custom = 0
    for key, value in member.fields.items():
        if value is None:
            continue  # the import never blanks a stored value
        if key in NUMBER_KEYS:
            row[key] = value
            continue
        if key in TEXT_LIMITS:
            text = text_of(value)
            if len(text) > TEXT_LIMITS[key]:
                notes.append(f"{key}: trimmed to {TEXT_LIMITS[key]} characters")
            row[key] = text[: TEXT_LIMITS[key]]
            continue
        info = lookup[key.casefold()]
        fitted = fit(value, info, max_chars=MAX_CUSTOM_CHARS)
        if fitted.note:
            notes.append(fitted.note)
        if not fitted.values:
            continue
        if custom >= MAX_CUSTOM_FIELDS:
            notes.append(f"{info.name}: a contact holds at most {MAX_CUSTOM_FIELDS} custom fields; left out")
            continue
        custom += 1
        row[info.key] = ", ".join(fitted.values)[:MAX_CUSTOM_CHARS]
    return row, notes


def outcomes(
    members: Sequence[Member],
    prepared: Prepared,
    activity: Mapping[str, Any],
    *,
    unsubscribed: Callable[[bool], set[str]],
    added: int | None,
    identify: Callable[[list[int], int], set[int] | None] | None = None,
) -> dict[int, RowResult]:
    """One outcome per row sent. ``unsubscribed(fresh)``: the account's unsubscribed addresses.

    The activity says how many rows it refused, not which. Rows with a doubtful address take the
    refusals first; ``identify(rows, count)`` finds the rest (the destination imports parts of the
    batch again), or answers None when that would cost too much: those refusals stay unattributed.
    """
    status = activity.get("status") or {}
    message = "; ".join(activity.get("activity_errors") or []) or None
    remaining = list(prepared.sent)
    decided: dict[int, RowResult] = {}
    skipped = int(status.get("cannot_add_to_list_count") or 0)
    if skipped:
        found = _unsubscribed_rows(members, remaining, skipped, unsubscribed)
        for index in found:
            decided[index] = RowResult(
                members[index].email,
                Outcome.SKIPPED,
                "unsubscribed",
                "unsubscribed in Constant Contact: not added to the list",
            )
        remaining = [i for i in remaining if i not in found]
    correctable = int(status.get("correctable_count") or 0)
    failed = correctable + int(status.get("error_count") or 0)
    if failed:
        code = "correctable" if correctable else "error"
        doubtful = [i for i in remaining if len(members[i].email) > DOUBTFUL_EMAIL][:failed]
        for index in doubtful:
            decided[index] = RowResult(members[index].email, Outcome.REJECTED, code, message)
        remaining = [i for i in remaining if i not in set(doubtful)]
        unexplained = failed - len(doubtful)
        identified = identify(remaining, unexplained) if identify and unexplained > 0 else None
        for index in identified or ():
            reason = message or "Constant Contact refused this contact without saying why"
            decided[index] = RowResult(members[index].email, Outcome.REJECTED, code, reason)
        if identified is not None:
            remaining = [i for i in remaining if i not in identified]
        elif unexplained > 0:
            log.warning(
                "Constant Contact refused %d rows of a batch without saying which: %s", unexplained, message
            )
    if added is None:
        new = {i for i in remaining if members[i].delivered_before is False}
    else:
        new = new_rows(members, remaining, added)
    for index in remaining:
        note = prepared.notes.get(index)
        outcome = Outcome.NEW if index in new else Outcome.UPDATED
        decided[index] = RowResult(members[index].email, outcome, "fitted" if note else None, note)
    return decided


def _unsubscribed_rows(
    members: Sequence[Member], rows: list[int], count: int, unsubscribed: Callable[[bool], set[str]]
) -> set[int]:
    """The rows among ``rows`` whose address is unsubscribed: one lookup, or two when the kept
    list disagrees with ``count`` (never one per row: each lookup pages the whole list)."""
    known = unsubscribed(False)
    found = {i for i in rows if members[i].email.casefold() in known}
    if len(found) != count:  # someone unsubscribed since we looked: look again
        fresh = unsubscribed(True)
        found = {i for i in rows if members[i].email.casefold() in fresh}
    return found


# ---------------------------------------------------------------- the same rows, rendered in SQL

NON_ASCII_LOCAL = "Constant Contact accepts only ASCII characters before the @-sign"


def template(values: Sequence[tuple[str, Value]], lookup: Mapping[str, FieldInfo]) -> RowTemplate:
    """``prepare``'s rows as SQL over the snapshot (see ``templates``): the run engine's fast path."""
    missing = sorted(
        key
        for key, _ in values
        if key not in TEXT_LIMITS and key not in NUMBER_KEYS and key.casefold() not in lookup
    )
    if missing:
        raise ConfigError(
            "Constant Contact: the account has no field %(names)s; create it or change the mapping",
            params={"names": ", ".join(missing)},
            code="unknown_field",
            details={"fields": missing},
        )
    custom_keys = [key for key, _ in values if key not in TEXT_LIMITS and key not in NUMBER_KEYS]
    if len(custom_keys) > MAX_CUSTOM_FIELDS:
        raise ConfigError(
            "Constant Contact: a contact holds at most %(max)s custom fields; %(count)s are mapped",
            params={"max": MAX_CUSTOM_FIELDS, "count": len(custom_keys)},
            code="too_many_fields",
        )
    row = sql("'{\"email\":' || to_json(email)")
    notes: list[Sql] = []
    for key, value in values:
        present = sql(f"CASE WHEN {value.sql} IS NULL THEN '' ELSE ',' || to_json(?) || ':' || ", key)
        if key in NUMBER_KEYS:
            row = row + sql(" || ") + present + sql(f"CAST(to_json({value.sql}) AS VARCHAR) END")
            continue
        if key in TEXT_LIMITS:
            limit = TEXT_LIMITS[key]
            text = text_sql(value)
            row = row + sql(" || ") + present + sql("to_json(left(") + text + sql(f", {limit})) END")
            notes.append(
                sql(f"CASE WHEN {value.sql} IS NOT NULL AND length(")
                + text
                + sql(f") > {limit} THEN ? END", f"{key}: trimmed to {limit} characters")
            )
            continue
        info = lookup[key.casefold()]
        fitted = fit_sql(value, info, max_chars=MAX_CUSTOM_CHARS)
        notes.append(fitted.note)
        row = (
            row
            + sql(" || CASE WHEN coalesce(len(")
            + fitted.values
            + sql(
                "), 0) = 0 THEN '' ELSE ',' || to_json(?) || ':' || to_json(left(array_to_string(", info.key
            )
            + fitted.values
            + sql(f", ', '), {MAX_CUSTOM_CHARS})) END")
        )
    reject = sql(
        f"CASE WHEN length(email) > {MAX_EMAIL} THEN ? "
        "WHEN NOT regexp_full_match(split_part(email, '@', 1), '[\\x01-\\x7f]*') THEN ? END",
        f"the address is longer than {MAX_EMAIL} characters",
        NON_ASCII_LOCAL,
    )
    return RowTemplate(row=row + sql(" || '}'"), note=notes_sql(notes), reject=reject)
