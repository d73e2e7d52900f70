"""Cutting members into batches that respect a destination's limits (rows and bytes).

``pack`` is pure and streaming: members in, batches out, order kept, nothing lost or repeated.
The byte size of a row is an upper bound of what the destinations put on the wire for it
(every value as a JSON string, multi-selects as arrays), so a batch that fits here fits there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

import orjson

from segmentsync.destinations.base import Limits, Member

T = TypeVar("T")

# Room for the body around the rows: {"import_data":[…],"list_ids":["<uuid>"]} and the like.
ENVELOPE_BYTES = 1024


def member_bytes(member: Member) -> int:
    """Serialized size of one row, plus its separating comma."""
    row: dict[str, object] = {"email": member.email}
    for key, value in member.fields.items():
        row[key] = (
            [str(v) for v in value] if isinstance(value, list) else ("" if value is None else str(value))
        )
    return len(orjson.dumps(row)) + 1


def pack(
    members: Iterable[Member],
    limits: Limits,
    *,
    row_bytes: Callable[[Member], int] = member_bytes,
    envelope_bytes: int = ENVELOPE_BYTES,
) -> Iterator[list[Member]]:
    """Batches of at most ``limits.max_batch_rows`` rows and ``limits.max_batch_bytes`` bytes.

    A single row larger than the byte limit on its own is yielded alone (the destination
    rejects it); every other batch is within both limits.
    """
    budget = None if limits.max_batch_bytes is None else limits.max_batch_bytes - envelope_bytes
    return chunk(members, max_rows=limits.max_batch_rows, max_bytes=budget, size=row_bytes)


def chunk(
    items: Iterable[T], *, max_rows: int, max_bytes: int | None, size: Callable[[T], int]
) -> Iterator[list[T]]:
    """``pack`` for anything with a size: at most ``max_rows`` items and ``max_bytes`` bytes."""
    if max_bytes is None:  # rows only: sliced in C, not weighed one by one
        rest = iter(items)
        while sliced := list(islice(rest, max(1, max_rows))):
            yield sliced
        return
    batch: list[T] = []
    used = 0
    for item in items:
        extra = size(item)
        full = len(batch) >= max_rows or used + extra > max_bytes
        if batch and full:
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += extra
    if batch:
        yield batch
