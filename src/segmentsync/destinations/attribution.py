"""New or updated, per row, when a platform only says how many rows were new.

Campaign Monitor's import answers ``TotalNewSubscribers`` for the whole call; for Constant Contact
we measure how many memberships a batch added to the list. ``new_rows`` picks which rows were new:

* total 0 → every accepted row is UPDATED; total ≥ accepted rows → every one is NEW (exact);
* otherwise (a mixed batch) the run's plan decides (``Member.delivered_before``): if the rows it
  planned as new are exactly as many as the total, they are NEW; else NEW goes first to rows
  planned new, then to rows of unknown history, then to the others, in batch order.

Either way the counts of NEW and UPDATED equal what the platform reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segmentsync.destinations.base import Member, RowResult
from segmentsync.outcomes import Outcome


@dataclass
class Prepared:
    """One batch made ready to send: the rows, and what was decided before sending."""

    rows: list[Any] = field(
        default_factory=list
    )  # import rows (dicts, or rendered JSON fragments), in batch order
    sent: list[int] = field(default_factory=list)  # the member index of each row
    early: dict[int, RowResult] = field(default_factory=dict)  # decided before sending
    notes: dict[int, str] = field(default_factory=dict)  # what fitting changed, per member

    def only(self, indexes: Sequence[int]) -> Prepared:
        """The rows of these member indexes only (to send them again)."""
        keep = set(indexes)
        part = Prepared(notes=self.notes)
        for row, index in zip(self.rows, self.sent, strict=True):
            if index in keep:
                part.rows.append(row)
                part.sent.append(index)
        return part


def new_rows(members: Sequence[Member], accepted: Sequence[int], total_new: int) -> set[int]:
    """Which accepted rows count as NEW, given the platform's total (see the module docstring)."""
    unique: dict[str, int] = {}
    for index in accepted:
        unique.setdefault(members[index].email.casefold(), index)
    if total_new <= 0:
        return set()
    if total_new >= len(unique):
        return set(accepted)
    planned_new = [i for i in unique.values() if members[i].delivered_before is False]
    if len(planned_new) == total_new:
        chosen = planned_new
    else:
        rank = {False: 0, None: 1, True: 2}
        ordered = sorted(unique.values(), key=lambda i: (rank[members[i].delivered_before], i))
        chosen = ordered[:total_new]
    emails = {members[i].email.casefold() for i in chosen}
    return {i for i in accepted if members[i].email.casefold() in emails}


def unplanned(decided: Mapping[int, RowResult], planned_new: Sequence[bool]) -> dict[int, RowResult]:
    """The rows that did not end as the run planned (NEW or UPDATED, with no message)."""
    return {
        index: result
        for index, result in decided.items()
        if result.outcome is not (Outcome.NEW if planned_new[index] else Outcome.UPDATED)
        or result.code
        or result.message
    }
