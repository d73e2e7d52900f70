"""Reading a configuration file: every problem with its line, hostile YAML refused cleanly."""

from __future__ import annotations

import pytest

from segmentsync.config import document
from segmentsync.config.document import ConfigProblems

LAUGHS = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &a [*a]\n", ["the file holds more than 100,000 values (aliases?)"]),
        (LAUGHS, ["the file holds more than 100,000 values (aliases?)"]),
        ("- 1\n- 2\n", ["line 1: the file must be a mapping (version: 1, segments: …)"]),
        ("version: 1\n? [a]\n: b\n", ["line 2: a key must be text"]),
        ("version: 1\nversion: 1\n", ["line 2: version: this key is given twice"]),
        ("version: 1\nsegments: 3\n", ["line 2: segments: Input should be a valid list"]),
        ("", ["the file is empty; start it with `version: 1`"]),
        ("version: 2\n", ["line 1: version: Input should be 1"]),
        (
            "version: 1\nsegments:\n  - {name: A, rules: {items: []}}\n  - {name: a, rules: {items: []}}\n",
            ["line 4: segments[1].name: another segment is named 'a'"],
        ),
    ],
)
def test_problems_have_their_line(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigProblems) as caught:
        document.load(text, {})
    assert [problem.text() for problem in caught.value.problems] == expected


def test_a_secret_in_clear_is_refused_without_echoing_it() -> None:
    text = (
        "version: 1\nconnections:\n  - name: CM\n    type: campaign_monitor\n    consent: true\n"
        "    auth: {method: api_key, client_id: abc, api_key: sk-live-123}\n"
    )
    with pytest.raises(ConfigProblems) as caught:
        document.load(text, {})
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (6, "connections[0].auth.api_key")
    assert "sk-live-123" not in problem.text()


def test_the_schema_describes_the_file() -> None:
    schema = document.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"version", "schedule", "segments", "connections", "exports"}
    assert schema["additionalProperties"] is False
