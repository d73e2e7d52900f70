"""The configuration file: its shape (pydantic models, whose JSON Schema is published), how it is
read (YAML, every problem with its line) and how it is written (stable order and format).

Reading uses PyYAML's node tree (``yaml.compose``) rather than ``safe_load``: each node knows its
line, so a problem found later — by the schema, a missing environment variable or a service's
check — is reported at the line of the value it concerns. PyYAML (with its C parser) is the
well-kept, safe-by-default YAML library; ruamel.yaml would add round-trip comment editing, which
nothing here needs (the file is written whole by ``config export``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from segmentsync.connections.models import ConnectionType
from segmentsync.errors import Invalid
from segmentsync.exports.models import RemovalMode, ScheduleMode, SyncMode
from segmentsync.segments.rules import Group

VERSION = 1
SECRET_FIELDS = ("api_key", "access_token", "refresh_token", "oauth_client_secret")
ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
HEADER = (
    "# segmentsync configuration: `segmentsync config plan FILE` shows what applying it would change,\n"
    "# `segmentsync config apply FILE` makes it so. Secrets are ${ENVIRONMENT_VARIABLE} references.\n"
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Path = tuple[str | int, ...]


def _reference(value: str) -> str:
    if not ENV_REFERENCE.match(value):
        raise ValueError(
            "write a secret as an environment variable reference such as ${CM_API_KEY}, never the "
            "secret itself"
        )
    return value


SecretRef = Annotated[
    str,
    AfterValidator(_reference),
    Field(description="an environment variable reference, e.g. ${CM_API_KEY}", examples=["${CM_API_KEY}"]),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


SegmentKind = Literal["rule", "sql", "dbt"]
KIND_FIELDS: dict[SegmentKind, str] = {"rule": "rules", "sql": "sql", "dbt": "dbt_model"}


class SegmentSpec(_Strict):
    """A segment: a rule (``rules``), a SQL query (``kind: sql``, ``sql``) or a dbt model
    (``kind: dbt``, ``dbt_model``). Without ``kind``, the one of the three given says it."""

    name: Name
    description: str = Field(default="", max_length=2000)
    kind: SegmentKind | None = Field(default=None, description="rule (the default), sql or dbt")
    rules: Group | None = Field(
        default=None, description="kind rule: the rule tree, as in `segmentsync segments create --rule`"
    )
    sql: str | None = Field(
        default=None,
        min_length=1,
        max_length=100_000,
        description="kind sql: one SELECT over the profile source's tables, returning the profile key "
        "(and, if you like, columns an export maps as segment.<column>)",
    )
    dbt_model: Name | None = Field(
        default=None, description="kind dbt: the model's name in the dbt manifest (set by an admin)"
    )

    @model_validator(mode="after")
    def _one_definition(self) -> Self:
        given: list[SegmentKind] = [
            kind for kind, key in KIND_FIELDS.items() if getattr(self, key) is not None
        ]
        if self.kind is None:
            if len(given) > 1:
                raise ValueError(f"give one of rules, sql or dbt_model, not {' and '.join(given)}")
            self.kind = given[0] if given else "rule"
        kind: SegmentKind = self.kind
        extra = [KIND_FIELDS[other] for other in given if other != kind]
        if extra:
            raise ValueError(f"a {kind} segment takes {KIND_FIELDS[kind]}, not {', '.join(extra)}")
        if kind not in given:
            raise ValueError(f"a {kind} segment needs {KIND_FIELDS[kind]}")
        return self

    def definition(self) -> dict[str, Any]:
        """``{"kind": …, <its field>: …}`` in the segment service's (and the store's) shape."""
        kind = self.kind or "rule"
        value = (
            self.rules.model_dump(mode="json") if self.rules is not None else getattr(self, KIND_FIELDS[kind])
        )
        return {"kind": kind, KIND_FIELDS[kind]: value}


class ApiKeyAuthSpec(_Strict):
    """Campaign Monitor: an API key and the client ID it works for."""

    method: Literal["api_key"]
    client_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    api_key: SecretRef


class TokenAuthSpec(_Strict):
    """OAuth tokens: used to create the connection (they rotate afterwards, so a connection that
    exists already keeps its own)."""

    method: Literal["oauth_tokens"]
    access_token: SecretRef
    refresh_token: SecretRef
    client_id: str | None = Field(default=None, max_length=64, description="Campaign Monitor client ID")
    oauth_client_id: str | None = Field(default=None, max_length=200)
    oauth_client_secret: SecretRef | None = None


class ConnectionSpec(_Strict):
    name: Name
    type: ConnectionType
    consent: Literal[True] = Field(
        description="true: the admin who applies the file agrees that exporting moves personal data "
        "outside this system (recorded as their consent)"
    )
    shared_with_contributors: bool = False
    export_user: str | None = Field(
        default=None,
        description="the admin on whose behalf exports run; only the admin who applies can make "
        "themselves the export user (left out: not changed)",
    )
    auth: ApiKeyAuthSpec | TokenAuthSpec = Field(discriminator="method")
    api_url: str | None = Field(default=None, description="the platform's API base URL, if not the default")
    oauth_url: str | None = Field(
        default=None, description="the platform's OAuth base URL, if not the default"
    )


class AttributeSpec(_Strict):
    column: Name
    target: Name


class ExportSpec(_Strict):
    name: Name
    connection: Name | None = Field(description="a connection's name (null: no connection)")
    list_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    email_column: Name
    segments: list[Name] = Field(min_length=1, max_length=100, description="segment names")
    attributes: list[AttributeSpec] = Field(default_factory=list, max_length=100)
    create_missing_fields: bool = False
    consent_to_track: Literal["Yes", "No", "Unchanged", "column"] = "Unchanged"
    consent_column: str | None = None
    sync_mode: SyncMode = SyncMode.ADD_UPDATE
    removal_mode: RemovalMode = RemovalMode.DELETE
    resubscribe: bool = False
    schedule: ScheduleMode = ScheduleMode.SYSTEM
    cron: str | None = None
    timezone: str = "UTC"


class ScheduleSpec(_Strict):
    """The system refresh schedule."""

    enabled: bool = False
    frequency: Literal["daily", "weekly"] = "daily"
    weekdays: list[int] = Field(default_factory=list, description="weekly: 0 = Monday … 6 = Sunday")
    times: list[str] = Field(default_factory=list, max_length=4, description="HH:MM, up to four")
    timezone: str = "UTC"


class ConfigDocument(_Strict):
    """A whole configuration. A section left out is not managed (nothing in it is created,
    changed or removed); a section that is present says everything of its kind."""

    version: Literal[1] = Field(description="the file format's version")
    schedule: ScheduleSpec | None = None
    segments: list[SegmentSpec] | None = None
    connections: list[ConnectionSpec] | None = None
    exports: list[ExportSpec] | None = None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the file (draft 2020-12), for editors and CI checks."""
    schema = ConfigDocument.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://segmentsync.dev/schemas/config-v1.json",
        **schema,
        "title": "segmentsync configuration",
    }


# ---------------------------------------------------------------- problems with their lines


@dataclass
class Problem:
    line: int | None
    path: str
    message: str

    def text(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path + ': ' if self.path else ''}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "path": self.path, "message": self.message}


class ConfigProblems(Invalid):
    """The file cannot be applied: one problem per entry in ``problems`` (nothing was changed)."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0].text() if problems else "invalid configuration"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(
            first + more,
            code="invalid_config",
            details={"problems": [p.to_dict() for p in problems]},
        )
        self.problems = problems


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass
class Source:
    """The file's data with the line of every value (1-based), by path."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that the file has."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.line(path), dotted(path), message)


_scalars = yaml.constructor.SafeConstructor()
MAX_VALUES = 100_000  # a configuration has hundreds; aliases must not multiply them (billion laughs)


class _TooBig(Exception):
    pass


def _convert(node: yaml.Node, path: Path, source: Source, problems: list[Problem], seen: list[int]) -> Any:
    """A node → plain data, noting each value's line; aliases of aliases are not expanded forever."""
    seen[0] += 1
    if seen[0] > MAX_VALUES:
        raise _TooBig
    line = node.start_mark.line + 1
    source.lines[path] = line
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(key_node.start_mark.line + 1, dotted(path), "a key must be text"))
                continue
            key = _scalar(key_node, path, problems)
            if not isinstance(key, str):
                problems.append(
                    Problem(key_node.start_mark.line + 1, dotted(path), f"the key {key!r} is not text")
                )
                continue
            if key in result:
                problems.append(
                    Problem(key_node.start_mark.line + 1, dotted((*path, key)), "this key is given twice")
                )
                continue
            result[key] = _convert(value_node, (*path, key), source, problems, seen)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), source, problems, seen) for index, item in enumerate(node.value)
        ]
    return _scalar(node, path, problems)


def _scalar(node: yaml.Node, path: Path, problems: list[Problem]) -> Any:
    try:
        return _scalars.construct_object(node)
    except yaml.YAMLError:  # e.g. a tag of another language (!!python/object) or a bad timestamp
        problems.append(
            Problem(node.start_mark.line + 1, dotted(path), f"a value this file cannot hold ({node.tag})")
        )
        return None


def parse(text: str) -> Source:
    """YAML text → data with lines; bad YAML raises ConfigProblems with the line."""
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # "while parsing a flow sequence" (where the broken value starts) says more than the place
        # where the parser gave up, which can be the end of the file.
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        said = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
        if exc.context_mark is not None and exc.problem_mark is not None:
            said += f" (line {exc.problem_mark.line + 1})"
        raise ConfigProblems([Problem(line, "", f"not valid YAML: {said}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigProblems([Problem(None, "", f"not valid YAML: {exc}")]) from None
    if node is None:
        raise ConfigProblems([Problem(None, "", "the file is empty; start it with `version: 1`")])
    source = Source(None)
    try:
        source.data = _convert(node, (), source, problems, [0])
    except (_TooBig, RecursionError):
        raise ConfigProblems(
            [Problem(None, "", f"the file holds more than {MAX_VALUES:,} values (aliases?)")]
        ) from None
    if problems:
        raise ConfigProblems(problems)
    return source


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "this key is required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def validate(source: Source) -> ConfigDocument:
    """The document, or ConfigProblems listing every schema problem with its line."""
    if not isinstance(source.data, dict):
        raise ConfigProblems(
            [Problem(source.line(()), "", "the file must be a mapping (version: 1, segments: …)")]
        )
    try:
        document = ConfigDocument.model_validate(source.data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[Path, str]] = set()
        for error in exc.errors():
            path = _real_path(tuple(error["loc"]))
            message = _message(error)
            if (path, message) in seen:
                continue
            seen.add((path, message))
            problems.append(source.problem(path, message))
        raise ConfigProblems(problems) from None
    problems = _duplicates(source, document)
    if problems:
        raise ConfigProblems(problems)
    return document


def _real_path(loc: Path) -> Path:
    """Pydantic's location without the tags of tagged unions, which are not keys of the file
    (``auth.api_key.client_id`` is ``auth.client_id``; a rule item's ``condition`` likewise)."""
    path: list[str | int] = []
    for index, part in enumerate(loc):
        previous = loc[index - 1] if index else None
        if previous == "auth" and part in ("api_key", "oauth_tokens") and index + 1 < len(loc):
            continue
        if part in ("group", "condition") and isinstance(previous, int):
            continue
        path.append(part)
    return tuple(path)


def _duplicates(source: Source, document: ConfigDocument) -> list[Problem]:
    problems = []
    for kind in ("segments", "connections", "exports"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(document, kind) or []):
            key = item.name.casefold()
            if key in seen:
                problems.append(
                    source.problem((kind, index, "name"), f"another {kind[:-1]} is named {item.name!r}")
                )
            seen.add(key)
    return problems


@dataclass
class Secrets:
    """The values of the file's secret references, by path, and the variables that are not set."""

    values: dict[Path, str] = field(default_factory=dict)
    missing: dict[Path, str] = field(default_factory=dict)  # path → variable name

    def value(self, path: Path) -> str | None:
        return self.values.get(path)


def resolve_secrets(document: ConfigDocument, environ: Mapping[str, str] | None = None) -> Secrets:
    """Each secret reference's value from the environment. A variable that is not set is a
    problem only where the secret is needed (a connection to create or to authenticate again)."""
    env = os.environ if environ is None else environ
    found = Secrets()
    for index, connection in enumerate(document.connections or []):
        for name in SECRET_FIELDS:
            reference = getattr(connection.auth, name, None)
            if reference is None:
                continue
            variable = ENV_REFERENCE.match(reference)
            assert variable is not None  # checked by the schema
            path: Path = ("connections", index, "auth", name)
            value = env.get(variable.group(1), "")
            if value:
                found.values[path] = value
            else:
                found.missing[path] = variable.group(1)
    return found


def load(text: str, environ: Mapping[str, str] | None = None) -> tuple[Source, ConfigDocument, Secrets]:
    """Parse, validate and resolve the secrets of a file: (lines, document, secret values)."""
    source = parse(text)
    document = validate(source)
    return source, document, resolve_secrets(document, environ)


# ---------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    """Block style; lists indented under their key (as people write YAML)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """A text of several lines (a segment's SQL) as a literal block, as it was written."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(data: dict[str, Any]) -> str:
    body: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return HEADER + body
