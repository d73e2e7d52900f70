"""Campaign Monitor import rows in, per-row outcomes out.

``prepare`` turns members into ``import.json`` subscriber rows: the Name and custom fields are
fitted to the list's fields (``field_values.fit``: type-checked, trimmed to 250 characters) and
``ConsentToTrack`` is checked. ``outcomes`` reads the platform's ImportResult (from a 201, or the
``ResultData`` of a 400 Code 210) back into one ``RowResult`` per member.

New or updated: the platform reports ``TotalNewSubscribers`` only as a total per call;
``attribution.new_rows`` picks the rows (exact for batches that are all new or all existing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from segmentsync.destinations.attribution import Prepared, new_rows
from segmentsync.destinations.base import FieldInfo, Member, RowResult
from segmentsync.destinations.field_values import fit, text_of
from segmentsync.destinations.templates import (
    RowTemplate,
    Sql,
    Value,
    fit_sql,
    notes_sql,
    sql,
    text_sql,
)
from segmentsync.errors import ConfigError
from segmentsync.outcomes import Outcome

MAX_CHARS = 250  # "each custom field value has a data limit of 250 characters" (also used for Name)
DATE_RANGE = (date(1900, 1, 1), date(2076, 6, 6))  # dates outside are ignored by the platform
CONSENT = {"yes": "Yes", "no": "No", "unchanged": "Unchanged"}
# FailureDetails codes that mean "the platform keeps this person out on purpose": SKIPPED
SKIP_CODES = {204: "suppressed", 205: "deleted", 206: "unsubscribed", 207: "bounced", 208: "unconfirmed"}
DELETED_CODE = "205"  # deleted is not an opt-out: the row is sent again with Resubscribe
THROTTLED_CODE = 429  # "Subscriber was added too many times too quickly": try that row again later


def field_lookup(fields: Sequence[FieldInfo]) -> dict[str, FieldInfo]:
    """A list's fields by every spelling a member may use: "[City]", "City", field name."""
    lookup: dict[str, FieldInfo] = {}
    for info in fields:
        bare = info.key.strip("[]")
        for spelling in (info.key, bare, info.name):
            lookup.setdefault(spelling.casefold(), info)
    return lookup


def unknown_keys(members: Sequence[Member], lookup: Mapping[str, FieldInfo]) -> list[str]:
    keys = {key for member in members for key in member.fields if key not in ("Name", "name")}
    return sorted(key for key in keys if key.casefold() not in lookup)


def prepare(members: Sequence[Member], lookup: Mapping[str, FieldInfo]) -> Prepared:
    """Import rows for the members; ConfigError if a member names a field the list lacks."""
    missing = unknown_keys(members, lookup)
    if missing:
        raise ConfigError(
            "Campaign Monitor: the list has no custom field %(names)s; create it or change the mapping",
            params={"names": ", ".join(missing)},
            code="unknown_field",
            details={"fields": missing},
        )
    prepared = Prepared()
    for index, member in enumerate(members):
        consent = CONSENT.get((member.consent_to_track or "Unchanged").casefold())
        if consent is None:
            prepared.early[index] = RowResult(
                member.email,
                Outcome.REJECTED,
                "consent_to_track",
                f"ConsentToTrack must be Yes, No or Unchanged, not {member.consent_to_track!r}",
            )
            continue
        row, notes = _row(member, consent, lookup)
        prepared.rows.append(row)
        prepared.sent.append(index)
        if notes:
            prepared.notes[index] = "; ".join(notes)
    return prepared


def _row(member: Member, consent: str, lookup: Mapping[str, FieldInfo]) -> tuple[dict[str, Any], list[str]]:
    row: dict[str, Any] = {"EmailAddress": member.email, "ConsentToTrack": consent}
    custom: list[dict[str, Any]] = []
    notes: list[str] = []
    for key, value in member.fields.items():
        if key in ("Name", "name"):
            name = "" if value is None else text_of(value)
            if len(name) > MAX_CHARS:
                notes.append(f"Name: trimmed to {MAX_CHARS} characters")
            row["Name"] = name[:MAX_CHARS]
            continue
        info = lookup[key.casefold()]
        fitted = fit(value, info, max_chars=MAX_CHARS, date_format="%Y/%m/%d", date_range=DATE_RANGE)
        if fitted.note:
            notes.append(fitted.note)
        if fitted.values is None:
            continue
        bare = info.key.strip("[]")
        if not fitted.values:
            custom.append({"Key": bare, "Value": "", "Clear": True})
        custom.extend({"Key": bare, "Value": text} for text in fitted.values)
    if custom:
        row["CustomFields"] = custom
    return row, notes


def outcomes(
    members: Sequence[Member], prepared: Prepared, result: Mapping[str, Any]
) -> tuple[dict[int, RowResult], list[int]]:
    """Outcomes of the rows sent, and the member indexes to send again later (throttled)."""
    failures = {
        str(item.get("EmailAddress") or "").casefold(): item for item in result.get("FailureDetails") or []
    }
    decided: dict[int, RowResult] = {}
    accepted: list[int] = []
    again: list[int] = []
    for index in prepared.sent:
        member = members[index]
        failure = failures.get(member.email.casefold())
        if failure is None:
            accepted.append(index)
            continue
        code = int(failure.get("Code") or 0)
        message = str(failure.get("Message") or "")
        if code == THROTTLED_CODE:
            again.append(index)
        elif code in SKIP_CODES:
            decided[index] = RowResult(
                member.email, Outcome.SKIPPED, str(code), f"{SKIP_CODES[code]}: {message}"
            )
        else:
            decided[index] = RowResult(member.email, Outcome.REJECTED, str(code), message)
    new = new_rows(members, accepted, int(result.get("TotalNewSubscribers") or 0))
    for index in accepted:
        outcome = Outcome.NEW if index in new else Outcome.UPDATED
        note = prepared.notes.get(index)
        decided[index] = RowResult(members[index].email, outcome, "fitted" if note else None, note)
    return decided, again


# ---------------------------------------------------------------- the same rows, rendered in SQL


def template(
    values: Sequence[tuple[str, Value]], lookup: Mapping[str, FieldInfo], consent: Value | None
) -> RowTemplate:
    """``prepare``'s rows as SQL over the snapshot (see ``templates``): the run engine's fast path."""
    missing = sorted(key for key, _ in values if key not in ("Name", "name") and key.casefold() not in lookup)
    if missing:
        raise ConfigError(
            "Campaign Monitor: the list has no custom field %(names)s; create it or change the mapping",
            params={"names": ", ".join(missing)},
            code="unknown_field",
            details={"fields": missing},
        )
    consent_sql = sql(f"CAST({consent.sql} AS VARCHAR)") if consent else sql("'Unchanged'")
    row = (
        sql("'{\"EmailAddress\":' || to_json(email) || ',\"ConsentToTrack\":' || to_json(")
        + consent_sql
        + sql(")")
    )
    notes: list[Sql] = []
    entries: list[Sql] = []
    for key, value in values:
        if key in ("Name", "name"):
            text = sql("coalesce(") + text_sql(value) + sql(", '')")
            row = row + sql(" || ',\"Name\":' || to_json(left(") + text + sql(f", {MAX_CHARS}))")
            notes.append(
                sql("CASE WHEN length(")
                + text
                + sql(f") > {MAX_CHARS} THEN 'Name: trimmed to {MAX_CHARS} characters' END")
            )
            continue
        info = lookup[key.casefold()]
        fitted = fit_sql(value, info, max_chars=MAX_CHARS, date_format="%Y/%m/%d", date_range=DATE_RANGE)
        notes.append(fitted.note)
        bare = info.key.strip("[]")
        # No value, or an empty multi-select: the field is cleared (as ``_row`` does).
        entries.append(
            sql("CASE WHEN len(")
            + fitted.values
            + sql(") = 0 THEN [json_object('Key', ?, 'Value', '', 'Clear', true)::VARCHAR] ", bare)
            + sql("ELSE list_transform(coalesce(")
            + fitted.values
            + sql(", []::VARCHAR[]), x -> json_object('Key', ?, 'Value', x)::VARCHAR) END", bare)
        )
    if entries:
        custom = entries[0]
        for more in entries[1:]:
            custom = sql("list_concat(") + custom + sql(", ") + more + sql(")")
        row = (
            row
            + sql(" || CASE WHEN len(")
            + custom
            + sql(") > 0 THEN ',\"CustomFields\":[' || array_to_string(")
            + custom
            + sql(", ',') || ']' ELSE '' END")
        )
    return RowTemplate(row=row + sql(" || '}'"), note=notes_sql(notes))
