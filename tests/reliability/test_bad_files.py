"""Bad profile files through `segmentsync profiles load`: truncated (plain, gzip, Parquet), wrong
encoding, garbage, missing key column. Each is refused with a clear one-line reason naming the
file (and the line, where there is one), and the profiles loaded before stay exactly as they were:
the next run of an export finds every member unchanged and sends nothing."""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from exports.world import World
from segmentsync.profiles.cli import app

from .scenario import counts_add_up, drive, make_export, platform_list, profile_emails, start_run

PROFILES = 2_000
HEADER = "profile_id,email,first_name,last_name,city,age,country,consent\n"
LINES = [f"{i},p{i}@example.com,Fay {i},Lee,Oslo,{20 + i % 50},PL,yes\n" for i in range(1, PROFILES + 1)]
GOOD = HEADER + "".join(LINES)
CUT = GOOD[: len(GOOD) // 2].rsplit(",", 1)[0]  # the last row loses its last column


def _gzip_cut_at_a_line(path: Path) -> None:
    """A gzip stream flushed after line 1,000 and cut there: a clean prefix, no end marker."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = packer.compress((HEADER + "".join(LINES[:1000])).encode()) + packer.flush(zlib.Z_FULL_FLUSH)
    path.write_bytes(head)


def _parquet_cut(path: Path) -> None:
    whole = path.with_suffix(".whole")
    pq.write_table(
        pa.table({"profile_id": list(range(PROFILES)), "email": ["a@example.com"] * PROFILES}), whole
    )
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


Writer = Callable[[Path], None]
# Random bytes behind a sequence that is never UTF-8, so that the first line is always undecodable
# (bare random bytes sometimes began with a decodable line: then the header was the problem found).
GARBAGE = b"\xc3\x28" + random.Random(4096).randbytes(4094)
BAD_FILES: list[tuple[str, Writer, str]] = [
    ("cut-mid-row.csv", _bytes(CUT.encode()), f"line {CUT.count(chr(10)) + 1}: Expected Number of Columns: 8 Found: 7"),
    ("cut-in-quotes.csv", _bytes((HEADER + "".join(LINES[:10]) + '11,"p11@example.com,Fa').encode()), "cut-in-quotes.csv, line 12"),
    ("cut-mid-row.csv.gz", _bytes(gzip.compress(GOOD.encode())[:5000]), "the compressed file is incomplete or damaged"),
    ("cut-at-a-line.csv.gz", _gzip_cut_at_a_line, "the compressed file is incomplete or damaged"),
    ("damaged.csv.gz", _bytes(gzip.compress(GOOD.encode())[:-8] + b"\0" * 8), "the compressed file is incomplete or damaged"),
    ("cut.parquet", _parquet_cut, "cut.parquet: No magic bytes found at end of file"),
    ("latin-1.csv", _bytes((HEADER + "1,zoe@example.com,Zoé,Ł,Oslo,30,PL,yes\n").encode("latin-1", "replace")), "latin-1.csv, line 2: the file is not UTF-8 encoded"),
    ("utf-16.csv", _bytes((HEADER + LINES[0]).encode("utf-16")), "utf-16.csv, line 1: the file is not UTF-8 encoded"),
    ("garbage.csv", _bytes(GARBAGE), "garbage.csv, line 1: the file is not UTF-8 encoded"),
    ("no-key.csv", _bytes(b"id,email\n1,a@example.com\n"), "no-key.csv has no key column 'profile_id'; its columns are: id, email"),
    ("other-case-key.csv", _bytes(b"Profile_ID,email\n1,a@example.com\n"), "there is 'Profile_ID': names are case-sensitive"),
    ("empty-keys.csv", _bytes((HEADER + LINES[0] + ",b@example.com,B,C,D,1,PL,yes\n").encode()), "1 row(s) have no value in the key column"),
    ("same-key-twice.csv", _bytes((HEADER + LINES[0] + LINES[0]).encode()), "key value(s) of 'profile_id' appear more than once"),
    ("empty.csv", _bytes(b""), "empty.csv is empty"),
    ("no-header.csv", _bytes(b"\n\n"), "the first line (the header with the column names) is empty"),
]  # fmt: skip


def test_bad_files_are_refused_clearly_and_the_loaded_profiles_stay(world: World, tmp_path: Path) -> None:
    cli = CliRunner(env={"SEGMENTSYNC_DATA_DIR": str(world.runtime.settings.data_dir), "COLUMNS": "300"})
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    loaded = cli.invoke(app, ["load", str(good)])
    assert loaded.exit_code == 0, loaded.output
    export_id = make_export(world, "campaign_monitor")
    first, _ = drive(world.runtime, start_run(world, export_id))
    assert (first.status.value, first.new) == ("succeeded", PROFILES)

    unclear = []
    for name, write, reason in BAD_FILES:
        path = tmp_path / name
        write(path)
        result = cli.invoke(app, ["load", str(path)])
        message = " ".join(result.stderr.split())
        if result.exit_code != 1 or reason not in message or "Traceback" in result.output:
            unclear.append(f"{name}: exit {result.exit_code}: {message[:300]}")
    assert not unclear, "\n".join(unclear)

    assert len(profile_emails(world.runtime)) == PROFILES  # nothing was replaced
    again, _ = drive(world.runtime, start_run(world, export_id))
    counts_add_up(again)
    assert (again.status.value, again.unchanged, again.rows_sent) == ("succeeded", PROFILES, 0)
    assert platform_list(world, "campaign_monitor") == profile_emails(world.runtime)
