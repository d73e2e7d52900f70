"""Runtime configuration, read from SEGMENTSYNC_* environment variables.

Built once by :func:`get_settings` at the edge (CLI, app factory, worker) and passed in;
nothing reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from segmentsync import files

PRODUCTION_URLS = {
    "campaign_monitor_api": "https://api.createsend.com/api/v3.3",
    "campaign_monitor_oauth": "https://api.createsend.com/oauth",
    "constant_contact_api": "https://api.cc.email/v3",
    "constant_contact_oauth": "https://authz.constantcontact.com/oauth2/default/v1",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTSYNC_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".segmentsync")
    database_url: str | None = None  # default: SQLite file in data_dir
    profiles_url: str | None = None  # default: DuckDB file in data_dir
    profiles_table: str = "profiles"
    profiles_key: str = "profile_id"
    # A SQL or dbt segment's query is stopped after this long (counting, preview, a run's count).
    sql_timeout_seconds: float = Field(default=30.0, gt=0, le=24 * 3600)
    secret_key: SecretStr | None = None  # Fernet key(s), comma-separated, newest first

    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str | None = None  # public URL of the web app, for OAuth redirect URIs
    log_format: str = "text"  # "text" or "json"
    log_level: str = "INFO"

    # Platform endpoints: overridable so that connections can point at the sandbox.
    campaign_monitor_api_url: str = PRODUCTION_URLS["campaign_monitor_api"]
    campaign_monitor_oauth_url: str = PRODUCTION_URLS["campaign_monitor_oauth"]
    constant_contact_api_url: str = PRODUCTION_URLS["constant_contact_api"]
    constant_contact_oauth_url: str = PRODUCTION_URLS["constant_contact_oauth"]
    # OAuth applications registered with the platforms (the secret is a secret).
    campaign_monitor_client_id: str | None = None
    campaign_monitor_client_secret: SecretStr | None = None
    constant_contact_client_id: str | None = None
    constant_contact_client_secret: SecretStr | None = None

    export_limit: int = 1_000_000
    workspace_memory: str = "160MB"  # a run's in-process DuckDB spills to disk beyond this
    max_batch_rows: int | None = None  # cap below the platform's own batch size (None: the platform's)
    run_history_rows_kept: int = 20  # runs per export whose per-row outcomes are kept
    # Deprecated (one run.failed URL): at start an endpoint is made of them (docs/operations.md).
    notification_webhook_url: str | None = None
    notification_webhook_secret: SecretStr | None = None
    # Webhooks and e-mail (docs/operations.md, "Webhooks, alerts and email").
    webhooks_allow_private: bool = False  # let endpoints be loopback/private addresses (tests, on-premises)
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Seconds before each retry after a failed attempt (8 attempts over ≈ 27 hours by default).
    webhooks_retry_seconds: str = "5,300,1800,7200,18000,36000,36000"
    webhooks_claim_seconds: int = Field(default=60, ge=1)  # a sender's hold on a delivery it sends
    alerts_check_seconds: float = Field(default=60.0, gt=0)  # how often stale and slow runs are looked for
    smtp_url: SecretStr | None = None  # smtp://user:password@host:587 (STARTTLS) or smtps://host:465
    smtp_from: str | None = None  # the From address of alert e-mails
    worker_lease_seconds: int = 60
    # `segmentsync worker` lowers its own CPU priority by this much (POSIX nice, 0: as started),
    # so that on a shared machine the web process answers first and runs take the idle cores.
    # 19 (the lowest): at 10 the 20 runs' burst still pushed 50 readers' p95 to 650-720 ms, at 19
    # 490-550 ms (docs/benchmarks.md); the runs then take longer only while people are reading.
    worker_nice: int = Field(default=19, ge=0, le=19)
    # Requests the web process works on at once (anyio's default, 40; the rest wait for a place in
    # the event loop, holding nothing: api/admission.py), and the store connections each process
    # may hold: keep the pool at least as large as the threads. A request holds its connection
    # between thread hops (tests/reliability/test_concurrent_readers.py).
    api_threads: int = Field(default=40, ge=1, le=1000)
    # `serve`'s web processes on its one port (one Python process answers on one core at most);
    # the scheduler and `serve`'s workers run in the first only. Each has its threads and pool.
    web_processes: int = Field(default=1, ge=1, le=64)
    # Connections beyond the pool's size are closed as they come back: under a steady crowd of
    # readers 10 + 30 opened 650 PostgreSQL sessions in 45 s (docs/benchmarks.md); 20 + 20 keep more.
    database_pool_size: int = Field(default=20, ge=1, le=1000)
    database_pool_overflow: int = Field(default=20, ge=0, le=1000)
    # How long a request waits for a store connection before answering 503 (never a 500).
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # Constant Contact's requests per UTC day per application, counted by all workers together
    # (the platform's 10,000 unless your application was granted another)
    constant_contact_daily_quota: int = Field(default=10_000, ge=1)
    scheduler_interval_seconds: float = 15.0
    # A browser session ends after this long without a request, and this long after signing in.
    session_idle_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 90)
    secure_cookies: bool = False  # HTTPS only: Secure cookies and Strict-Transport-Security
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks ("10.0.0.5, 172.16.0.0/12"). Default: none, so a forged header from
    # anyone (loopback included) changes neither the client address nor the scheme.
    trusted_proxies: str = ""
    # Exports whose last success is a metric (segmentsync_export_last_success_timestamp_seconds):
    # comma-separated ids or names, or "*" for all. Default: none (an export label per export).
    metrics_exports: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (such as 10.0.0.0/8)") from None
        return value

    @field_validator("webhooks_retry_seconds")
    @classmethod
    def _retry_delays(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("must be seconds separated by commas, such as 5,300,1800") from None
        if any(delay < 0 for delay in delays):
            raise ValueError("a retry delay cannot be negative")
        return value

    @property
    def webhook_retry_delays(self) -> list[float]:
        return [float(part) for part in self.webhooks_retry_seconds.split(",") if part.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def metrics_export_list(self) -> list[str]:
        return [part.strip() for part in self.metrics_exports.split(",") if part.strip()]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'segmentsync.db'}"

    @property
    def resolved_profiles_url(self) -> str:
        return self.profiles_url or f"duckdb://{self.data_dir / 'profiles.duckdb'}"

    @property
    def public_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (tests, CLI flags)."""
    settings = Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the values
    files.private_dir(settings.data_dir)  # 0700: the stores, the key file and workspaces are inside
    return settings
