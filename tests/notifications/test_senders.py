"""Two `segmentsync worker` processes and a `kill -9`: every message arrives, none twice — but the
one a killed sender had in flight, which another sender sends again with the same ``webhook-id``
(receivers dedupe on it: delivery is at least once, by the Standard Webhooks design).

The processes run on PostgreSQL, the store for several workers (docs/operations.md); on SQLite two
senders with their own connections share one outbox in threads (the same locking as processes,
without three interpreters' start-up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from receivers import HANG, Receiver, receiver
from segmentsync.db import transaction
from segmentsync.notifications import events, service
from segmentsync.notifications.delivery import Sender
from segmentsync.notifications.models import Delivery, DeliveryStatus
from segmentsync.runtime import Runtime

from .helpers import verified

MESSAGES = 40
CLI = Path(sys.executable).parent / "segmentsync"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def worker(runtime: Runtime) -> Iterator[subprocess.Popen[bytes]]:
    settings = runtime.settings
    assert settings.secret_key is not None
    env = os.environ | {
        "SEGMENTSYNC_DATABASE_URL": settings.resolved_database_url,
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SEGMENTSYNC_WEBHOOKS_ALLOW_PRIVATE": "true",
        "SEGMENTSYNC_WEBHOOKS_TIMEOUT_SECONDS": "2",
        "SEGMENTSYNC_WEBHOOKS_CLAIM_SECONDS": "5",  # a dead sender's claims expire soon
        # at the lowest priority (the default, 19) a sender on a machine busy with the rest of the
        # suite waited more than those 5 s for a core between its claim and its send: its claim
        # expired, another sender sent the message too (once in a suite run)
        "SEGMENTSYNC_WORKER_NICE": "0",
        "SEGMENTSYNC_WEBHOOKS_RETRY_SECONDS": "0.2,0.2,0.2",
        "SEGMENTSYNC_ALERTS_CHECK_SECONDS": "3600",
    }
    process = subprocess.Popen(
        [str(CLI), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()


def delivered(runtime: Runtime) -> set[str]:
    with runtime.readers() as session:
        return set(
            session.scalars(sa.select(Delivery.message_id).where(Delivery.status == DeliveryStatus.DELIVERED))
        )


def hung(hooks: Receiver) -> list[str]:
    with hooks.lock:
        return [r.headers["webhook-id"] for r in hooks.requests if r.answered == HANG]


@pytest.mark.parametrize("store_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_two_senders_and_a_kill_9_send_every_message_and_none_twice_but_the_one_in_flight(
    runtime: Runtime,
) -> None:
    first = {"taken": False}

    def hang_on_the_first(_headers: dict[str, str]) -> bool:
        taken, first["taken"] = first["taken"], True
        return not taken

    with receiver(hang_when=hang_on_the_first) as hooks:
        with transaction(runtime.sessions) as session:
            _endpoint, secret = service.create(session=session, settings=runtime.settings, vault=runtime.vault,
                                               actor=None, url=hooks.url, event_types=["*"])  # fmt: skip
            for number in range(MESSAGES):
                events.emit(session, events.RUN_CANCELLED, {"run": {"id": number}})
        with transaction(runtime.sessions) as session:
            every = set(session.scalars(sa.select(Delivery.message_id)))
        assert len(every) == MESSAGES

        with worker(runtime) as a:
            wait_until(lambda: bool(hung(hooks)), "the first sender to be stuck in a request")
            with worker(runtime) as b, worker(runtime) as c:  # they start while it is killed
                os.kill(a.pid, signal.SIGKILL)
                a.wait(30)
                [in_flight] = hung(hooks)
                before_kill = len(hooks.requests)
                sent_by_a = delivered(runtime)
                assert in_flight not in sent_by_a
                hooks.hang_when = None
                hooks.release()
                wait_until(lambda: delivered(runtime) == every, "every message to be delivered")
                assert b.poll() is None
                assert c.poll() is None
        after_kill = hooks.ids()[before_kill:]
        requests = list(hooks.requests)

    assert set(hooks.ids()) == every  # every message arrived
    assert max(Counter(after_kill).values()) == 1  # the two senders never sent one message twice
    assert not set(after_kill) & sent_by_a  # nor anything the killed one had recorded as delivered
    assert in_flight in after_kill  # the one in flight at the kill: sent again, same webhook-id
    for request in requests:
        verified(secret, request)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_two_senders_on_sqlite_never_send_one_message_twice(runtime: Runtime) -> None:
    with receiver() as hooks:
        with transaction(runtime.sessions) as session:
            _endpoint, secret = service.create(session=session, settings=runtime.settings, vault=runtime.vault,
                                               actor=None, url=hooks.url, event_types=["*"])  # fmt: skip
            for number in range(MESSAGES):
                events.emit(session, events.RUN_CANCELLED, {"run": {"id": number}})
        others = [
            Runtime.open(runtime.settings, migrate=False) for _ in range(2)
        ]  # own engines, own connections
        stop = threading.Event()
        threads = [threading.Thread(target=Sender(other).run_forever, args=(stop,)) for other in others]
        try:
            for thread in threads:
                thread.start()
            wait_until(lambda: len(delivered(runtime)) == MESSAGES, "every message to be delivered")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            for other in others:
                other.close()
        requests = list(hooks.requests)
    assert len(requests) == MESSAGES
    assert len({r.headers["webhook-id"] for r in requests}) == MESSAGES
    for request in requests:
        verified(secret, request)
