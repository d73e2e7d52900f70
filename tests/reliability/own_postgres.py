"""A PostgreSQL server the test owns: a throwaway cluster (``initdb`` in a temporary folder) on a
free port, that a test may restart (``pg_ctl restart -m fast`` or ``-m immediate``) while a worker
uses it. The shared server at 127.0.0.1:5432 is everyone's and listens on loopback only.

Fast settings (``fsync = off``): what the tests check is what a client sees of a restart, not the
durability of the throwaway cluster against a power cut. ``synchronous_commit`` stays on: with it
off an immediate restart forgets commits already acknowledged (a first version lost a checkpoint of
100 rows that way), which no production server is set up to do. As root the server runs as the ``postgres`` user
(PostgreSQL refuses root); otherwise as the current user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from segmentsync.db import create_engine, upgrade
from stores import truncate_postgres

DATABASE = "segmentsync"
SETTINGS = """
listen_addresses = '{listen}'
port = {port}
unix_socket_directories = '{sockets}'
max_connections = 60
shared_buffers = 16MB
fsync = off
full_page_writes = off
log_min_messages = warning
"""


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def unavailable() -> str | None:
    """None if this machine can run a server of the test's own, else the reason."""
    for name in ("initdb", "pg_ctl"):
        if _binary(name) is None:
            return f"no {name} on PATH or in /usr/lib/postgresql/*/bin: cannot run a PostgreSQL of the test's own"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user: PostgreSQL refuses to run as root"
        if shutil.which("runuser") is None:
            return "running as root without runuser: cannot start PostgreSQL as the 'postgres' user"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnPostgres:
    """``start()`` a cluster; ``restart(mode)``; ``listen_also(address)``; ``stop()`` removes it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="segmentsync-own-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.listen = ["127.0.0.1"]
        self.clients = ["127.0.0.1/32"]
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    # ------------------------------------------------------------------ the server's life

    def start(self) -> OwnPostgres:
        self._run(
            _binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self._write_config()
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
        admin.dispose()
        engine = create_engine(self.url())
        upgrade(engine)
        engine.dispose()
        return self

    def restart(self, mode: str = "fast") -> float:
        """``pg_ctl restart -m mode``, waiting until the server accepts connections; its seconds."""
        started = time.monotonic()
        self._run(
            _binary("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "restart",
        )
        return time.monotonic() - started

    def listen_also(self, address: str, *clients: str) -> None:
        """Listen on ``address`` too and let ``clients`` (hosts) in; restarts the server."""
        self.listen.append(address)
        self.clients += [f"{client}/32" for client in clients]
        self._write_config()
        self.restart()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self._as_user, str(_binary("pg_ctl")), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ what clients use

    def url(self, database: str = DATABASE, host: str = "127.0.0.1") -> str:
        return f"postgresql://postgres@{host}:{self.port}/{database}"

    def empty_store(self) -> str:
        """The migrated metadata store, emptied (as the shared server's ``store_url`` does)."""
        truncate_postgres(self.url())
        return self.url()

    def tail(self, lines: int = 20) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )

    # ------------------------------------------------------------------ helpers

    def _write_config(self) -> None:
        settings = SETTINGS.format(listen=", ".join(self.listen), port=self.port, sockets=self.root)
        (self.data / "postgresql.auto.conf").write_text(settings)
        hba = ["local all all trust"] + [f"host all all {client} trust" for client in self.clients]
        (self.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")

    def _run(self, *command: str | None) -> None:
        result = subprocess.run(
            [*self._as_user, *[str(part) for part in command]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr}\n{self.tail()}")
