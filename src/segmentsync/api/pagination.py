"""Pagination for every list endpoint: ``?limit=&offset=`` in, ``{items, total, limit, offset}`` out.

The long lists — runs, a run's rows, the audit log — are also read by key (keyset pagination):
each page answers a ``next_cursor``, and ``?cursor=`` gives the page after it by seeking the
list's index, so the 1,000th page costs what the first does (an offset makes the database walk
past every row before it). Cursors are opaque: the sort key of the page's last item.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from segmentsync import counts
from segmentsync.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1  # beyond any real list; larger values overflow the databases' integers
Key = tuple[Any, ...]


class PageParams(BaseModel):
    limit: int = 50
    offset: int = 0
    cursor: str | None = None


async def page_params(  # async: no thread hop (see deps.get_runtime)
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


async def key_page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the previous page's next_cursor: the page after it, read by key at any "
            "depth (takes the place of offset)",
        ),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, offset=offset, cursor=cursor or None)


PageDep = Annotated[PageParams, Depends(page_params)]
KeyPageDep = Annotated[PageParams, Depends(key_page_params)]  # the lists also read by key


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = Field(
        default=None,
        description="pass as ?cursor= for the next page (lists read by key); null on the last page",
    )


def total_of(session: Session, query: sa.Select[Any]) -> int:
    """How many rows ``query`` lists: the store's kept count when it lists a whole counted table
    (every run, the whole audit log: ``segmentsync.counts``), else counted."""
    table = counts.whole_table(query)
    if table is not None:
        return counts.total(session, table)
    return session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0


def paginate(session: Session, query: sa.Select[Any], params: PageParams) -> tuple[list[Any], int]:
    """The rows of one page of ``query`` and the total count, in two queries."""
    total = total_of(session, query)
    rows = list(session.scalars(query.limit(params.limit).offset(params.offset)))
    return rows, total


def encode_cursor(key: Key) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")
    )


def key_int(value: Any) -> int:
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise ValueError(value)
    return value


def key_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decode_cursor(text: str, kinds: Sequence[Callable[[Any], Any]]) -> Key:
    """The key a cursor holds (each part read by its kind), or Invalid naming the cursor."""
    try:
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(key, list) or len(key) != len(kinds):
            raise ValueError(key)
        return tuple(kind(value) for kind, value in zip(kinds, key, strict=True))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Invalid(
            "this cursor is not one this list gave: start again without it", field="cursor"
        ) from exc


def by_key(
    session: Session,
    query: sa.Select[Any],
    params: PageParams,
    columns: Sequence[Any],
    key_of: Callable[[Any], Key],
    kinds: Sequence[Callable[[Any], Any]],
) -> tuple[list[Any], int, str | None]:
    """One page of ``query`` (ordered by ``columns`` descending: newest first), its total and the
    cursor of the page after it. With a cursor the page is sought by key; without, it is the one
    at the offset."""
    total = total_of(session, query)
    if params.cursor:
        key = decode_cursor(params.cursor, kinds)
        bound = sa.tuple_(*columns) < sa.tuple_(*key) if len(columns) > 1 else columns[0] < key[0]
        rows = list(session.scalars(query.where(bound).limit(params.limit)))
    else:
        rows = list(session.scalars(query.limit(params.limit).offset(params.offset)))
    after = encode_cursor(key_of(rows[-1])) if len(rows) == params.limit else None
    return rows, total, after
