"""`segmentsync worker` as a real subprocess, configured by environment like in production, so
that a test can kill it with SIGKILL (no cleanup, no goodbye) and start another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from segmentsync.settings import Settings

CLI = Path(sys.executable).with_name("segmentsync")
LEASE_SECONDS = 2  # a dead worker's run is claimable again this soon


def worker_env(settings: Settings, database_url: str, **extra: str) -> dict[str, str]:
    assert settings.secret_key is not None
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SEGMENTSYNC_") and not key.startswith("PYTEST")
    }
    env.update(
        SEGMENTSYNC_DATA_DIR=str(settings.data_dir),
        SEGMENTSYNC_DATABASE_URL=database_url,
        SEGMENTSYNC_SECRET_KEY=settings.secret_key.get_secret_value(),
        SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL=settings.campaign_monitor_api_url,
        SEGMENTSYNC_CAMPAIGN_MONITOR_OAUTH_URL=settings.campaign_monitor_oauth_url,
        SEGMENTSYNC_CONSTANT_CONTACT_API_URL=settings.constant_contact_api_url,
        SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL=settings.constant_contact_oauth_url,
        SEGMENTSYNC_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        # leases of seconds here: at the lowest priority (the default, 19) a worker on a machine
        # busy with the rest of the suite can wait longer than that for a core, and lose its lease
        # to starvation rather than to the fault a test makes (test_worker_nice covers the priority)
        SEGMENTSYNC_WORKER_NICE="0",
        SEGMENTSYNC_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    """One `segmentsync worker` process; its output goes to a log file for post-mortems."""

    env: dict[str, str]
    log_path: Path
    prefix: list[str] = field(default_factory=list)  # e.g. ``ip netns exec <name>``: it execs, same pid
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.prefix, str(CLI), "worker"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, its lease is left to expire."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1
        self._close_log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
