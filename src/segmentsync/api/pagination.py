"""Pagination for every list endpoint: ``?limit=&offset=`` in, ``{items, total, limit, offset}`` out."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1  # beyond any real list; larger values overflow the databases' integers


class PageParams(BaseModel):
    limit: int = 50
    offset: int = 0


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(session: Session, query: sa.Select[Any], params: PageParams) -> tuple[list[Any], int]:
    """The rows of one page of ``query`` and the total count, in two queries."""
    total = session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(session.scalars(query.limit(params.limit).offset(params.offset)))
    return rows, total
