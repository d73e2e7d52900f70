"""One HTTP request to a platform, done right: signed, paced, classified, retried.

``ApiClient.request`` sends a request through an ``httpx.Client`` (keep-alive pool, explicit
timeouts), and looks every failure up in the error table (``policy.RULES``):

* RETRY: again, with exponential backoff and jitter (stamina), within ``RetryPolicy.attempts``
  and ``RetryPolicy.timeout``; then ``Retriable``.
* RATE_LIMITED: the limiter is paused for as long as the platform says, then the request is
  repeated. This costs no attempt and no retry time, only ``rate_limit_budget``.
* REFRESH_TOKEN: the auth refreshes the token and the request is repeated (at most twice).
* CONFIG_ERROR, QUOTA_EXCEEDED, FATAL: the domain error, with the platform's code and message.
* REJECT_ROWS: ``RowsRejected``, for the caller to turn into per-row outcomes.
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import stamina

from segmentsync.destinations.auth import Auth
from segmentsync.destinations.policy import Reaction, Tuning, classify, config_error_code
from segmentsync.destinations.ratelimit import Clock, Quota, next_utc_midnight
from segmentsync.errors import N_, ConfigError, Fatal, QuotaExceeded, Retriable
from segmentsync.observe import metrics

log = logging.getLogger(__name__)
MIN_RATE_WAIT = 0.1  # "Reset: 0" still means wait: never hammer a server that said no
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
# The engine sets it to the run's stop event for the batches it sends: once set (the worker gave
# the run up — its lease could not be renewed or was lost — or is stopping), a failed request is
# not tried again; the batch is left to whoever resumes the run. A worker cut off from the store
# otherwise kept retrying the batches in flight and sent them again after the next owner had.
GIVEN_UP: ContextVar[threading.Event | None] = ContextVar("segmentsync_given_up", default=None)


class GivenUp(Retriable):
    """A failed request not tried again because the run was given up (``GIVEN_UP`` is set)."""


class Limiter(Protocol):
    def acquire(self) -> float: ...

    def pause(self, seconds: float) -> None: ...


class RowsRejected(Exception):  # an answer to act on, not a failure of ours
    """The platform refused the row(s) of a request (REJECT_ROWS); the body may say more."""

    def __init__(self, status: int, code: str | None, message: str, body: Any) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class _Transient(Exception):
    pass


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.1f} s")
        self.wait = wait


class _Refreshed(Exception):
    pass


def error_of(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) of an error answer, from any of the platforms' error shapes."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, (response.text[:200] or response.reason_phrase)
    items = body if isinstance(body, list) else [body]
    codes, messages = [], []
    for item in items:
        if not isinstance(item, dict):
            continue
        for code_key, message_key in (
            ("Code", "Message"),
            ("error_key", "error_message"),
            ("error", "error_description"),
        ):
            if code_key in item:
                codes.append(str(item[code_key]))
                messages.append(str(item.get(message_key) or item[code_key]))
                break
    if not codes:
        return None, response.text[:200] or response.reason_phrase
    return codes[0], "; ".join(messages)


def json_of(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError as exc:
        raise Fatal(
            "unreadable answer from %(url)s: %(exc)s", params={"url": response.request.url, "exc": exc}
        ) from exc


class ApiClient:
    def __init__(
        self,
        *,
        platform: str,
        title: str,
        base_url: str,
        http: httpx.Client,
        auth: Auth,
        limiter: Limiter,
        tuning: Tuning,
        clock: Clock,
        quota: Quota | None = None,
        observe: Callable[[Mapping[str, str]], None] | None = None,
        rate_wait: Callable[[httpx.Response, str | None], float] | None = None,
    ) -> None:
        self.platform = platform
        self.title = title  # "Campaign Monitor": the start of every message
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path  # operations are named without it
        self.http = http
        self.auth = auth
        self._limiter = limiter
        self._tuning = tuning
        self._clock = clock
        self._quota = quota
        self._observe = observe
        self._rate_wait = rate_wait or (lambda response, code: tuning.short_rate_wait)
        self.requests_sent = 0  # counted without a lock: a statistic, not a limit
        self.pushback = 0  # answers that asked us to slow down (see Destination.pushback)

    def request(self, method: str, path: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        """Send until it succeeds or the table says stop; ``path`` is relative to the API base."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        if json is not None:
            kwargs["content"] = orjson.dumps(json)
            kwargs["headers"] = JSON_HEADERS
        policy = self._tuning.retry
        failed, failing_time, waited, refreshes = 0, 0.0, 0.0, 0
        while True:
            started, tried = self._clock(), 0
            try:
                for attempt in stamina.retry_context(
                    on=_Transient,
                    attempts=max(1, policy.attempts - failed),
                    timeout=max(0.001, policy.timeout - failing_time),
                    wait_initial=policy.wait_initial,
                    wait_max=policy.wait_max,
                    wait_jitter=policy.wait_jitter,
                ):
                    with attempt:
                        tried = attempt.num
                        given_up = GIVEN_UP.get()
                        if tried > 1 and given_up is not None and given_up.is_set():
                            raise GivenUp(
                                f"{self.title}: {method} {path} not tried again: the run was given up"
                            )
                        return self._send_once(method, url, kwargs)
            except _Transient as exc:
                raise Retriable(
                    "%(platform)s: %(method)s %(path)s failed %(value)s times, giving up: %(exc)s",
                    params={
                        "platform": self.title,
                        "method": method,
                        "path": path,
                        "value": failed + tried,
                        "exc": exc,
                    },
                    details={"attempts": failed + tried},
                ) from exc
            except _RateLimited as limited:
                waited += limited.wait
                if waited > policy.rate_limit_budget:
                    raise Retriable(
                        "%(platform)s: still rate limited after waiting %(waited)s s",
                        params={"platform": self.title, "waited": format(waited, ".0f")},
                    ) from limited
            except _Refreshed:
                refreshes += 1
                if refreshes > 2:
                    raise ConfigError(
                        "%(platform)s: the refreshed OAuth token is refused too",
                        params={"platform": self.title},
                    ) from None
            failed += tried - 1  # the attempt that was rate limited or refreshed is not a failure
            failing_time += self._clock() - started

    def _send_once(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        if self._quota is not None:
            self._quota.take()
        self._limiter.acquire()
        response: httpx.Response | None = None
        operation = metrics.operation(method, url, self._base_path)
        started = time.perf_counter()
        try:  # every acquired request is observed, answered or not (HeaderPacer counts those in flight)
            auth_headers, token = self.auth.headers()
            headers = {**kwargs.get("headers", {}), **auth_headers}
            self.requests_sent += 1
            response = self.http.request(method, url, **{**kwargs, "headers": headers})
        except httpx.HTTPError as exc:
            metrics.platform_request(self.platform, operation, None, time.perf_counter() - started)
            rule = classify(self.platform, exc=exc)
            if rule.action is Reaction.RETRY:
                self.pushback += 1
                raise _Transient(f"{exc.__class__.__name__}: {exc}") from exc
            raise Fatal(
                "%(platform)s: %(name)s: %(exc)s",
                params={"platform": self.title, "name": exc.__class__.__name__, "exc": exc},
            ) from exc
        finally:
            if self._observe is not None:
                self._observe(response.headers if response is not None else {})
        metrics.platform_request(
            self.platform, operation, response.status_code, time.perf_counter() - started
        )
        if response.is_success:
            return response
        return self._failed(response, token)

    def _failed(self, response: httpx.Response, token: str) -> httpx.Response:
        status = response.status_code
        code, message = error_of(response)
        rule = classify(self.platform, status=status, code=code)
        what = (
            N_("%(platform)s: %(message)s (HTTP %(status)s, code %(code)s)")
            if code
            else N_("%(platform)s: %(message)s (HTTP %(status)s)")
        )
        said = {"platform": self.title, "message": message, "status": status, "code": code}
        details = {"status": status, "platform_code": code, "platform_message": message}
        match rule.action:
            case Reaction.RETRY:
                self.pushback += 1
                raise _Transient(what % said)
            case Reaction.RATE_LIMITED:
                self.pushback += 1
                metrics.throttled(self.platform)
                if self._quota is not None:
                    self._quota.refund()
                wait = self._rate_wait(response, code)
                log.info(
                    "%s: rate limited (HTTP %s %s), pausing requests for %.1f s",
                    self.title,
                    status,
                    code,
                    wait,
                )
                self._limiter.pause(wait)
                raise _RateLimited(wait)
            case Reaction.REFRESH_TOKEN:
                if self.auth.refresh(token):
                    raise _Refreshed
                raise ConfigError(what, params=said, code="unauthorized", details=details)
            case Reaction.CONFIG_ERROR:
                raise ConfigError(what, params=said, code=config_error_code(rule, status), details=details)
            case Reaction.REJECT_ROWS:
                body = json_of(response) if response.content else None
                raise RowsRejected(status, code, message, body)
            case Reaction.QUOTA_EXCEEDED:
                if self._quota is not None:
                    raise self._quota.spent()
                resets_at = next_utc_midnight(self._clock())
                raise QuotaExceeded(what, params=said, resets_at=resets_at)
            case _:
                raise Fatal(what, params=said, details=details)

    def close(self) -> None:
        self.http.close()


def rate_limit_headers_wait(default: float) -> Callable[[httpx.Response, str | None], float]:
    """Wait per ``Retry-After`` or ``X-RateLimit-Reset`` (seconds), else ``default``."""

    def wait(response: httpx.Response, code: str | None) -> float:
        for header in ("retry-after", "x-ratelimit-reset"):
            value = response.headers.get(header)
            if value:
                try:
                    return max(MIN_RATE_WAIT, float(value))
                except ValueError:
                    continue
        return default

    return wait


def new_http_client(
    transport: httpx.BaseTransport | None, *, timeout: httpx.Timeout, connections: int
) -> httpx.Client:
    """A keep-alive pool sized for the threads that share it; ``transport`` is the test seam."""
    transport = transport or httpx.HTTPTransport(
        verify=_tls(), limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    )
    return httpx.Client(transport=transport, timeout=timeout, headers={"User-Agent": "segmentsync"})


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for the process: loading the CA bundle takes 20-50 ms, and every run and
    connection check opens a client (a context is safe to share between clients and threads)."""
    return httpx.create_ssl_context()
