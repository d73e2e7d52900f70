"""A row of a run's plan, as it goes from the workspace to the sender and into ``run_members``.

One type end to end: :func:`plan.planned_rows` makes them (straight from the workspace's
columns), the runner hands the rows to send to the sender's feed or stores the rest
(``bulk.insert_members``), the sender reads stored ones back (``send.pending``) and its
checkpoint stores the sent ones with their outcomes. A ``NamedTuple``: a million are made per
run, each as cheaply as a tuple, and a DBAPI driver takes it as one.

The SQL that reads or writes these rows names actions and outcomes through :func:`literal` and
:func:`one_of`, built from the enums, never as hand-copied strings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from segmentsync.exports.models import MemberAction, Outcome


class PlanRow(NamedTuple):
    run_id: int
    seq: int  # the row's place in the run's plan (batches are contiguous ranges of it)
    email: str
    profile_key: str | None
    hash: str | None  # of the mapped fields; None on rows that are not sent
    payload: str | None  # the platform's JSON for the row, rendered by the destination's template
    action: str  # a MemberAction's value
    outcome: str | None  # an Outcome's value; None until the row is sent
    code: str | None  # why (invalid, refused) or what the plan noted (a value fitted to the platform)
    message: str | None


COLUMNS = PlanRow._fields  # run_members' columns, in this order

# What a row's action becomes once the platform took it as planned (keyed by the enum, looked up
# by a row's plain ``action`` string: a StrEnum hashes and compares as its value).
EXPECTED: dict[MemberAction | str, Outcome] = {
    MemberAction.NEW: Outcome.NEW,
    MemberAction.UPDATE: Outcome.UPDATED,
    MemberAction.REMOVE: Outcome.REMOVED,
}
UPSERTS = (MemberAction.NEW, MemberAction.UPDATE)


def literal(value: StrEnum) -> str:
    """An enum's value as a SQL string literal (our own enums' values: letters and underscores)."""
    text = value.value
    if not text.replace("_", "").isalnum():
        raise ValueError(f"not a plain word: {text!r}")
    return f"'{text}'"


def one_of(*values: StrEnum) -> str:
    """``'a', 'b'``: the values, for ``IN (…)``."""
    return ", ".join(literal(value) for value in values)


TO_SEND = f"action IN ({one_of(*UPSERTS)})"  # the rows to upsert (removals are sent apart)
