"""Logging for every process (serve, worker, CLI): stdlib logging, JSON lines in production,
and secrets redacted from every record before any handler writes it. A record written while a
run is handled carries the run's fields (``run_id``, ``export_id``, ``connection_id``,
``platform``, ``phase``, ``worker``: see ``observe.context``): JSON fields, or ``[key=value …]``
at the end of a text line.

Redaction knows secrets by shape (``Authorization`` headers, bearer tokens, our ``ss_`` API
tokens, ``password=``/``"api_key": …`` pairs, OAuth codes in URLs, passwords in database URLs)
and by value: code that handles a secret may :func:`register_secret` it, and the settings'
own secrets are registered by :func:`configure_logging`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

from segmentsync.observe.context import FIELDS, ContextFilter
from segmentsync.settings import Settings

MASK = "••••••"
_SECRET_KEYS = r"[A-Za-z_-]*(?:password|passwd|secret|secret_key|token|api[_-]?key|apikey|code_verifier)"  # noqa: S105  # names of secrets, not a secret
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xyz / "authorization": "Basic xyz"
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic)?\s*)[^\s'\",;]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{MASK}"),
    (re.compile(r"\bss_[A-Za-z0-9_-]{16,}"), f"ss_{MASK}"),  # our API tokens, wherever they appear
    # password=xyz, "client_secret": "xyz", api_key: xyz
    (re.compile(rf"(?i)(['\"]?\b{_SECRET_KEYS}['\"]?\s*[:=]\s*['\"]?)[^\s'\",&;}}]+"), rf"\1{MASK}"),
    # OAuth authorization codes and tokens in query strings
    (
        re.compile(r"(?i)([?&](?:code|access_token|refresh_token|client_secret|api_?key)=)[^&\s'\"]+"),
        rf"\1{MASK}",
    ),
    # user:password@host in URLs (database URLs, proxies)
    (re.compile(r"(://[^:/@\s]+:)[^@\s/]+@"), rf"\1{MASK}@"),
)
MIN_KNOWN_LENGTH = 6  # shorter "secrets" would redact ordinary words
_known: set[str] = set()

# LogRecord attributes that are not "extra" fields given by the caller (and uvicorn's copy of its
# message with terminal colours, which a JSON line does not want).
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def register_secret(value: str | None) -> None:
    """Redact this exact value from every log record from now on (API keys, tokens …)."""
    if value and len(value) >= MIN_KNOWN_LENGTH:
        _known.add(value)


def redact(text: str) -> str:
    for value in sorted(_known, key=len, reverse=True):  # a copy: safe while others register
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message, exception text and string extras with secrets masked.

    On a handler it sees every record that handler writes, whichever logger made it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string must not hide the record
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT`, with the run's fields at the end of a line written while one is handled."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{key}={getattr(record, key)}" for key in FIELDS if getattr(record, key, None) is not None]
        if not fields:
            return line
        first, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{first} [{' '.join(fields)}]{newline}{rest}"


# Loggers that bring their own handlers (uvicorn) or are chatty per request (httpx).
OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
QUIET = ("httpx", "httpcore", "python_multipart", "asyncio")


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr), redacted; idempotent. Returns the handler."""
    for secret in (
        settings.secret_key,
        settings.campaign_monitor_client_secret,
        settings.constant_contact_client_secret,
        settings.notification_webhook_secret,
    ):
        if secret is not None:
            for part in secret.get_secret_value().split(","):
                register_secret(part.strip())
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("segmentsync")
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())  # the run's fields, before they are redacted with the rest
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "segmentsync"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()  # through ours, so that they are redacted and formatted alike
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # the root's level, not one an earlier uvicorn.Config set
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
