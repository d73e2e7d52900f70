"""A dbt project's ``target/manifest.json``: its models, their relations, descriptions, columns, tests.

The manifest is dbt's own artifact (written by ``dbt parse``, ``dbt compile``, ``dbt run``…); it is
read as JSON, so no dbt installation is needed here. It is re-read every time a dbt segment is
counted, previewed or exported, so a model whose relation was renamed (a new ``alias`` or
``schema``) is followed on the next refresh. A model is named as in dbt (``big_spenders``), or
``package.model`` when two packages hold models of that name.
"""

from __future__ import annotations

import difflib
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlglot import exp

from segmentsync.errors import Invalid, NotFound

MAX_MANIFEST_BYTES = 200 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Column:
    name: str
    description: str = ""
    data_type: str | None = None


@dataclass(frozen=True)
class Model:
    unique_id: str
    name: str
    package: str
    database: str | None
    schema: str | None
    alias: str
    materialized: str
    description: str = ""
    columns: list[Column] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)  # "unique(profile_id)", "not_null(profile_id)"

    def _table(self) -> exp.Table:
        return exp.table_(self.alias, db=self.schema or None, catalog=self.database or None, quoted=True)

    def relation(self, dialect: str) -> str:
        """The model's relation as the engine names it: ``"db"."schema"."alias"``, quoted."""
        return self._table().sql(dialect=dialect)

    def relation_query(self, dialect: str) -> str:
        """``SELECT * FROM`` the relation: the segment's members are the profile keys it holds (the
        profile source selects the key column from it); its other columns may be mapped by an
        export (``segment.<column>``)."""
        return exp.select(exp.Star()).from_(self._table()).sql(dialect=dialect)


@dataclass(frozen=True)
class Manifest:
    location: str
    dbt_version: str
    project: str | None
    models: dict[str, Model]  # by unique_id

    def model(self, name: str) -> Model:
        """The model named ``name`` (or ``package.name``); a clear error if absent or ambiguous."""
        wanted = name.strip()
        found = [m for m in self.models.values() if wanted in (m.name, f"{m.package}.{m.name}", m.unique_id)]
        if len(found) > 1:
            both = ", ".join(sorted(f"{m.package}.{m.name}" for m in found))
            raise Invalid(
                "more than one dbt model is named %(wanted)s (%(both)s): name it as package.model",
                params={"wanted": repr(wanted), "both": both},
                code="dbt_model_ambiguous",
                field="dbt_model",
            )
        if not found:
            names = sorted({m.name for m in self.models.values()})
            close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise NotFound(
                "the dbt manifest has no model named %(wanted)s%(hint)s (models: %(value)s)",
                params={"wanted": repr(wanted), "hint": hint, "value": ", ".join(names[:30]) or "none"},
                code="dbt_model_not_found",
                field="dbt_model",
            )
        model = found[0]
        if model.materialized == "ephemeral":
            raise Invalid(
                "the dbt model %(model_name)s is ephemeral: it has no table or view to select from; materialize it as a view or table",
                params={"model_name": repr(model.name)},
                code="dbt_model_ephemeral",
                field="dbt_model",
            )
        return model

    def listing(self) -> list[Model]:
        return sorted(self.models.values(), key=lambda m: (m.package != self.project, m.package, m.name))


def load(location: str) -> Manifest:
    """Read and parse the manifest at a path or an http(s) URL."""
    return parse(_read(location), location)


def parse(raw: bytes, location: str = "manifest.json") -> Manifest:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(
            "%(location)s is not JSON: %(exc)s",
            params={"location": location, "exc": exc},
            code="dbt_manifest_invalid",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        raise Invalid(
            "%(location)s is not a dbt manifest (no 'nodes'): use the project's target/manifest.json",
            params={"location": location},
            code="dbt_manifest_invalid",
        )
    metadata: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    nodes: dict[str, Any] = data["nodes"]
    tests: dict[str, list[str]] = {}
    for node in nodes.values():
        if isinstance(node, dict) and node.get("resource_type") == "test":
            for parent in (node.get("depends_on") or {}).get("nodes") or []:
                tests.setdefault(parent, []).append(_test_name(node))
    models = {}
    for unique_id, node in nodes.items():
        if not isinstance(node, dict) or node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        if config.get("enabled") is False:
            continue
        columns = [
            Column(
                name=str(column.get("name") or name),
                description=str(column.get("description") or ""),
                data_type=column.get("data_type"),
            )
            for name, column in (node.get("columns") or {}).items()
            if isinstance(column, dict)
        ]
        models[unique_id] = Model(
            unique_id=unique_id,
            name=str(node.get("name")),
            package=str(node.get("package_name") or ""),
            database=node.get("database") or None,
            schema=node.get("schema") or None,
            alias=str(node.get("alias") or node.get("name")),
            materialized=str(config.get("materialized") or "view"),
            description=str(node.get("description") or ""),
            columns=columns,
            tests=sorted(tests.get(unique_id, [])),
        )
    return Manifest(
        location=location,
        dbt_version=str(metadata.get("dbt_version") or "?"),
        project=metadata.get("project_name"),
        models=models,
    )


def _test_name(node: dict[str, Any]) -> str:
    meta = node.get("test_metadata") or {}
    name = str(meta.get("name") or node.get("name") or "test")
    column = node.get("column_name")
    return f"{name}({column})" if column else name


def check_location(location: str) -> str:
    """A manifest location as stored: an absolute path, or an http(s) URL."""
    text = location.strip()
    if not text:
        raise Invalid("give the path or URL of the dbt manifest (target/manifest.json)", field="dbt_manifest")
    if urllib.parse.urlparse(text).scheme in ("http", "https"):
        return text
    return str(Path(text).expanduser().absolute())


def _read(location: str) -> bytes:
    if urllib.parse.urlparse(location).scheme in ("http", "https"):
        try:
            with httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as http:
                response = http.get(location)
        except httpx.HTTPError as exc:
            raise Invalid(
                "cannot fetch the dbt manifest from %(location)s: %(name)s: %(exc)s",
                params={"location": location, "name": exc.__class__.__name__, "exc": exc},
                code="dbt_manifest_unreadable",
            ) from None
        if response.status_code != 200:
            raise Invalid(
                "cannot fetch the dbt manifest from %(location)s: HTTP %(status_code)s",
                params={"location": location, "status_code": response.status_code},
                code="dbt_manifest_unreadable",
            )
        if len(response.content) > MAX_MANIFEST_BYTES:
            raise Invalid(
                "the dbt manifest at %(location)s is larger than 200 MB",
                params={"location": location},
                code="dbt_manifest_invalid",
            )
        return response.content
    path = Path(location)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise Invalid(
                "the dbt manifest %(path)s is larger than 200 MB",
                params={"path": path},
                code="dbt_manifest_invalid",
            )
        return path.read_bytes()
    except OSError as exc:
        raise Invalid(
            "cannot read the dbt manifest %(path)s: %(value)s; run `dbt parse` (or any dbt command) to write target/manifest.json, or set its path with `segmentsync dbt set-manifest`",
            params={"path": path, "value": exc.strerror or exc},
            code="dbt_manifest_unreadable",
        ) from None
