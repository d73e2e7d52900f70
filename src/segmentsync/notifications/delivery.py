"""The sender: claims due deliveries from the outbox and sends them, in every serve/worker process.

Claiming is like claiming runs (``scheduling.worker``): one UPDATE over due rows (PostgreSQL
skips rows another process is claiming, ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers
with ``BEGIN IMMEDIATE``) marks them ``sending`` under this sender's name until
``claim_expires_at`` (``SEGMENTSYNC_WEBHOOKS_CLAIM_SECONDS``, longer than any attempt). The
result is recorded only while the claim is still ours. A sender killed mid-attempt leaves its
claim to expire; another sender then tries again with the same ``webhook-id`` — delivery is at
least once, and only a message in flight at the moment of the crash can arrive twice.

An attempt: 2xx within ``SEGMENTSYNC_WEBHOOKS_TIMEOUT_SECONDS`` (10) is delivered; anything else
(another status, a timeout, a refused connection, an address the guard refuses) is retried after
the next of ``SEGMENTSYNC_WEBHOOKS_RETRY_SECONDS`` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h:
eight attempts over ≈ 27 hours), then failed. An endpoint whose delivery gives up while nothing
sent to it has succeeded since its failures began is disabled, and the admins are told (in-app
and by e-mail).
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from segmentsync import __version__
from segmentsync.errors import ConfigError
from segmentsync.exports import notify
from segmentsync.logs import register_secret
from segmentsync.notifications import addresses, alerts, events, service
from segmentsync.notifications.models import Channel, Delivery, DeliveryStatus, WebhookEndpoint
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings

log = logging.getLogger(__name__)
WAKE_SECONDS = 0.05
ERROR_TEXT = 300  # characters of a failed answer kept


def sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Attempt:
    ok: bool
    code: int | None = None
    error: str | None = None
    latency_ms: int | None = None


class Sender:
    def __init__(
        self, runtime: Runtime, *, name: str | None = None, slots: int = 4, poll_seconds: float = 1.0
    ) -> None:
        self.runtime = runtime
        self.name = name or sender_name()
        self.slots = slots
        self.poll_seconds = poll_seconds
        self._last_check = 0.0
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def client(self) -> httpx.Client:
        """One HTTP client for the sender's threads (its connections and TLS context are reused:
        a client per request cost more than the request itself)."""
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.runtime.settings.webhooks_timeout_seconds, follow_redirects=False
                )
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------ claiming

    def claim(self, limit: int) -> list[int]:
        now = self.runtime.clock()
        is_due = sa.or_(
            sa.and_(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now),
            sa.and_(Delivery.status == DeliveryStatus.SENDING, Delivery.claim_expires_at < now),
        )
        with self.runtime.readers() as session:  # most polls find nothing: no write lock for them (SQLite)
            if session.scalar(sa.select(Delivery.id).where(is_due).limit(1)) is None:
                return []
        due = (
            sa.select(Delivery.id).where(is_due).order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
        )
        if self.runtime.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        with self.runtime.sessions() as session, session.begin():
            ids = list(session.scalars(due))
            if ids:
                session.execute(
                    sa.update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(
                        status=DeliveryStatus.SENDING,
                        claimed_by=self.name,
                        claim_expires_at=now
                        + timedelta(seconds=self.runtime.settings.webhooks_claim_seconds),
                    )
                )
        return ids

    # ------------------------------------------------------------ one attempt

    def deliver(self, delivery_id: int) -> Attempt | None:
        """One attempt at a claimed delivery, recorded; None if it was not ours (any more)."""
        with self.runtime.readers() as session:
            delivery = session.get(Delivery, delivery_id)
            if (
                delivery is None
                or delivery.claimed_by != self.name
                or delivery.status is not DeliveryStatus.SENDING
            ):
                return None
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id) if delivery.endpoint_id else None
            session.expunge_all()
        try:
            if delivery.channel is Channel.EMAIL:
                attempt = send_email(self.runtime.settings, delivery)
            elif endpoint is None:
                attempt = Attempt(False, error="the endpoint was removed")
            else:
                attempt = self.post(endpoint, delivery)
        except Exception as exc:  # never let one message stop the sender
            log.exception("delivery %s: unexpected error", delivery_id)
            attempt = Attempt(False, error=f"unexpected error: {exc.__class__.__name__}")
        self.record(delivery_id, attempt)
        return attempt

    def post(self, endpoint: WebhookEndpoint, delivery: Delivery) -> Attempt:
        settings = self.runtime.settings
        refused = addresses.refused_address(endpoint.url, allow_private=settings.webhooks_allow_private)
        if refused:
            return Attempt(False, error=refused)
        now = self.runtime.clock()
        body = events.body_to_send(delivery.body, settings.public_base_url)
        signatures = " ".join(
            Webhook(secret).sign(delivery.message_id, now, body)
            for secret in service.signing_secrets(self.runtime.vault, endpoint, now)
        )
        headers = {
            "content-type": "application/json",
            "user-agent": f"segmentsync/{__version__} (webhooks)",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }
        started = time.monotonic()
        try:
            response = self.client().post(endpoint.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Attempt(
                False,
                error=f"no answer within {settings.webhooks_timeout_seconds:g} s",
                latency_ms=_ms(started),
            )
        except httpx.HTTPError as exc:
            return Attempt(
                False, error=f"{exc.__class__.__name__}: {exc}"[:ERROR_TEXT], latency_ms=_ms(started)
            )
        latency = _ms(started)
        if response.is_success:
            return Attempt(True, code=response.status_code, latency_ms=latency)
        text = response.text[:ERROR_TEXT].strip()
        error = f"HTTP {response.status_code}" + (f": {text}" if text else "")
        return Attempt(False, code=response.status_code, error=error, latency_ms=latency)

    def record(self, delivery_id: int, attempt: Attempt) -> None:
        settings = self.runtime.settings
        now = self.runtime.clock()
        delays = settings.webhook_retry_delays
        with self.runtime.sessions() as session, session.begin():
            delivery = session.get(Delivery, delivery_id)
            if (
                delivery is None
                or delivery.claimed_by != self.name
                or delivery.status is not DeliveryStatus.SENDING
            ):
                return  # our claim expired and another sender took it over
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.response_code = attempt.code
            delivery.latency_ms = attempt.latency_ms
            delivery.error = attempt.error
            delivery.claimed_by = delivery.claim_expires_at = None
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id) if delivery.endpoint_id else None
            if attempt.ok:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                if endpoint is not None:
                    endpoint.failing_since = None
                return
            if endpoint is not None and endpoint.failing_since is None:
                endpoint.failing_since = now
            if delivery.attempts <= len(delays):
                delivery.status = DeliveryStatus.PENDING
                delivery.next_attempt_at = now + timedelta(seconds=delays[delivery.attempts - 1])
                return
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            log.warning(
                "delivery %s (%s) failed after %s attempts",
                delivery.id,
                delivery.event_type,
                delivery.attempts,
            )
            if endpoint is not None and endpoint.enabled and delivery.event_type != events.WEBHOOK_TEST:
                self._disable(session, endpoint, delivery)

    def _disable(self, session: Session, endpoint: WebhookEndpoint, delivery: Delivery) -> None:
        reason = (
            f"delivery #{delivery.id} ({delivery.event_type}) failed {delivery.attempts} times and nothing sent "
            f"to the endpoint has succeeded since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC; last error: {delivery.error}"
        )
        service.disable(session, endpoint, reason)
        message = f"Webhook endpoint #{endpoint.id} ({endpoint.url}) was disabled: {reason}. Fix it, enable it again and redeliver."
        notify.notice(session, kind="webhook_disabled", message=message)
        settings = self.runtime.settings
        link = f"{settings.public_base_url}/webhooks/{endpoint.id}"
        alerts.email(session, settings, "webhook.disabled", f"[segmentsync] Webhook endpoint disabled: {endpoint.url}",
                     f"{message}\n\n{link}")  # fmt: skip

    # ------------------------------------------------------------ loops

    def run_once(self) -> int:
        """Claim what is due and send it, one after another; returns how many were attempted (tests)."""
        ids = self.claim(self.slots)
        try:
            for delivery_id in ids:
                self.deliver(delivery_id)
        finally:
            self.close()
        return len(ids)

    def check_alerts(self) -> int:
        with self.runtime.sessions() as session, session.begin():
            return alerts.check(session, self.runtime.settings, self.runtime.clock())

    def run_forever(self, stop: threading.Event) -> None:
        """Until ``stop``: adopt the old webhook setting, then send due deliveries and check alerts."""
        try:
            adopt_legacy(self.runtime)
        except Exception:
            log.exception("sender %s: adopting SEGMENTSYNC_NOTIFICATION_WEBHOOK_URL failed", self.name)
        if self.runtime.settings.smtp_url is not None:
            register_secret(urlsplit(self.runtime.settings.smtp_url.get_secret_value()).password)
        try:
            self._loop(stop)
        finally:
            self.close()

    def _loop(self, stop: threading.Event) -> None:
        in_flight: set[Future[Attempt | None]] = set()
        with ThreadPoolExecutor(self.slots, thread_name_prefix="webhook") as pool:
            while not stop.is_set():
                events.WRITTEN.event.clear()  # before claiming: a delivery written meanwhile is not missed
                in_flight = {f for f in in_flight if not f.done()}
                try:
                    self._maybe_check_alerts()
                    free = self.slots - len(in_flight)
                    claimed = self.claim(free) if free > 0 else []
                except Exception:  # the database may be briefly away; keep the sender alive
                    log.exception("sender %s: claiming failed", self.name)
                    claimed = []
                in_flight |= {pool.submit(self.deliver, delivery_id) for delivery_id in claimed}
                if len(claimed) < max(free, 1) or free <= 0:
                    self._idle(stop, in_flight)

    def _maybe_check_alerts(self) -> None:
        if time.monotonic() - self._last_check >= self.runtime.settings.alerts_check_seconds:
            self._last_check = time.monotonic()
            self.check_alerts()

    def _idle(self, stop: threading.Event, in_flight: set[Future[Attempt | None]]) -> None:
        deadline = time.monotonic() + self.poll_seconds
        while not stop.wait(WAKE_SECONDS):
            if events.WRITTEN.event.is_set() or time.monotonic() >= deadline:
                return
            if any(f.done() for f in in_flight) and len(in_flight) >= self.slots:
                return


def adopt_legacy(runtime: Runtime) -> None:
    if not runtime.settings.notification_webhook_url:
        return
    with runtime.sessions() as session, session.begin():
        made = service.adopt_legacy(session, runtime.settings, runtime.vault)
    if made is not None:
        log.warning(
            "SEGMENTSYNC_NOTIFICATION_WEBHOOK_URL is deprecated: it is now webhook endpoint #%s (run.failed, "
            "Standard Webhooks signatures); manage it under Admin > Webhooks and unset the variable",
            made.id,
        )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# ---------------------------------------------------------------- e-mail


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None


def smtp_of(settings: Settings) -> Smtp:
    """``smtp://user:password@host:587`` (STARTTLS, required) · ``smtps://…:465`` (TLS from the start) ·
    ``smtp://host:25?starttls=false`` (plain: a relay on the same host or network only)."""
    if settings.smtp_url is None:
        raise ConfigError("SEGMENTSYNC_SMTP_URL is not set", code="no_smtp")
    parts = urlsplit(settings.smtp_url.get_secret_value())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError("SEGMENTSYNC_SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465",
                          code="bad_smtp_url")  # fmt: skip
    implicit = parts.scheme == "smtps"
    plain = parse_qs(parts.query).get("starttls", ["true"])[0].lower() in ("false", "0", "no", "off")
    return Smtp(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 587),
        implicit_tls=implicit,
        starttls=not implicit and not plain,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def send_email(settings: Settings, delivery: Delivery) -> Attempt:
    started = time.monotonic()
    try:
        smtp = smtp_of(settings)
    except ConfigError as exc:
        return Attempt(False, error=exc.message)
    content = orjson.loads(delivery.body)
    message = EmailMessage()
    message["Subject"] = content["subject"]
    message["From"] = settings.smtp_from or f"segmentsync <segmentsync@{socket.getfqdn()}>"
    message["To"] = ", ".join(delivery.recipients or [])
    message["Message-ID"] = f"<{delivery.message_id}@segmentsync>"  # the same on a retry: clients dedupe
    message.set_content(content["text"])
    timeout = settings.webhooks_timeout_seconds
    context = ssl.create_default_context()
    try:
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
            if smtp.implicit_tls
            else smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        )
        with client:
            if smtp.starttls:
                client.starttls(context=context)  # raises if the server does not offer it
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return Attempt(
            False, error=f"SMTP: {exc.__class__.__name__}: {exc}"[:ERROR_TEXT], latency_ms=_ms(started)
        )
    return Attempt(True, latency_ms=_ms(started))


def due_count(session: Session, now: datetime) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count()).where(
                Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now
            )
        )
        or 0
    )
