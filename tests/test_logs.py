"""Logging: JSON lines or text, and secrets redacted from every record whichever logger made it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from segmentsync.logs import MASK, configure_logging, redact, register_secret
from segmentsync.settings import Settings


@pytest.fixture
def log_to(tmp_path: Path) -> Iterator[tuple[io.StringIO, Settings]]:
    stream = io.StringIO()
    settings = Settings(
        data_dir=tmp_path,
        log_format="json",
        log_level="DEBUG",
        secret_key="a-fernet-key-from-the-environment",
        constant_contact_client_secret="cc-client-secret-value",
    )
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield stream, settings
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("Authorization: Bearer ss_abcdefghijklmnopqrstuvwxyz", "Authorization: Bearer", "abcdefghijkl"),
        ("{'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "authorization", "dXNlcjpwYXNzd29yZA"),
        ("sent bearer eyJhbGciOiJIUzI1NiJ9.payload.sig to CC", "to CC", "eyJhbGciOiJIUzI1NiJ9"),
        ("token ss_0123456789abcdefghij_KLMNOP in a sentence", "in a sentence", "0123456789abcdefghij"),
        ('{"password": "hunter2hunter2", "email": "a@b.c"}', '"email": "a@b.c"', "hunter2hunter2"),
        ("refresh_token=rt-123456&client_secret=cs-999 done", "done", "rt-123456"),
        ('"api_key": "0123456789abcdef"', '"api_key"', "0123456789abcdef"),
        ("GET /api/v1/connections/oauth/callback?code=auth-code-1&state=abc", "state=abc", "auth-code-1"),
        ("postgresql://segmentsync:pg-pass-1@db:5432/segmentsync", "@db:5432", "pg-pass-1"),
    ],
)
def test_secrets_are_recognised_by_their_shape(text: str, kept: str, gone: str) -> None:
    redacted = redact(text)
    assert gone not in redacted
    assert kept in redacted
    assert MASK in redacted


def test_ordinary_words_stay(tmp_path: Path) -> None:
    text = "token_expires_at=2026-11-23 code=csrf tokens=3 export 12 sent 1000 rows"
    assert redact(text) == text


def test_every_record_is_redacted_and_written_as_one_json_line(log_to: tuple[io.StringIO, Settings]) -> None:
    stream, settings = log_to
    configure_logging(settings, stream=stream)
    register_secret("platform-api-key-42")
    log = logging.getLogger("segmentsync.test")
    log.info(
        "calling with key %s", "platform-api-key-42", extra={"connection": "CM", "note": "password=pw12345"}
    )
    logging.getLogger("uvicorn.access").info('"GET /x?access_token=at-123456 HTTP/1.1" 200')
    try:
        raise RuntimeError("refresh failed for cc-client-secret-value")
    except RuntimeError:
        log.exception("while refreshing")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["logger"] for line in lines] == ["segmentsync.test", "uvicorn.access", "segmentsync.test"]
    first, access, failure = lines
    assert first["message"] == f"calling with key {MASK}"
    assert (first["level"], first["connection"], first["note"]) == ("INFO", "CM", f"password={MASK}")
    assert "at-123456" not in access["message"]
    assert "cc-client-secret-value" not in failure["exception"]
    assert "RuntimeError" in failure["exception"]
    assert "a-fernet-key-from-the-environment" not in stream.getvalue()


def test_text_format_and_reconfiguring_keeps_one_handler(log_to: tuple[io.StringIO, Settings]) -> None:
    stream, settings = log_to
    settings.log_format = "text"
    configure_logging(settings, stream=io.StringIO())
    configure_logging(settings, stream=stream)
    logging.getLogger("segmentsync.test").warning("client_secret=%s", "xyz-secret")
    assert [h.get_name() for h in logging.getLogger().handlers].count("segmentsync") == 1
    [line] = stream.getvalue().splitlines()
    assert line.endswith(f"WARNING segmentsync.test: client_secret={MASK}")


def test_a_malformed_record_is_still_written(log_to: tuple[io.StringIO, Settings]) -> None:
    stream, settings = log_to
    handler = configure_logging(settings, stream=stream)
    alone = logging.getLogger("segmentsync.test.alone")  # pytest's own capture would raise first
    alone.propagate = False
    alone.addHandler(handler)
    alone.error("two %s %s", "but one")
    alone.removeHandler(handler)
    assert "two %s %s" in json.loads(stream.getvalue())["message"]


def test_a_level_uvicorn_set_earlier_hides_nothing(log_to: tuple[io.StringIO, Settings]) -> None:
    # An in-process uvicorn.Config(log_level="warning") (the web tests' server) leaves uvicorn's
    # loggers at WARNING; the suite's order decided whether the next test saw their INFO records.
    stream, settings = log_to
    access = logging.getLogger("uvicorn.access")
    before = access.level
    access.setLevel(logging.WARNING)
    try:
        configure_logging(settings, stream=stream)
        access.info('"GET /x HTTP/1.1" 200')
    finally:
        access.setLevel(before)
    assert [json.loads(line)["logger"] for line in stream.getvalue().splitlines()] == ["uvicorn.access"]
