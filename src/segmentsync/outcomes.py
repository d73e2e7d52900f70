"""What became of a member in a run: the platform's answer for its row, or the run's own verdict.

A leaf module: the destinations answer with it (``destinations.base.RowResult``) and the run's
rows store it (``exports.models.RunMember.outcome``), without either importing the other.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    INVALID = "invalid"  # caught before sending: no email, bad syntax, duplicate
    REJECTED = "rejected"  # refused by the platform, with its code and message
    SKIPPED = "skipped"  # e.g. unsubscribed in the platform
