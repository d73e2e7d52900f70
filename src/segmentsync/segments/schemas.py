"""What the segment service takes and gives back (the API, web views and CLI use these as is)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field, model_validator

from segmentsync.errors import N_
from segmentsync.segments.rules import Group

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


Kind = Literal["rule", "sql", "dbt"]
Sql = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
WHAT: dict[Kind, str] = {"rule": "rules", "sql": "sql", "dbt": "dbt_model"}


class SegmentCreate(BaseModel):
    """``kind`` rule (the default) takes ``rules``; sql takes ``sql``; dbt takes ``dbt_model``.
    Without ``kind``, the one of the three given says it."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    kind: Kind | None = None
    rules: Group | None = None
    sql: Sql | None = None
    dbt_model: ModelName | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> Self:
        given: list[Kind] = [kind for kind, field in WHAT.items() if getattr(self, field) is not None]
        if self.kind is None:
            if len(given) > 1:
                raise ValueError(
                    N_("give one of rules, sql or dbt_model, not %(given)s") % {"given": " and ".join(given)}
                )
            self.kind = given[0] if given else "rule"
        kind: Kind = self.kind
        extra = [WHAT[other] for other in given if other != kind]
        if extra:
            raise ValueError(
                N_("a %(kind)s segment takes %(field)s, not %(extra)s")
                % {"kind": kind, "field": WHAT[kind], "extra": ", ".join(extra)}
            )
        if kind not in given:
            raise ValueError(N_("a %(kind)s segment needs %(field)s") % {"kind": kind, "field": WHAT[kind]})
        return self


class SegmentUpdate(BaseModel):
    """Only the fields given change; giving ``sql`` (or ``rules``, ``dbt_model``) makes the
    segment of that kind."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    rules: Group | None = None
    sql: Sql | None = None
    dbt_model: ModelName | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> Self:
        given = [field for field in WHAT.values() if getattr(self, field) is not None]
        if len(given) > 1:
            raise ValueError(
                N_("give one of rules, sql or dbt_model, not %(given)s") % {"given": " and ".join(given)}
            )
        return self


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    kind: Kind = "rule"
    rules: Group | None = Field(default=None, description="kind rule: the rule")
    sql: str | None = Field(default=None, description="kind sql: the query, as written")
    dbt_model: str | None = Field(default=None, description="kind dbt: the model's name")
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime
    member_count: int | None = Field(description="members as of the last successful refresh")
    last_refresh_at: datetime | None
    last_refresh_ms: int | None
    last_refresh_error: str | None = Field(description="the latest refresh's error, if it failed")

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented way to expose a property
    @property
    def rule_text(self) -> str:
        """The rule in words, e.g. ``country in ('PL', 'LV') AND total_spend > 100``; for the other
        kinds, ``SQL: <first line>`` or ``dbt model <name>``."""
        if self.kind == "sql":
            first = next((line.strip() for line in (self.sql or "").splitlines() if line.strip()), "")
            return f"SQL: {first[:117] + '…' if len(first) > 120 else first}"
        if self.kind == "dbt":
            return f"dbt model {self.dbt_model}"
        return self.rules.describe() if self.rules is not None else ""


class RefreshOut(BaseModel):
    segment_id: int
    segment_name: str
    started_at: datetime
    duration_ms: int
    member_count: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class PreviewOut(BaseModel):
    """The first members (ordered by the key) with the chosen columns; values as JSON."""

    segment_id: int | None
    columns: list[str]
    rows: list[dict[str, Any]]
    limit: int


class CountOut(BaseModel):
    segment_id: int | None
    member_count: int
