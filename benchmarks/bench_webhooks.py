"""Webhook delivery: how fast one process's sender empties the outbox into a local receiver.

Writes ``--events`` events (one delivery each) into the outbox in one transaction, then lets one
``Sender`` (4 requests in flight, as in ``serve``/``worker``) send them to an HTTP receiver on
127.0.0.1 that answers 200 at once; reports the wall time and deliveries per second, and the cost
of writing the events (the part a run's end transaction pays).

    .venv/bin/python -m benchmarks.bench_webhooks [--events 2000] [--store sqlite|postgresql] [--no-publish]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet

from benchmarks.report import publish
from benchmarks.world import metadata_store
from segmentsync.db import transaction
from segmentsync.notifications import events, service
from segmentsync.notifications.delivery import Sender
from segmentsync.notifications.models import Delivery, DeliveryStatus
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings


@contextmanager
def receiver() -> Iterator[tuple[str, list[int]]]:
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            count[0] += 1
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", count
    finally:
        server.shutdown()
        server.server_close()


def measure(store: str, events_count: int, folder: Path) -> list[object]:
    with metadata_store(store, folder) as url:
        settings = Settings(data_dir=folder, database_url=url, secret_key=Fernet.generate_key().decode(),
                            webhooks_allow_private=True)  # fmt: skip
        runtime = Runtime.open(settings)
        try:
            with receiver() as (hook, count):
                with transaction(runtime.sessions) as session:
                    service.create(session=session, settings=settings, vault=runtime.vault, actor=None, url=hook,
                                   event_types=["*"])  # fmt: skip
                started = time.perf_counter()
                with transaction(runtime.sessions) as session:
                    for number in range(events_count):
                        events.emit(session, events.RUN_SUCCEEDED, {"run": {"id": number}})
                written = time.perf_counter() - started
                stop = threading.Event()
                sender = threading.Thread(target=Sender(runtime).run_forever, args=(stop,), daemon=True)
                started = time.perf_counter()
                sender.start()
                while True:
                    with runtime.readers() as session:
                        left = session.scalar(
                            sa.select(sa.func.count()).where(Delivery.status != DeliveryStatus.DELIVERED)
                        )
                    if not left:
                        break
                    time.sleep(0.05)
                sent = time.perf_counter() - started
                stop.set()
                sender.join()
                assert count[0] == events_count, count[0]
        finally:
            runtime.close()
    return [store, f"{events_count:,}", f"{written * 1000 / events_count:.2f}", f"{sent:.1f}",
            f"{events_count / sent:,.0f}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows = []
    for store in stores:
        with tempfile.TemporaryDirectory() as folder:
            rows.append(measure(store, args.events, Path(folder)))
    headers = [
        "store",
        "events",
        "ms to write one event (in its transaction)",
        "s to deliver all",
        "deliveries/s",
    ]
    notes = ("One sender (4 requests in flight), one endpoint on 127.0.0.1 answering 200 at once; each delivery "
             "is claimed, signed (standardwebhooks), POSTed and recorded in its own transaction.")  # fmt: skip
    if args.no_publish:
        for row in [headers, *rows]:
            print(" | ".join(str(cell) for cell in row))
    else:
        publish("webhooks", "Webhook delivery (one sender)", headers, rows, notes)


if __name__ == "__main__":
    main()
