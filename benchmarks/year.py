"""A year-shaped metadata store: what a year of production leaves behind, written fast.

200 exports (half Campaign Monitor, half Constant Contact, some mirrored, some with a cron of their
own), 300 segments, 10 users of every role, a year of daily scheduled runs of every export
(73,000 runs, every status represented), their per-row outcomes as the retention setting keeps
them (the latest ``rows_kept`` runs of each export), two runs of a 1,000,000-member export (full,
then unchanged) with all their rows, 100,000 audit entries and notifications.

The rows are written in exactly the shapes the run engine writes (``tests/benchmarks/test_year.py``
runs a real small export and compares): ``run_members`` rows group by group in ``seq`` order —
sent (sorted by email, with a 16-hex hash and the platform's JSON payload) · unchanged (not in
``run_members``: one zlib stream of ``email<TAB>key`` lines in ``run_unchanged``, compressed
100,000 lines at a time) · invalid (raw value, reason); ``delivered`` holds what each export last
sent, with the run that sent it. Bulk inserts (COPY on PostgreSQL, executemany on SQLite): the
full size takes minutes, not hours.

Used by ``benchmarks/bench_year.py`` (full size, built once into ``benchmarks/.work/``) and, at
:data:`SMALL` scale, by the tests.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import sqlalchemy as sa

from segmentsync import counts
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import AuditEntry, Notification, Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, TokenAuth
from segmentsync.db import transaction
from segmentsync.exports.models import Export, ExportSegment, Run
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.segments.models import Segment

PASSWORD = "a year of segmentsync"  # noqa: S105  # the throwaway users of a generated store
UNCHANGED_CHUNK = 100_000  # lines compressed at a time, as the engine does
CRONS = ["*/5 * * * *", "0 6 * * 1-5", "30 2 * * *", "0 */4 * * *", "15 7 1 * *", "@daily", "0 0 29 2 *"]
ZONES = ["UTC", "Europe/Warsaw", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
STATUSES = (  # a year's mix of ended runs (per mille)
    [("succeeded", 930), ("succeeded_with_rejections", 30), ("failed", 15), ("cancelled", 10),
     ("skipped", 10), ("awaiting_confirmation", 5)]
)  # fmt: skip


@dataclass(frozen=True)
class Scale:
    exports: int = 200
    segments: int = 300
    users_per_role: int = 10
    days: int = 365
    members: int = 2_000  # of each ordinary export
    changed: int = 20  # of those, changed each day
    big: int = 1_000_000  # the big export's members
    audit: int = 100_000
    notifications: int = 400
    rows_kept: int = 20  # SEGMENTSYNC_RUN_HISTORY_ROWS_KEPT's default


FULL = Scale()
SMALL = Scale(exports=6, segments=8, users_per_role=1, days=4, members=30, changed=3, big=500, audit=300,
              notifications=5, rows_kept=2)  # fmt: skip


@dataclass
class Store:
    """What the benchmark and the tests need to know of a built store."""

    users: dict[Role, list[str]] = field(default_factory=dict)  # emails (PASSWORD)
    admin_token: str = ""
    exports: list[int] = field(default_factory=list)
    big_export: int = 0
    big_runs: tuple[int, int] = (0, 0)  # (full, unchanged)
    runs: int = 0
    cron_export: int = 0
    lists: dict[str, str] = field(default_factory=dict)  # platform → the list the exports use


# ---------------------------------------------------------------- the rows of a run, as the engine writes them


def member(export_id: int, index: int, *, big: bool = False) -> tuple[str, str]:
    """(email, profile key) of an export's member."""
    return (f"person{index}@example.com" if big else f"p{index}.e{export_id}@example.com"), str(index)


def payload(platform: str, email: str, first_name: str) -> str:
    """The platform's JSON of a member, as the destinations' row templates render it."""
    if platform == "campaign_monitor":
        body: dict[str, Any] = {"EmailAddress": email, "ConsentToTrack": "Unchanged", "Name": first_name}
    else:
        body = {"email": email, "first_name": first_name}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class RunRows:
    """A finished run's rows: ``run_members`` tuples (COLUMNS order) and the unchanged stream."""

    members: list[tuple[Any, ...]]
    unchanged: tuple[int, int, bytes] | None  # (first seq, count, zlib stream)
    delivered: list[tuple[str, str, str]]  # (email, hash, key) the run delivered
    counts: dict[str, int]


COLUMNS = ("run_id", "seq", "email", "profile_key", "hash", "payload", "action", "outcome", "code", "message")


def run_rows(
    run_id: int,
    platform: str,
    sent: Sequence[tuple[str, str, str]],
    unchanged: Sequence[tuple[str, str]],
    invalid: Sequence[tuple[str, str, str, str]] = (),
    *,
    action: str = "update",
    version: int = 0,
) -> RunRows:
    """The rows of a run that sent ``sent`` (email, key, first name) with ``action`` (new or
    update), kept ``unchanged`` (email, key) and found ``invalid`` (raw value, key, reason)."""
    members: list[tuple[Any, ...]] = []
    delivered = []
    for seq, (email, key, first) in enumerate(sorted(sent), 1):
        body = payload(platform, email, f"{first}" if not version else f"{first} v{version}")
        members.append((run_id, seq, email, key, digest(body), body, action, "updated" if action == "update" else "new", None, None))  # fmt: skip
        delivered.append((email, digest(body), key))
    first_seq = len(members) + 1
    stream = None
    if unchanged:
        compressor = zlib.compressobj(1)
        parts = []
        for start in range(0, len(unchanged), UNCHANGED_CHUNK):
            text = "\n".join(f"{email}\t{key}" for email, key in unchanged[start : start + UNCHANGED_CHUNK])
            parts.append(compressor.compress((("\n" if start else "") + text).encode()))
        parts.append(compressor.flush())
        stream = (first_seq, len(unchanged), b"".join(parts))
    for at, (raw, key, problem, reason) in enumerate(invalid):
        members.append((run_id, first_seq + len(unchanged) + at, raw, key, None, None, "invalid", "invalid", problem, reason))  # fmt: skip
    counts = {"new": len(sent) if action == "new" else 0, "updated": len(sent) if action == "update" else 0,
              "unchanged": len(unchanged), "invalid": len(invalid)}  # fmt: skip
    return RunRows(members, stream, delivered, counts)


# ---------------------------------------------------------------- bulk writes


def _copy(
    connection: sa.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY on PostgreSQL, executemany on SQLite — how the engine writes its rows."""
    raw: Any = connection.connection.driver_connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # our names


def write_run_rows(connection: sa.Connection, export_id: int, run_id: int, rows: RunRows) -> None:
    if rows.members:
        _copy(connection, "run_members", COLUMNS, rows.members)
    if rows.unchanged is not None:
        first, count, data = rows.unchanged
        connection.execute(
            sa.text("INSERT INTO run_unchanged (run_id, first_seq, count, data) VALUES (:r, :f, :c, :d)"),
            {"r": run_id, "f": first, "c": count, "d": data},
        )


# ---------------------------------------------------------------- the store


def build(runtime: Runtime, sandbox: Sandbox, scale: Scale = FULL, *, seed: int = 16) -> Store:
    """Fill a freshly migrated, empty store (``runtime``'s) with a year of history."""
    rng = random.Random(seed)
    now = runtime.clock().replace(microsecond=0)
    store = Store()
    write_profiles(runtime.settings.data_dir / "profiles.duckdb", 10_000)
    connection_of, lists = _people_and_connections(runtime, sandbox, scale, store)
    store.lists = lists
    engine = runtime.engine
    with engine.begin() as connection:
        segment_ids = _segments(connection, scale, now)
        _exports(connection, scale, store, rng, now, segment_ids, connection_of, lists)
        _year_of_runs(connection, scale, store, rng, now)
        _big(connection, scale, store, now)
        _audit(connection, scale, store, rng, now)
        _notifications(connection, scale, store, rng, now)
    with transaction(
        runtime.sessions
    ) as session:  # the kept totals in one row each, as the scheduler leaves them
        counts.compact_all(session)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            for table in ("segments", "exports", "runs", "audit_log", "notifications"):
                connection.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
                )  # our names
    if engine.dialect.name == "postgresql":
        # As autovacuum leaves a store that has run for a year: without it (a server with
        # autovacuum off, as the test server's), the bulk loads and the folding of the kept totals
        # leave dead rows, and the totals' 73,000 dead entries cost 4-5 ms a read.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    return store


def write_profiles(path: Path, count: int) -> None:
    """A profile source for the pages that count or preview segments (their columns: the rules')."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "CREATE OR REPLACE TABLE profiles AS SELECT i AS profile_id, 'person' || i || '@example.com' AS email, "
            "'First' || i AS first_name, ['PL', 'LV', 'RO', 'FI'][1 + (i % 4)] AS country "
            f"FROM range(1, {int(count) + 1}) t(i)"
        )
    finally:
        con.close()


def _people_and_connections(
    runtime: Runtime, sandbox: Sandbox, scale: Scale, store: Store
) -> tuple[dict[str, int], dict[str, str]]:
    sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    client = sandbox.create_cm_client("A Year Ltd")
    account = sandbox.create_cc_account("A Year Inc")
    with transaction(runtime.sessions) as session:
        for role in Role:
            store.users[role] = []
            for n in range(scale.users_per_role):
                email = f"{role.value}{n}@example.com"
                auth_service.create_user(session=session, email=email, role=role, name=f"{role.value.title()} {n}",
                                         password=PASSWORD if n == 0 else None, actor=None)  # fmt: skip
                store.users[role].append(email)
        admin = session.scalar(sa.select(User).where(User.email == store.users[Role.ADMIN][0]))
        assert admin is not None
        store.admin_token = auth_service.create_api_token(session=session, user=admin, name="year", actor=None,
                                                          now=runtime.clock())[1]  # fmt: skip
        admin_id = admin.id
    drafts = {
        "campaign_monitor": ConnectionCreate(type=ConnectionType.CAMPAIGN_MONITOR, name="Campaign Monitor", consent=True, shared_with_contributors=True,
                                             auth=ApiKeyAuth(api_key=client["ApiKey"], client_id=client["ClientID"])),
        "constant_contact": ConnectionCreate(type=ConnectionType.CONSTANT_CONTACT, name="Constant Contact", consent=True, shared_with_contributors=True,
                                             auth=TokenAuth(access_token=account["access_token"], refresh_token=account["refresh_token"],
                                                            oauth_client_id=account["client_id"], oauth_client_secret=account["client_secret"])),
    }  # fmt: skip
    ids, lists = {}, {}
    for platform, draft in drafts.items():
        with transaction(runtime.sessions) as session:
            actor = session.get(User, admin_id)
            assert actor is not None
            ids[platform] = connections.create(session=session, runtime=runtime, data=draft, actor=actor).id
    lists["campaign_monitor"] = httpx.post(f"{sandbox.campaign_monitor_api}/lists/{client['ClientID']}.json",
                                           json={"Title": "Everyone"}, auth=(client["ApiKey"], "x"), timeout=30).json()  # fmt: skip
    lists["constant_contact"] = httpx.post(f"{sandbox.constant_contact_api}/contact_lists", json={"name": "Everyone"},
                                           headers={"Authorization": f"Bearer {account['access_token']}"},
                                           timeout=30).json()["list_id"]  # fmt: skip
    return ids, lists


def _segments(connection: sa.Connection, scale: Scale, now: datetime) -> list[int]:
    countries = ["PL", "LV", "RO", "FI"]
    rows = [
        {"id": n, "name": f"Segment {n}", "description": "", "created_by_id": None,
         "rules": {"op": "and", "items": [{"column": "country", "operator": "in", "value": [countries[n % 4]]}]},
         "created_at": now - timedelta(days=400), "updated_at": now - timedelta(days=n % 300),
         "member_count": 2_000 + n, "last_refresh_at": now - timedelta(hours=n % 24), "last_refresh_ms": 40 + n % 100,
         "last_refresh_error": None}
        for n in range(1, scale.segments + 1)
    ]  # fmt: skip
    connection.execute(sa.insert(Segment), rows)
    return [row["id"] for row in rows]


def _exports(connection: sa.Connection, scale: Scale, store: Store, rng: random.Random, now: datetime,
             segment_ids: list[int], connection_of: dict[str, int], lists: dict[str, str]) -> None:  # fmt: skip
    rows, links = [], []
    for n in range(1, scale.exports + 2):  # the last one: the big export
        platform = "campaign_monitor" if n % 2 else "constant_contact"
        cron = n % 10 == 3 and n <= scale.exports
        target = "Name" if platform == "campaign_monitor" else "first_name"
        rows.append({
            "id": n, "name": f"Export {n}" if n <= scale.exports else "Everyone (1,000,000)",
            "connection_id": connection_of[platform], "list_id": lists[platform], "list_name": "Everyone",
            "email_column": "email", "attributes": [{"column": "first_name", "target": target}],
            "create_missing_fields": False, "consent_to_track": "Unchanged", "consent_column": None,
            "sync_mode": "mirror" if n % 7 == 0 else "add_update", "removal_mode": "delete", "resubscribe": False,
            "schedule_mode": "cron" if cron else ("off" if n % 17 == 0 or n > scale.exports else "system"),
            "cron": CRONS[n % len(CRONS)] if cron else None, "timezone": ZONES[n % len(ZONES)] if cron else "UTC",
            "created_by_id": None, "created_at": now - timedelta(days=scale.days + 5), "updated_at": now - timedelta(days=n % 90),
        })  # fmt: skip
        for segment in {segment_ids[n % len(segment_ids)], segment_ids[(n * 7) % len(segment_ids)]}:
            links.append({"export_id": n, "segment_id": segment})
    connection.execute(sa.insert(Export), rows)
    connection.execute(sa.insert(ExportSegment), links)
    store.exports = [row["id"] for row in rows[:-1]]
    store.big_export = rows[-1]["id"]
    store.cron_export = next((row["id"] for row in rows if row["cron"] == "*/5 * * * *"), rows[0]["id"])


def _run(run_id: int, export_id: int, name: str, status: str, created: datetime, *, scheduled: bool = True,
         counts: dict[str, int] | None = None, members: int = 0) -> dict[str, Any]:  # fmt: skip
    counts = counts or {}
    ended = status not in ("queued", "running", "failed_retry")
    sent = counts.get("new", 0) + counts.get("updated", 0)
    error = {"failed": ("auth_failed", "the platform refused the credentials (401)"),
             "cancelled": (None, "cancelled by a user"), "skipped": ("segment_refresh_failed", "a segment could not be refreshed"),
             "awaiting_confirmation": ("mirror_guard", "This run would remove 1,200 of the 2,000 members it delivered (more than half). Nothing was sent."),
             "failed_retry": ("platform_unavailable", "the platform answered 503; retrying")}.get(status, (None, None))  # fmt: skip
    plan = {"new": counts.get("new", 0), "update": counts.get("updated", 0), "unchanged": counts.get("unchanged", 0),
            "remove": 0, "invalid": counts.get("invalid", 0), "refused": counts.get("rejected", 0),
            "delivered_before": members, "samples": {}}  # fmt: skip
    return {
        "id": run_id, "export_id": export_id, "export_name": name, "trigger": "schedule" if scheduled else "on_demand",
        "triggered_by_id": None, "scheduled_for": created if scheduled else None, "dry_run": False, "full_resync": False,
        "confirm_removals": False, "status": status,
        "phase": "finish" if status.startswith("succeeded") else ("send" if status != "queued" else None),
        "cancel_requested": False, "attempt": 1 if status in ("failed", "failed_retry") else 0,
        "next_attempt_at": created + timedelta(minutes=5) if status == "failed_retry" else None,
        "lease_owner": "worker-year" if status == "running" else None,
        "lease_expires_at": created + timedelta(minutes=1) if status == "running" else None,
        "created_at": created, "started_at": created + timedelta(seconds=1) if status != "queued" else None,
        "finished_at": created + timedelta(seconds=4) if ended else None,
        "batches_total": -(-sent // 1000), "batches_done": -(-sent // 1000) if ended else 0,
        "rows_to_send": sent, "rows_sent": sent if ended else 0,
        "send_started_at": created + timedelta(seconds=2) if status != "queued" else None,
        "profiles": members, "invalid": counts.get("invalid", 0), "new": counts.get("new", 0),
        "updated": counts.get("updated", 0), "unchanged": counts.get("unchanged", 0), "removed": 0,
        "rejected": counts.get("rejected", 0), "skipped": 0, "plan": plan if status.startswith("succeeded") else None,
        "error_code": error[0], "error": error[1],
    }  # fmt: skip


def _status(rng: random.Random) -> str:
    pick = rng.randrange(1000)
    for status, share in STATUSES:
        if pick < share:
            return status
        pick -= share
    return "succeeded"


def _year_of_runs(
    connection: sa.Connection, scale: Scale, store: Store, rng: random.Random, now: datetime
) -> None:
    """A run a day of every export; the latest ``rows_kept`` runs of each keep their rows."""
    run_id = 0
    batch: list[dict[str, Any]] = []
    pending: list[tuple[int, RunRows]] = []
    delivered: list[tuple[Any, ...]] = []
    for export_id in store.exports:
        platform = "campaign_monitor" if export_id % 2 else "constant_contact"
        everyone = [member(export_id, i) for i in range(1, scale.members + 1)]
        last_sent: dict[str, tuple[str, int]] = {}
        for day in range(scale.days):
            run_id += 1
            created = (now - timedelta(days=scale.days - day)).replace(hour=6, minute=0, second=0)
            status = "succeeded" if day == 0 else _status(rng)
            if day == scale.days - 1 and export_id % 50 in (1, 2, 3):
                status = ("queued", "running", "failed_retry")[export_id % 50 - 1]
            kept = day >= scale.days - scale.rows_kept
            counts: dict[str, int] = {}
            if status.startswith("succeeded"):
                if day == 0:
                    sent = [(email, key, f"First{key}") for email, key in everyone]
                    rows = run_rows(run_id, platform, sent, [], action="new")
                else:
                    start = (day * scale.changed) % max(scale.members - scale.changed, 1)
                    changed = everyone[start : start + scale.changed]
                    sent = [(email, key, f"First{key}") for email, key in changed]
                    invalid = (
                        [("not-an-email", f"x{day}", "bad_syntax", "not an email address: it has no @")]
                        if day % 3 == 0
                        else []
                    )
                    # the unchanged members are listed only where the run's rows are kept
                    names = {email for email, _ in changed} if kept else set()
                    rest = [m for m in everyone if m[0] not in names] if kept else []
                    rows = run_rows(run_id, platform, sent, rest, invalid, version=day)
                    rows.counts["unchanged"] = len(everyone) - len(changed)
                counts = dict(rows.counts)
                if status == "succeeded_with_rejections":
                    _reject_one(rows, counts)
                for email, hash_, _key in rows.delivered:
                    last_sent[email] = (hash_, run_id)
                if kept:
                    pending.append((run_id, rows))
            batch.append(
                _run(
                    run_id,
                    export_id,
                    f"Export {export_id}",
                    status,
                    created,
                    counts=counts,
                    members=scale.members,
                )
            )
        connection.execute(sa.insert(Run), batch)  # the runs first: run_unchanged refers to them
        batch.clear()
        for kept_id, rows in pending:
            write_run_rows(connection, export_id, kept_id, rows)
        pending.clear()
        delivered += [(export_id, email, hash_, key, last_sent[email][1]) for email, key in everyone
                      for hash_ in [last_sent[email][0]]]  # fmt: skip
    _copy(connection, "delivered", ("export_id", "email", "hash", "profile_key", "run_id"), delivered)
    store.runs = run_id


def _reject_one(rows: RunRows, counts: dict[str, int]) -> None:
    """The platform refused one of the rows sent (its outcome rejected, with the platform's words)."""
    for at, row in enumerate(rows.members):
        if row[6] == "update":
            rows.members[at] = (*row[:7], "rejected", "1", "Invalid Email Address")
            rows.delivered = [d for d in rows.delivered if d[0] != row[2]]
            counts["updated"] -= 1
            counts["rejected"] = 1
            return


def _big(connection: sa.Connection, scale: Scale, store: Store, now: datetime) -> None:
    """Two runs of the big export: a full one (every member sent), then an unchanged re-run."""
    export_id = store.big_export
    platform = "campaign_monitor" if export_id % 2 else "constant_contact"
    everyone = [member(export_id, i, big=True) for i in range(1, scale.big + 1)]
    full, again = store.runs + 1, store.runs + 2
    name = "Everyone (1,000,000)"
    sent = run_rows(
        full, platform, [(email, key, f"First{key}") for email, key in everyone], [], action="new"
    )
    kept = run_rows(again, platform, [], everyone)
    connection.execute(sa.insert(Run), [
        _run(full, export_id, name, "succeeded", now - timedelta(hours=3), scheduled=False, counts=sent.counts, members=scale.big),
        _run(again, export_id, name, "succeeded", now - timedelta(hours=1), scheduled=False, counts=kept.counts, members=scale.big),
    ])  # fmt: skip
    for start in range(0, len(sent.members), 100_000):
        _copy(connection, "run_members", COLUMNS, sent.members[start : start + 100_000])
    _copy(connection, "delivered", ("export_id", "email", "hash", "profile_key", "run_id"),
          ((export_id, email, hash_, key, full) for email, hash_, key in sent.delivered))  # fmt: skip
    write_run_rows(connection, export_id, again, kept)
    store.big_runs = (full, again)
    store.runs = again


AUDIT_ACTIONS = [
    "run.start",
    "export.update",
    "segment.update",
    "user.sign_in",
    "connection.refresh",
    "run.cancel",
]


def _audit(connection: sa.Connection, scale: Scale, store: Store, rng: random.Random, now: datetime) -> None:
    span = timedelta(days=scale.days).total_seconds()
    rows = []
    for n in range(1, scale.audit + 1):
        action = AUDIT_ACTIONS[n % len(AUDIT_ACTIONS)]
        kind = action.split(".")[0]
        rows.append({"at": now - timedelta(seconds=span * (1 - n / scale.audit)),
                     "actor_id": None, "actor_label": "system" if n % 3 else "admin0@example.com", "action": action,
                     "object_type": kind, "object_id": str(1 + n % 200), "object_label": f"{kind.title()} {1 + n % 200}",
                     "before": None, "after": {"n": n}, "ip": None})  # fmt: skip
        if len(rows) >= 20_000:
            connection.execute(sa.insert(AuditEntry), rows)
            rows.clear()
    if rows:
        connection.execute(sa.insert(AuditEntry), rows)


def _notifications(
    connection: sa.Connection, scale: Scale, store: Store, rng: random.Random, now: datetime
) -> None:
    rows = [{"created_at": now - timedelta(hours=n * 7), "kind": "run_failed",
             "message": f"Export {1 + n % 200}: the platform refused the credentials (401)",
             "run_id": None, "export_id": store.exports[n % len(store.exports)],
             "read_at": None if n % 4 else now - timedelta(hours=n * 7 - 1)}
            for n in range(1, scale.notifications + 1)]  # fmt: skip
    connection.execute(sa.insert(Notification), rows)
