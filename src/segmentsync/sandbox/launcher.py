"""Start the sandbox in a separate process and talk to its control endpoints.

Used by the test fixtures, the benchmarks and ``quickstart``: the emulators run in their own
process (their own CPU core), as the real platforms would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


class Sandbox:
    """A running sandbox process: base URLs of both emulators and their control endpoints."""

    def __init__(self, process: subprocess.Popen[bytes], urls: dict[str, str]) -> None:
        self.process = process
        self.campaign_monitor_url = urls["campaign_monitor"]
        self.constant_contact_url = urls["constant_contact"]
        self._http = httpx.Client(timeout=30)

    # API bases, as a connection's base-URL override would name them
    @property
    def campaign_monitor_api(self) -> str:
        return f"{self.campaign_monitor_url}/api/v3.3"

    @property
    def campaign_monitor_oauth(self) -> str:
        return f"{self.campaign_monitor_url}/oauth"

    @property
    def constant_contact_api(self) -> str:
        return f"{self.constant_contact_url}/v3"

    @property
    def constant_contact_oauth(self) -> str:
        return f"{self.constant_contact_url}/oauth2/default/v1"

    @classmethod
    def start(
        cls, *, host: str = "127.0.0.1", ports: dict[str, int] | None = None, timeout: float = 30
    ) -> Sandbox:
        ports = ports or {}
        with tempfile.TemporaryDirectory(prefix="segmentsync-sandbox-") as tmp:
            ready = Path(tmp) / "ready.json"
            command = [
                sys.executable,
                "-m",
                "segmentsync.sandbox",
                "--host",
                host,
                "--cm-port",
                str(ports.get("campaign_monitor", 0)),
                "--cc-port",
                str(ports.get("constant_contact", 0)),
                "--ready-file",
                str(ready),
            ]
            process = subprocess.Popen(command, start_new_session=True)  # noqa: S603  # our own module
            deadline = time.monotonic() + timeout
            while not ready.exists():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the sandbox exited with code {process.returncode} before it was ready"
                    )
                if time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError("the sandbox did not start in time")
                time.sleep(0.05)
            urls = json.loads(ready.read_text())
        return cls(process, urls)

    def stop(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.post(url, json=body or {})
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        """Forget everything in both emulators (data, faults, limits)."""
        self._post(f"{self.campaign_monitor_url}/_sandbox/reset")
        self._post(f"{self.constant_contact_url}/_sandbox/reset")

    def create_cm_client(self, name: str = "Sandbox client") -> dict[str, Any]:
        """``{"ClientID": ..., "ApiKey": ...}`` (plus OAuth app credentials, see the emulator)."""
        result: dict[str, Any] = self._post(f"{self.campaign_monitor_url}/_sandbox/clients", {"Name": name})
        return result

    def create_cc_account(self, name: str = "Sandbox account", **facts: Any) -> dict[str, Any]:
        """``{"access_token", "refresh_token", "client_id", "client_secret", "account_id"}``; ``facts``:
        ``organization_name``, ``contact_email``, ``first_name``, ``last_name``, ``scopes`` (a list)."""
        result: dict[str, Any] = self._post(
            f"{self.constant_contact_url}/_sandbox/accounts", {"name": name, **facts}
        )
        return result

    # What an account owner does in the platform itself, through the emulators' real APIs.

    def cm_create_list(self, client: dict[str, Any], title: str) -> str:
        """A Campaign Monitor list of ``client`` (from :meth:`create_cm_client`); returns its ID."""
        response = self._http.post(
            f"{self.campaign_monitor_api}/lists/{client['ClientID']}.json",
            json={"Title": title},
            auth=(client["ApiKey"], "x"),
        )
        response.raise_for_status()
        return str(response.json())

    def cm_create_field(self, client: dict[str, Any], list_id: str, name: str) -> str:
        """A Text custom field on a Campaign Monitor list; returns its key (``[Name]``)."""
        response = self._http.post(
            f"{self.campaign_monitor_api}/lists/{list_id}/customfields.json",
            json={"FieldName": name, "DataType": "Text", "Options": [], "VisibleInPreferenceCenter": True},
            auth=(client["ApiKey"], "x"),
        )
        response.raise_for_status()
        return str(response.json())

    def cc_create_list(self, access_token: str, name: str) -> str:
        """A Constant Contact contact list; returns its ``list_id``."""
        response = self._http.post(
            f"{self.constant_contact_api}/contact_lists",
            json={"name": name},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        response.raise_for_status()
        return str(response.json()["list_id"])

    def cm_faults(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post(f"{self.campaign_monitor_url}/_sandbox/faults", changes)
        return result

    def cc_faults(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post(f"{self.constant_contact_url}/_sandbox/faults", changes)
        return result
