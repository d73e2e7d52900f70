"""The vendor's own OpenAPI document as a test: Schemathesis sends generated requests to every
operation the Constant Contact emulator implements and checks each answer against the document
(with ``openapi/overlay.yaml``, which corrects the document's known mistakes, each with its reason):
no server error, every status documented for the operation, every body valid against its schema,
every schema-violating request refused; and every JSON body sent as text gets a documented 415,
every method a path lacks a 405 with ``Allow``.

The vendor's document is not part of this repository (its licence is the vendor's "Private" terms
of use): the test reads it from ``CTCT_OPENAPI`` (a path), or from
``tests/sandbox/openapi/constant-contact-openapi.yaml`` when someone put it there, and checks its
sha256 so the overlay is applied to the document it was written for. Origin of that document: the
official C# SDK, github.com/constantcontact/constant-contact-v3api-client-csharp, ``api/openapi.yaml``
(tag 1.9.0, commit 25991d731ad0fe419741b84d61020ae9e5bb7c8b).

Bounded in time: ``EXAMPLES`` generated requests per operation, derandomized (the same requests
every run), against a small account (lists, custom fields, contacts, an activity).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import yaml
from cc_api import CC
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from segmentsync.sandbox.constant_contact.app import api_operations
from segmentsync.sandbox.launcher import Sandbox

HERE = Path(__file__).parent / "openapi"
DOCUMENT_SHA256 = "677a813ec25feb6cb3d6ce5101a95c97e3a657fbbfda396c74d2e05d7c7d01e2"
EXAMPLES = 15  # per operation and mode (positive, negative): 20 operations x 2 x 15 = 600 requests
CHECKS: dict[str, Callable[..., Any]] = {
    "server error": not_a_server_error,
    "undocumented status": status_code_conformance,
    "response schema": response_schema_conformance,
    "content type": content_type_conformance,
}
NEGATIVE_CHECKS: dict[str, Callable[..., Any]] = {"invalid request accepted": negative_data_rejection}
_SEGMENT = re.compile(r"\['([^']*)'\]")


def vendor_document() -> dict[str, Any]:
    """The vendor's document as published (skip, saying how to provide it, when it is absent)."""
    candidates = [Path(p) for p in [os.environ.get("CTCT_OPENAPI", "")] if p]
    candidates.append(HERE / "constant-contact-openapi.yaml")
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        pytest.skip(
            "Constant Contact's OpenAPI document is needed: set CTCT_OPENAPI to its path "
            "(api/openapi.yaml of constantcontact/constant-contact-v3api-client-csharp, tag 1.9.0)"
        )
    raw = path.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == DOCUMENT_SHA256, f"{path} is not the document the overlay fits"
    document: dict[str, Any] = yaml.load(raw, Loader=_Loader)  # noqa: S506 (a safe loader)
    return document


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 reads unquoted dates in examples as ``date`` objects; JSON Schema wants strings."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _target(document: dict[str, Any], target: str) -> tuple[Any, str]:
    """The parent of an overlay target (``$['a']['b']``) and the last key."""
    keys = _SEGMENT.findall(target)
    assert keys, f"unsupported target {target}"
    assert target == "$" + "".join(f"['{key}']" for key in keys), f"unsupported target {target}"
    node: Any = document
    for key in keys[:-1]:
        node = node[key]
    return node, keys[-1]


def _merge(into: Any, update: Any) -> Any:
    if isinstance(into, dict) and isinstance(update, dict):
        for key, value in update.items():
            into[key] = _merge(into[key], value) if key in into else value
        return into
    if isinstance(into, list) and isinstance(update, list):
        return into + update
    return update


def apply_overlay(document: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    for action in overlay["actions"]:
        assert action.get("description"), f"every correction says why: {action['target']}"
        parent, key = _target(document, action["target"])
        if action.get("remove"):
            del parent[key]
        elif key in parent:
            parent[key] = _merge(parent[key], action["update"])
        else:
            parent[key] = action["update"]
    return document


@functools.cache
def emulated_document() -> dict[str, Any]:
    """The corrected document, restricted to the operations the emulator implements (read once)."""
    overlay = yaml.safe_load((HERE / "overlay.yaml").read_text())
    document = apply_overlay(vendor_document(), overlay)
    paths: dict[str, Any] = {}
    for method, route in api_operations():
        path = route.removeprefix("/v3")
        assert method.lower() in document["paths"].get(path, {}), f"{method} {route} is not in the document"
        item = paths.setdefault(path, {})
        item[method.lower()] = document["paths"][path][method.lower()]
        if "parameters" in document["paths"][path]:
            item["parameters"] = document["paths"][path]["parameters"]
    document["paths"] = paths
    return document


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox, "OpenAPI")
    helper.limits(daily_quota=None)
    yield helper
    helper.close()


def _world(cc: CC) -> dict[str, str]:
    """Something for the generated requests to find (lists, custom fields, contacts, an activity);
    returns an existing id for each path parameter."""
    lists = [cc.new_list(f"List {n}") for n in range(3)]
    field = cc.new_field("Favourite colour")
    cc.api(
        "POST",
        "/contact_custom_fields",
        json={"label": "Size", "type": "single_select", "choices": [{"choice_label": "S"}]},
    )
    rows = [
        {"email": f"person{n}@example.com", "first_name": "Person", "cf:" + field["name"]: "blue"}
        for n in range(20)
    ]
    activity = cc.import_rows(lists[:2], rows)
    cc.control("contacts/unsubscribe", {"email": "person0@example.com"})  # one to resubscribe
    return {
        "list_id": lists[2],
        "custom_field_id": field["custom_field_id"],
        "activity_id": activity["activity_id"],
        "contact_id": cc.contact("person0@example.com")["contact_id"],
    }


def fuzz(operation: Any, mode: GenerationMode, ids: dict[str, str], send: Callable[[Any], None]) -> None:
    """``EXAMPLES`` requests; positive ones about existing resources (negative ones: invalid ids)."""
    names = re.findall(r"\{([^}]+)\}", operation.path)
    fixed = {name: ids[name] for name in names} if mode is GenerationMode.POSITIVE else None

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run(case: Any) -> None:
        send(case)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing in the operation can be made invalid
        assert mode is GenerationMode.NEGATIVE, f"no {mode.value} request for {operation.label}"


def _can_be_invalid(definition: dict[str, Any]) -> bool:
    """Whether a request of the operation can violate the document (a body, a query parameter)."""
    return "requestBody" in definition or any(p["in"] != "path" for p in definition.get("parameters", []))


@pytest.mark.parametrize(("method", "route"), api_operations())
def test_emulator_answers_as_the_vendor_document_says(
    cc: CC, sandbox: Sandbox, method: str, route: str
) -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(emulated_document()))
    operation = schema[route.removeprefix("/v3")][method]
    ids = _world(cc)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {cc.access_token}"
    sent: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}

    def send(case: Any) -> None:
        response = case.call(base_url=sandbox.constant_contact_api, session=session)
        mode = case.meta.generation.mode
        sent[mode.value] += 1
        for kind, check in (CHECKS | (NEGATIVE_CHECKS if mode is GenerationMode.NEGATIVE else {})).items():
            try:
                case.validate_response(response, checks=[check])
            except (AssertionError, BaseExceptionGroup) as exc:  # every failure counted, reported together
                first = " ".join(str(exc).split())[:400]
                failures.setdefault(kind, []).append(
                    f"{response.status_code} {case.formatted_path} {case.query or ''}: {first}"
                )

    for mode in GenerationMode:
        if mode is GenerationMode.NEGATIVE and not _can_be_invalid(operation.definition.raw):
            continue  # only a free-form string id in the path: Hypothesis would search in vain
        fuzz(operation, mode, ids, send)
    kinds = {kind: len(failures.get(kind, [])) for kind in [*CHECKS, *NEGATIVE_CHECKS]}
    print(f"\n{method} {route}: {dict(sent)} requests; failures by kind: {kinds}")
    assert sent[GenerationMode.POSITIVE.value] > 0
    assert not failures, "\n".join(f"[{kind}] x{len(items)}: {items[0]}" for kind, items in failures.items())


def test_media_types_and_methods_as_the_vendor_document_says(cc: CC) -> None:
    failures: dict[Any, list[str]] = {}
    _probe_media_types_and_methods(cc, emulated_document(), failures)
    assert not failures, failures


def _probe_media_types_and_methods(cc: CC, document: dict[str, Any], failures: dict[Any, list[str]]) -> None:
    """A JSON body sent as text is refused with a documented 415; a method the emulator does not
    answer on a path is a 405 naming the allowed ones; OPTIONS names them too."""
    some_id = "8d1ba6e4-f2f1-11f1-9d3b-fa163e000001"
    for path, item in document["paths"].items():
        url = "/v3" + re.sub(r"\{[^}]+\}", some_id, path)
        emulated = sorted(method.upper() for method in item if method != "parameters")
        for method in emulated:
            operation = item[method.lower()]
            if "requestBody" not in operation:
                continue
            answer = cc.api(method, url, content=b"{}", headers={"Content-Type": "text/plain"})
            if answer.status_code != 415 or "415" not in operation["responses"]:
                failures.setdefault((f"{method} {path}", "media type"), []).append(
                    f"{answer.status_code} {answer.text[:200]}"
                )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in emulated:
                continue
            answer = cc.api(method, url, json={})
            allowed = sorted(answer.headers.get("allow", "").replace(" ", "").split(","))
            if answer.status_code != 405 or allowed != emulated:
                failures.setdefault((f"{method} {path}", "method"), []).append(
                    f"{answer.status_code} Allow: {answer.headers.get('allow')}"
                )
        answer = cc.http.options(url)
        allowed = sorted(answer.headers.get("allow", "").replace(" ", "").split(","))
        if answer.status_code != 204 or allowed != sorted([*emulated, "OPTIONS"]):
            failures.setdefault((f"OPTIONS {path}", "method"), []).append(
                f"{answer.status_code} Allow: {answer.headers.get('allow')}"
            )
