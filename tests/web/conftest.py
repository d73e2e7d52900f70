"""The web UI served for real: uvicorn on a free port, a worker, the sandbox, Debian's Chromium.

* ``live`` serves the whole app (API + pages) from a thread on a free loopback port, with a run
  worker in another thread, a small profile table, and settings pointing at the sandbox (OAuth
  applications registered there for our callback). One admin, one contributor, one viewer.
* ``browser`` is one headless Chromium per test session (skipped only if /usr/bin/chromium is
  missing); ``page_for`` opens a fresh browser context (its own cookies, language) per person.

The browser tests run on SQLite only: they check the pages; the services they call are tested on
both stores by their own tests.
"""

from __future__ import annotations

import csv
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from segmentsync.api.app import create_app
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role
from segmentsync.db import transaction
from segmentsync.profiles.load import load_file
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.scheduling.worker import Worker
from segmentsync.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
ADMIN, CONTRIBUTOR, VIEWER = "admin@example.com", "carla@example.com", "victor@example.com"
# One member the platforms refuse: an internationalised address (valid for us, not for Campaign
# Monitor's ASCII-only check), so the run ends "succeeded with rejections" with the platform's message.
REJECTED_EMAIL = "jürgen.müller@example.de"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_profiles(path: Path) -> None:
    countries = ["PL", "LV", "RO", "FI", "DE"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["profile_id", "email", "first_name", "last_name", "country", "orders", "total_spend"]
        )
        for number in range(1, 41):
            email = f"customer{number:02d}@example.com"
            writer.writerow([f"p{number:03d}", email, f"First{number}", f"Last{number}",
                             countries[number % 5], number % 7, round(number * 12.5, 2)])  # fmt: skip
        writer.writerow(["p900", REJECTED_EMAIL, "Jürgen", "Müller", "PL", 3, 99.5])
        writer.writerow(["p901", "not-an-email", "No", "Email", "PL", 1, 10.0])


class WorkerThread:
    """The ``live`` server's worker: a real ``Worker.run_forever`` in a thread, which a test may
    stop (its runs then wait, queued) and start again — to open a run page before the run moves."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._shutdown = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        assert self._thread is None, "the worker is running already"
        self._shutdown = threading.Event()
        self._thread = threading.Thread(
            target=Worker(self.runtime, poll_seconds=0.2).run_forever, args=(self._shutdown,),
            name="worker", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._shutdown.set()
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the worker did not stop"
            self._thread = None


@dataclass
class Live:
    url: str
    runtime: Runtime
    sandbox: Sandbox
    cm_client: dict[str, Any]
    cc_account: dict[str, Any]
    workers: WorkerThread

    def cm_list(self, title: str) -> str:
        """A Campaign Monitor list made through the emulator's real API; returns its ID."""
        return self.sandbox.cm_create_list(self.cm_client, title)

    def cc_list(self, name: str) -> str:
        return self.sandbox.cc_create_list(self.cc_account["access_token"], name)


def _register_oauth_apps(sandbox: Sandbox, callback: str) -> dict[str, str]:
    cm = httpx.post(
        f"{sandbox.campaign_monitor_url}/_sandbox/oauth_apps",
        json={"name": "segmentsync", "redirect_uri": callback},
        timeout=10,
    ).json()
    cc = httpx.post(
        f"{sandbox.constant_contact_url}/_sandbox/apps",
        json={"name": "segmentsync", "redirect_uris": [callback]},
        timeout=10,
    ).json()
    return {
        "campaign_monitor_client_id": cm["client_id"],
        "campaign_monitor_client_secret": cm["client_secret"],
        "constant_contact_client_id": cc["client_id"],
        "constant_contact_client_secret": cc["client_secret"],
    }


def _settings(tmp_path: Path, sqlite_template: Path, sandbox: Sandbox, url: str) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = tmp_path / "segmentsync.db"
    shutil.copyfile(sqlite_template, database)
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{database}",
        secret_key=Fernet.generate_key().decode(),
        base_url=url,
        campaign_monitor_api_url=sandbox.campaign_monitor_api,
        campaign_monitor_oauth_url=sandbox.campaign_monitor_oauth,
        constant_contact_api_url=sandbox.constant_contact_api,
        constant_contact_oauth_url=sandbox.constant_contact_oauth,
        **_register_oauth_apps(sandbox, f"{url}/api/v1/connections/oauth/callback"),
    )


def _people(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        for email, role, name in ((ADMIN, Role.ADMIN, "Ada Admin"), (CONTRIBUTOR, Role.CONTRIBUTOR, "Carla"),
                                  (VIEWER, Role.VIEWER, "Victor")):  # fmt: skip
            auth_service.create_user(
                session=session, email=email, role=role, name=name, password=PASSWORD, actor=None
            )


@pytest.fixture
def live(tmp_path: Path, sandbox: Sandbox, _sqlite_template: Path) -> Iterator[Live]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = _settings(tmp_path, _sqlite_template, sandbox, url)
    profiles = tmp_path / "profiles.csv"
    _write_profiles(profiles)
    load_file(settings.data_dir / "profiles.duckdb", profiles)
    runtime = Runtime.open(settings, migrate=False)  # the template is migrated already
    _people(runtime)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = threading.Thread(target=server.run, name="web", daemon=True)
    serving.start()
    workers = WorkerThread(runtime)
    workers.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    try:
        yield Live(
            url,
            runtime,
            sandbox,
            sandbox.create_cm_client("Acme"),
            sandbox.create_cc_account("Acme CC"),
            workers,
        )
    finally:
        server.should_exit = True
        serving.join(timeout=10)
        workers.stop()
        runtime.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); scripts/test installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page_for(browser: Any, live: Live) -> Iterator[Callable[..., Any]]:
    """``page_for(email, locale="en-US")``: a signed-in page in a browser context of its own.

    Whatever the Content-Security-Policy blocked on any of its pages (an inline script or
    handler, a style attribute) fails the test when it ends.
    """
    contexts: list[Any] = []
    blocked: list[str] = []

    def watch(message: Any) -> None:
        if "Content Security Policy" in message.text:
            blocked.append(f"{message.location.get('url')}: {message.text}")

    def open_page(email: str | None = None, *, locale: str = "en-US") -> Any:
        context = browser.new_context(
            base_url=live.url, locale=locale, viewport={"width": 1360, "height": 900}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", watch)
        if email is not None:
            sign_in(page, email)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not blocked, "the Content-Security-Policy blocked:\n" + "\n".join(blocked)


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/sign-in")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/exports")


def screenshot(page: Any, name: str) -> None:
    """Save a screenshot to docs/screenshots when SEGMENTSYNC_SCREENSHOTS names that folder."""
    import os

    folder = os.environ.get("SEGMENTSYNC_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
