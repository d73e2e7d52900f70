"""Validation of contact properties as the import and sign-up endpoints receive them.

A problem with one contact does not fail the request: the contact is counted as *correctable*
(bad email, bad date, no email; fixable in the product UI) or as an *error* (anything else).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

# "no spaces, no commas/brackets, must contain @ and a complete domain; + allowed" (reference §4)
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
MAX_EMAIL = 80  # the contact resource's limit; the import schema's 50 is a known spec mistake
_DATE_MDY = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})")
_DATE_YMD = re.compile(r"(\d{4})([/-])(\d{1,2})\2(\d{1,2})")

CORRECTABLE = "correctable"
ERROR = "error"

MESSAGES = {
    "invalid_email": (CORRECTABLE, "the email address is not valid"),
    "no_email": (CORRECTABLE, "no email address (minimal contact information is missing)"),
    "bad_date": (CORRECTABLE, "the birthday or anniversary is not a valid date"),
    "sms_only": (ERROR, "contacts with only an SMS number are not supported by the sandbox"),
    "bad_value": (ERROR, "a property value is too long or of the wrong type"),
    "too_many_fields": (ERROR, "a contact can have at most 25 custom fields"),
    "too_many_phones": (ERROR, "a contact can have at most 3 phone numbers and 3 street addresses"),
    "too_many_lists": (ERROR, "a contact can be a member of at most 50 lists"),
}


class RowProblem(Exception):  # a per-contact outcome, not a failure of the request
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normal_email(value: object) -> str:
    """The email as stored (trimmed, lower case); ``RowProblem`` if it is not a valid address."""
    if value is None or value == "":
        raise RowProblem("no_email")
    if not isinstance(value, str):
        raise RowProblem("invalid_email")
    email = value.strip().lower()
    if len(email) > MAX_EMAIL or EMAIL.fullmatch(email) is None:
        raise RowProblem("invalid_email")
    return email


def text(value: object, limit: int) -> str | None:
    """A string property: None if absent or empty (never blanks a stored value)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise RowProblem("bad_value")
    return value


def anniversary(value: object) -> str | None:
    """``YYYY-MM-DD`` from any of the documented formats."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RowProblem("bad_date")
    if match := _DATE_MDY.fullmatch(value):
        month, day, year = match.group(1, 3, 4)
    elif match := _DATE_YMD.fullmatch(value):
        year, month, day = match.group(1, 3, 4)
    else:
        raise RowProblem("bad_date")
    try:
        return dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError as exc:
        raise RowProblem("bad_date") from exc


def birthday(month: object, day: object) -> tuple[int, int] | None:
    """Both or neither; month 1-12, day 1-31."""
    if month is None and day is None:
        return None
    if (
        not (isinstance(month, int) and isinstance(day, int))
        or isinstance(month, bool)
        or isinstance(day, bool)
    ):
        raise RowProblem("bad_date")
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise RowProblem("bad_date")
    return month, day


def merge_kinds(current: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Phone numbers or addresses: a new one replaces the one of the same kind; at most 3."""
    merged = {item["kind"]: item for item in current}
    for item in new:
        merged[item["kind"]] = item
    if len(merged) > 3:
        raise RowProblem("too_many_phones")
    return list(merged.values())


def summary(problems: dict[str, int]) -> list[str]:
    """``activity_errors``: one message per kind of problem (no per-row detail, as the platform)."""
    return [
        f"{count} contact{'s' if count != 1 else ''} not imported: {MESSAGES[reason][1]}."
        if reason != "too_many_lists"
        else f"{count} contact{'s' if count != 1 else ''} not added to the lists: {MESSAGES[reason][1]}."
        for reason, count in problems.items()
    ]
